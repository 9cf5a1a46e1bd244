// Local (break-glass) access at the relays, the cloud's part (issue 17): users' SSH public keys
// (`cloudcons keys add|list|remove`), the per-relay switch (`cloudcons relay-local on|off`), and
// the snapshot each relay keeps for the outage: who may sign in there with which key, and with what
// right on which of its consoles, as the access rules decide now.
//
// Rights in the snapshot: the relay's SSH server knows two (edge-relay/local/types.ts LocalRight).
//   rw  the user may `attach`, `force` and `break` the console (the rules' rw role: what a local
//       writer can do, since ^Ecf forces and ^Ecl sends breaks there);
//   ro  else, the user may `spy` it (replay of the relay's spool comes with it locally);
//   -   else the console is not in the user's rights (not even listed at the relay).
// A user with `attach` but not `force` or `break` gets ro: the conservative side.
// Decided for the user's name with the groups the rules' `groups:` give it, and admin when the
// rules' `admins:` name them or they hold an admin token that is neither revoked nor expired now.
// SSO users' groups from their identity provider are not known here (they come with a sign-in):
// only the rules' groups count for them.
//
// When a relay gets one (relays whose hello says `features: [access]`): after each welcome, and
// whenever keys are added or removed, the rules change, or the switch is turned, while it is
// connected. Changes that reach it at its next connection only: a console moved or removed, a
// token made, revoked or expired (an admin token's rights).
import { randomBytes } from 'node:crypto';
import { encode } from '../../protocol/codec.ts';
import { BadParameter, Conflict, NotFound, RateLimited } from '../../protocol/errors.ts';
import { ACCESS_LIMITS, type AccessUser, type CloudToRelay, type Out } from '../../protocol/messages.ts';
import { normalFingerprint, parseSshKeys } from '../../protocol/ssh-key.ts';
import { decide, type AccessDoc, type Subject } from './acl.ts';
import type { AccessRules } from './access-rules.ts';
import type { CoreContext } from './core-context.ts';
import type { Principal, RelayRecord, SshKeyRecord } from './ports.ts';

/** The feature word a relay's hello carries when it keeps snapshots. */
export const ACCESS_FEATURE = 'access';

export interface KeyList { user: string; keys: SshKeyRecord[] }

export class LocalAccess {
  constructor(private readonly c: CoreContext, private readonly access: AccessRules) {}

  // ================================================================================== keys

  /** The user a keys command is about: `who` themself, or (admins only) `user`. */
  private async subject(who: Principal, user: string | undefined, what: string): Promise<string> {
    if (user === undefined || user === who.name) return who.name;
    await this.access.requireAdmin(who, `${what} of user ${user}`);
    return user;
  }

  async listKeys(who: Principal, user?: string): Promise<KeyList> {
    const u = await this.subject(who, user, 'list the SSH keys');
    return { user: u, keys: (await this.c.p.keys.get(u)).keys };
  }

  /** Adds the keys of an authorized_keys-style `text` (all or none: a bad line refuses the whole,
   *  naming each bad line); keys the user has already are reported, not added twice. */
  async addKeys(who: Principal, text: string, user?: string): Promise<KeyList & { added: string[]; had: string[] }> {
    const u = await this.subject(who, user, 'add SSH keys');
    const { keys, problems } = parseSshKeys(text, this.c.opts.maxKeyFileBytes);
    if (problems.length) throw new BadParameter(`no key added: ${problems.join('; ')}`);
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = await this.c.p.keys.get(u);
      const have = new Set(cur.keys.map((k) => k.fingerprint));
      const fresh = keys.filter((k) => !have.has(k.fingerprint));
      const had = keys.filter((k) => have.has(k.fingerprint)).map((k) => k.fingerprint);
      if (!fresh.length) return { user: u, keys: cur.keys, added: [], had };
      const max = this.c.opts.maxKeysPerUser;
      if (cur.keys.length + fresh.length > max) {
        throw new RateLimited(`user ${u} has ${cur.keys.length} SSH keys and would have ${cur.keys.length + fresh.length}: at most ${max} (maxKeysPerUser); remove one first (cloudcons keys remove FINGERPRINT)`);
      }
      const now = this.c.now();
      const next = [...cur.keys, ...fresh.map((k) => ({ ...k, addedAt: now, addedBy: who.name }))];
      if (!(await this.c.p.keys.put(u, next, cur.version))) continue;
      for (const k of fresh) await this.c.auditCloud('ssh-key.add', who.name, `SSH key ${k.fingerprint} (${k.type}${k.comment ? ` ${k.comment}` : ''}) added for user ${u}`);
      await this.pushAll();
      return { user: u, keys: next, added: fresh.map((k) => k.fingerprint), had };
    }
    throw new Conflict(`the SSH keys of user ${u} changed meanwhile: try again`);
  }

  /** Removes one key by fingerprint; it is gone from every connected relay's next snapshot, sent now. */
  async removeKey(who: Principal, fingerprint: string, user?: string): Promise<KeyList & { removed: SshKeyRecord }> {
    const u = await this.subject(who, user, 'remove SSH keys');
    const fp = normalFingerprint(fingerprint);
    if (!fp) throw new BadParameter(`fingerprint: SHA256: and 43 base64 characters, as cloudcons keys list and ssh-keygen -lf print it (got ${JSON.stringify(fingerprint.slice(0, 80))})`);
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = await this.c.p.keys.get(u);
      const removed = cur.keys.find((k) => k.fingerprint === fp);
      if (!removed) throw new NotFound(`user ${u} has no SSH key ${fp}; theirs: ${cur.keys.map((k) => k.fingerprint).join(', ') || '(none)'}`);
      const next = cur.keys.filter((k) => k !== removed);
      if (!(await this.c.p.keys.put(u, next, cur.version))) continue;
      await this.c.auditCloud('ssh-key.remove', who.name, `SSH key ${fp} (${removed.type}${removed.comment ? ` ${removed.comment}` : ''}) of user ${u} removed`);
      await this.pushAll();
      return { user: u, keys: next, removed };
    }
    throw new Conflict(`the SSH keys of user ${u} changed meanwhile: try again`);
  }

  // ============================================================================ the switch

  /** `cloudcons relay-local on|off NAME` (admins). */
  async setRelayLocal(who: Principal, relay: string, on: boolean): Promise<RelayRecord> {
    await this.access.requireAdmin(who, `turn local access ${on ? 'on' : 'off'} at relay ${relay}`);
    const rec = await this.c.p.relays.setLocal(relay, on ? undefined : { by: who.name, at: this.c.now() });
    await this.c.auditCloud('relay.local', who.name, `local access at relay ${relay} turned ${on ? 'on' : 'off'}`);
    if (rec.conn) await this.push(rec);
    return rec;
  }

  // ========================================================================== the snapshot

  /** What relay `relay` may let in: every user with keys and a right on one of its consoles. */
  async snapshot(relay: string): Promise<{ enabled: boolean; users: AccessUser[] }> {
    const rec = await this.c.p.relays.get(relay);
    const consoles = (await this.c.p.consoles.list()).filter((r) => r.relay === relay).map((r) => r.name).sort();
    const { doc } = await this.access.rules();
    const now = this.c.now();
    const adminTokens = new Set((await this.c.p.tokens.list())
      .filter((t) => t.kind === 'user' && t.admin && !t.revoked && (t.expires === undefined || t.expires > now)).map((t) => t.name.toLowerCase()));
    const users: AccessUser[] = [];
    for (const { user, keys } of (await this.c.p.keys.all()).sort((a, b) => (a.user < b.user ? -1 : 1))) {
      const rights = rightsOf(doc, { name: user, admin: adminTokens.has(user) }, consoles);
      if (Object.keys(rights).length) users.push({ user, keys: keys.map((k) => ({ type: k.type as AccessUser['keys'][number]['type'], blob: k.blob, fingerprint: k.fingerprint })), rights });
    }
    return { enabled: !rec?.localOff, users };
  }

  /** Sends relay `relay` its snapshot over `conn` (in parts: accessParts). */
  async send(conn: string, relay: string): Promise<void> {
    const snap = await this.snapshot(relay);
    const parts = accessParts(snap.users);
    if (parts.length > ACCESS_LIMITS.parts) {
      console.error(`local access: the snapshot of relay ${relay} takes ${parts.length} parts, more than the ${ACCESS_LIMITS.parts} a relay takes: only the first ${ACCESS_LIMITS.parts} are sent (users sorted by name; the rest cannot sign in there)`);
      parts.length = ACCESS_LIMITS.parts;
    }
    const id = randomBytes(9).toString('base64url');
    for (let i = 0; i < parts.length; i++) {
      if (!(await this.c.sendRelay(conn, { t: 'access', id, part: i + 1, parts: parts.length, enabled: snap.enabled, users: parts[i] }))) return;
    }
  }

  /** A connected relay that keeps snapshots gets a new one now. Never throws: the change it
   *  follows is made; a relay that misses this gets one at its next connection. */
  private async push(rec: RelayRecord): Promise<void> {
    if (!rec.conn || !rec.features?.includes(ACCESS_FEATURE)) return;
    try { await this.send(rec.conn, rec.name); } catch (e) {
      console.error(`local access: sending relay ${rec.name} its snapshot failed (it gets one at its next connection): ${(e as Error).message}`);
    }
  }

  /** Every connected relay that keeps snapshots gets a new one (keys or rules changed). */
  async pushAll(): Promise<void> {
    let relays: RelayRecord[];
    try { relays = await this.c.p.relays.list(); } catch (e) { console.error(`local access: listing the relays to send snapshots failed: ${(e as Error).message}`); return; }
    for (const r of relays) await this.push(r);
  }
}

/** A user's rights on `consoles` (the header's mapping), consoles with none left out. */
export function rightsOf(doc: AccessDoc | undefined, s: Subject, consoles: string[]): Record<string, 'rw' | 'ro'> {
  const out: Record<string, 'rw' | 'ro'> = {};
  for (const c of consoles) {
    if (decide(doc, s, c, 'attach').allow && decide(doc, s, c, 'force').allow && decide(doc, s, c, 'break').allow) out[c] = 'rw';
    else if (decide(doc, s, c, 'spy').allow) out[c] = 'ro';
  }
  return out;
}

/** The users split into parts of at most ACCESS_LIMITS.partBytes of JSON each (with the message
 *  around them, a frame well under 32 KiB), a user's keys and rights over several entries (and
 *  parts) where they do not fit in one. Always at least one part (an empty snapshot says that no
 *  one may sign in, and whether local access is on). */
export function accessParts(users: AccessUser[], budget = ACCESS_LIMITS.partBytes): AccessUser[][] {
  const parts: AccessUser[][] = [[]];
  let size = 0;
  let entry: AccessUser | undefined;
  /** Room for `n` more bytes in the current part (a new part, and a new entry of `user` in it, if not). */
  const room = (n: number, user: string, full = false) => {
    const part = parts[parts.length - 1];
    if (part.length && (full || size + n > budget || (!entry && part.length >= ACCESS_LIMITS.usersPerPart))) { parts.push([]); size = 0; entry = undefined; }
    if (!entry) {
      entry = { user, keys: [], rights: {} };
      parts[parts.length - 1].push(entry);
      size += JSON.stringify(entry).length + 1;
    }
    size += n;
  };
  for (const u of users) {
    entry = undefined;
    room(0, u.user);
    for (const k of u.keys) {
      room(JSON.stringify(k).length + 1, u.user, entry!.keys.length >= ACCESS_LIMITS.keysPerEntry);
      entry!.keys.push(k);
    }
    for (const [c, r] of Object.entries(u.rights)) {
      room(JSON.stringify(c).length + JSON.stringify(r).length + 2, u.user, Object.keys(entry!.rights).length >= ACCESS_LIMITS.rightsPerEntry);
      entry!.rights[c] = r;
    }
  }
  return parts;
}

/** The size of a part as sent (for tests: it must fit a frame). */
export const accessFrameBytes = (m: Out<Extract<CloudToRelay, { t: 'access' }>>) => Buffer.byteLength(encode(m));
