// The cloud's last word on local access at this relay (issue 17): the snapshot the cloud sends
// after each welcome and whenever keys, access rules or the relay's switch change (protocol
// `access`, cloud/core/local-access.ts), kept in the spool folder (local-access.json, 0600,
// replaced atomically, with the relay's name and when it came) and loaded at start, so a relay
// restarted during an outage still knows who may sign in. An AccessSource over it for the SSH
// server (types.ts): a user's key is looked up by its blob; the rights are the cloud's, resolved
// per console (rw: attach, force, break; ro: spy). A relay that never reached the cloud has no
// snapshot: nobody is found here (relay.yaml's local.users still are), and it does not turn local
// access off.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../protocol/atomic-file.ts';
import type { Log } from '../../protocol/log.ts';
import { accessKey, accessUser, type AccessUser, type CloudToRelay } from '../../protocol/messages.ts';
import type { AccessSource, LocalPrincipal, LocalRight } from './types.ts';

export const CLOUD_ACCESS_FILE = 'local-access.json';

/** The file: what the last complete snapshot said, with whose and when it came. */
const stored = z.object({
  relay: z.string().optional(),
  receivedAt: z.number(),
  id: z.string(),
  enabled: z.boolean(),
  // A user's entries of all parts, merged: more keys and consoles than one entry may carry.
  users: z.array(accessUser.extend({ keys: z.array(accessKey).max(1000), rights: z.record(z.string(), z.enum(['rw', 'ro'])) })),
});
export type StoredAccess = z.infer<typeof stored>;

type AccessMsg = Extract<CloudToRelay, { t: 'access' }>;

interface UserEntry { keys: Map<string, string>; rights: Map<string, LocalRight> }

export class CloudAccess implements AccessSource {
  readonly file: string;
  private snap?: StoredAccess;
  private users = new Map<string, UserEntry>();
  /** The parts of a snapshot being received (one id, in order). */
  private pending?: { id: string; parts: number; got: number; enabled: boolean; users: AccessUser[] };

  constructor(dir: string, private readonly log: Log) { this.file = path.join(dir, CLOUD_ACCESS_FILE); }

  /** Reads the snapshot kept on disk, if any. One of another relay (a spool folder moved) or one
   *  that does not read is not used (said in the log); nobody is let in by it then. */
  load(relay: string | undefined): void {
    let raw: string;
    try { raw = fs.readFileSync(this.file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`local access: cannot read ${this.file}: ${(e as Error).message}; the cloud's users cannot sign in here until the cloud sends them again`, { level: 'warn' });
      return;
    }
    let why: string;
    try {
      const r = stored.safeParse(JSON.parse(raw));
      if (r.success) return this.loaded(r.data, relay);
      why = r.error.issues.slice(0, 2).map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    } catch (e) { why = (e as Error).message; }
    this.log(`local access: ${this.file} does not read (${why.slice(0, 200)}); the cloud's users cannot sign in here until the cloud sends them again`, { level: 'warn' });
  }

  private loaded(s: StoredAccess, relay: string | undefined): void {
    if (relay && s.relay && s.relay !== relay.toLowerCase()) {
      this.log(`local access: ${this.file} is relay ${s.relay}'s, not ${relay}'s: not used`, { level: 'warn' });
      return;
    }
    this.use(s);
    this.log(`local access: the cloud's snapshot of ${new Date(s.receivedAt).toISOString()} loaded (${this.counts()})`);
  }

  /** A part of a snapshot from the cloud. The last part of one stores the whole (durably, then in
   *  use) and is logged; true then. Parts come in order; two snapshots the cloud sent at once may
   *  interleave: a first part starts over with the newer one, and parts of the older one are then
   *  ignored. A gap in the one being received drops it: the one in use stays until the next. */
  take(m: AccessMsg, relay: string | undefined, now = Date.now()): boolean {
    if (m.part === 1) this.pending = { id: m.id, parts: m.parts, got: 0, enabled: m.enabled, users: [] };
    const p = this.pending;
    if (!p || p.id !== m.id) {
      this.log(`local access: part ${m.part} of ${m.parts} of snapshot ${m.id} ignored: ${p ? `snapshot ${p.id}, sent after it, is being received` : 'its first part did not come'}`, { level: 'warn' });
      return false;
    }
    if (p.parts !== m.parts || m.part !== p.got + 1) {
      this.log(`local access: part ${m.part} of ${m.parts} of snapshot ${m.id} does not follow part ${p.got} of ${p.parts}: the snapshot is dropped (the one in use stays)`, { level: 'warn' });
      this.pending = undefined;
      return false;
    }
    p.got++;
    p.users.push(...m.users);
    if (p.got < p.parts) return false;
    this.pending = undefined;
    const s: StoredAccess = { ...(relay ? { relay: relay.toLowerCase() } : {}), receivedAt: now, id: p.id, enabled: p.enabled, users: merged(p.users) };
    try { writeFileAtomic(this.file, JSON.stringify(s)); } catch (e) {
      this.log(`local access: the cloud's snapshot could not be kept in ${this.file} (${(e as Error).message}): it is used, but a restart during an outage would forget it`, { level: 'error' });
    }
    this.use(s);
    this.log(`local access: snapshot from the cloud: ${this.counts()}`);
    return true;
  }

  /** What is in use: when it came, whether local access is on, users and keys (for status and logs). */
  info(): { receivedAt: number; enabled: boolean; users: number; keys: number } | undefined {
    const s = this.snap;
    return s && { receivedAt: s.receivedAt, enabled: s.enabled, users: this.users.size, keys: [...this.users.values()].reduce((n, u) => n + u.keys.size, 0) };
  }

  lookup(user: string, key: Buffer): LocalPrincipal | undefined {
    const name = user.toLowerCase();
    const u = this.users.get(name);
    const fingerprint = u?.keys.get(key.toString('base64'));
    if (!u || !fingerprint) return undefined;
    return { user: name, fingerprint, source: 'cloud', right: (console) => u.rights.get(console) };
  }

  /** Off only when the cloud said so; no snapshot: on (relay.yaml's users decide alone). */
  enabled(): boolean { return this.snap?.enabled ?? true; }

  private use(s: StoredAccess): void {
    this.snap = s;
    this.users = new Map(s.users.map((u) => [u.user, {
      keys: new Map(u.keys.map((k) => [k.blob, k.fingerprint])),
      rights: new Map(Object.entries(u.rights)),
    }]));
  }

  private counts(): string {
    const i = this.info()!;
    return `${i.users} users, ${i.keys} keys, local access ${i.enabled ? 'on' : 'off (relay-local off)'}`;
  }
}

/** A user's entries from several parts made one: keys (once each) and rights added up. */
function merged(entries: AccessUser[]): AccessUser[] {
  const by = new Map<string, AccessUser>();
  for (const e of entries) {
    const u = by.get(e.user);
    if (!u) { by.set(e.user, { user: e.user, keys: [...e.keys], rights: { ...e.rights } }); continue; }
    for (const k of e.keys) if (!u.keys.some((x) => x.fingerprint === k.fingerprint)) u.keys.push(k);
    Object.assign(u.rights, e.rights);
  }
  return [...by.values()];
}
