// The cloud core on its embedded adapters, with a sender that records what it sends: the unit
// tests of the core (cloud/core/core*.test.ts) drive it message by message, as a relay and users.
import { CloudCore, type CoreOptions } from '../cloud/core/core.ts';
import type { CloudPorts, ConnectionSender, Principal } from '../cloud/core/ports.ts';
import { MemoryLockStore } from '../cloud/adapters/memory/lock-store.ts';
import { MemorySessionStore } from '../cloud/adapters/memory/session-store.ts';
import { FsAuditStore } from '../cloud/adapters/fs/audit-store.ts';
import { FsRelayRegistry } from '../cloud/adapters/fs/relay-registry.ts';
import { FsConsoleRegistry } from '../cloud/adapters/fs/console-registry.ts';
import { FsHotTail } from '../cloud/adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../cloud/adapters/fs/segment-store.ts';
import { FsAccessStore } from '../cloud/adapters/fs/access-store.ts';
import { FsKeyStore } from '../cloud/adapters/fs/key-store.ts';
import { FsTokenStore } from '../cloud/adapters/fs/token-store.ts';
import { tmpDir } from './helpers.ts';

/** Records what the core sends to each connection (the transport is a neighbour here). */
export class RecordingSender implements ConnectionSender {
  sent: { conn: string; msg: Record<string, unknown> }[] = [];
  /** Connections that are gone: a send to one answers false (as a 410 from @connections does). */
  gone = new Set<string>();
  /** Runs before a send to a gone connection is refused (what happened meanwhile). */
  beforeRefusal?: (conn: string, msg: Record<string, unknown>) => Promise<void>;
  async send(conn: string, frame: string) {
    const msg = JSON.parse(frame) as Record<string, unknown>;
    if (this.gone.has(conn)) { await this.beforeRefusal?.(conn, msg); return false; }
    this.sent.push({ conn, msg });
    return true;
  }
  closed: { conn: string; code: number; reason: string }[] = [];
  async close(conn: string, code: number, reason: string) { this.closed.push({ conn, code, reason }); this.gone.add(conn); }
  to(conn: string, t?: string) { return this.sent.filter((s) => s.conn === conn && (!t || s.msg.t === t)).map((s) => s.msg); }
}

export const relay: Principal = { kind: 'relay', name: 'edge1', admin: false, tokenId: 'r' };
export const alice: Principal = { kind: 'user', name: 'alice', admin: false, tokenId: 'a' };
export const bob: Principal = { kind: 'user', name: 'bob', admin: false, tokenId: 'b' };
export const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A core whose relay `edge1` (connection `R`) has said hello with console web01. The clock is
 *  the real one until a test sets `clock.at` (lease lapses, token expiry). */
export async function coreRig(opts: Partial<CoreOptions> = {}) {
  const dir = tmpDir('core');
  const sender = new RecordingSender();
  const clock = { at: undefined as number | undefined, now: () => clock.at ?? Date.now() };
  const ports: CloudPorts = {
    locks: new MemoryLockStore(), sessions: new MemorySessionStore(), consoles: new FsConsoleRegistry(dir), relays: new FsRelayRegistry(dir),
    segments: new FsSegmentStore(dir), hot: new FsHotTail(dir), audit: new FsAuditStore(dir), tokens: new FsTokenStore(dir), access: new FsAccessStore(dir), keys: new FsKeyStore(dir), sender, clock,
  };
  // Every principal signs in with a real token of this store: input and re-checks look it up.
  for (const p of [relay, alice, bob]) p.tokenId = (await ports.tokens.create({ kind: p.kind, name: p.name })).id;
  const core = new CloudCore(ports, opts);
  await core.relayMessage('R', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 1 }] });
  return { core, ports, sender, dir, clock };
}
