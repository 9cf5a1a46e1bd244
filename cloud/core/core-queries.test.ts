// Replay and history work in the core: bounded by what is sent, sent as the connection drains,
// stopped when it goes, limited per user; and a console a user may not list costs what an
// unknown name costs (the port calls are counted, not timed).
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloudCore, type CoreOptions } from './core.ts';
import type { CloudPorts, ConnectionSender, Principal } from './ports.ts';
import { MemoryLockStore } from '../adapters/memory/lock-store.ts';
import { MemorySessionStore } from '../adapters/memory/session-store.ts';
import { FsAuditStore } from '../adapters/fs/audit-store.ts';
import { FsConsoleRegistry } from '../adapters/fs/console-registry.ts';
import { FsRelayRegistry } from '../adapters/fs/relay-registry.ts';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { FsAccessStore } from '../adapters/fs/access-store.ts';
import { FsKeyStore } from '../adapters/fs/key-store.ts';
import { FsTokenStore } from '../adapters/fs/token-store.ts';
import { encodeSegment, type Chunk } from '../../protocol/segment.ts';
import { NotFound } from '../../protocol/errors.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';

after(cleanup);

/** A sender whose connections drain when the test says so (`drain()`), and can be closed. */
class GatedSender implements ConnectionSender {
  sent: { conn: string; msg: Record<string, unknown> }[] = [];
  gone = new Set<string>();
  waiting = 0;
  private open: (() => void)[] = [];
  gated = false;
  async send(conn: string, frame: string) {
    if (this.gone.has(conn)) return false;
    this.sent.push({ conn, msg: JSON.parse(frame) as Record<string, unknown> });
    return true;
  }
  async close() {}
  async drained(conn: string) {
    if (this.gated) { this.waiting++; await new Promise<void>((r) => this.open.push(r)); this.waiting--; }
    return !this.gone.has(conn);
  }
  drain() { const o = this.open; this.open = []; for (const r of o) r(); }
  to(conn: string, t?: string) { return this.sent.filter((s) => s.conn === conn && (!t || s.msg.t === t)).map((s) => s.msg); }
}

/** Wraps every method of a port to record its calls (name and first argument) and the bytes it returned. */
function counted<T extends object>(name: string, port: T, calls: string[], bytes: { n: number }): T {
  return new Proxy(port, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.push(`${name}.${String(prop)}(${typeof args[0] === 'string' ? args[0] : ''})`);
        const r = v.apply(target, args);
        return r instanceof Promise ? r.then((x) => { bytes.n += size(x); return x; }) : r;
      };
    },
  });
}
const size = (x: unknown): number => (Buffer.isBuffer(x) ? x.length : Array.isArray(x) ? x.reduce((a: number, c) => a + (Buffer.isBuffer(c?.data) ? c.data.length : 0), 0) : 0);

const relay: Principal = { kind: 'relay', name: 'edge1', admin: false, tokenId: 'r' };
const alice: Principal = { kind: 'user', name: 'alice', admin: false, tokenId: 'a' };

async function setup(opts: Partial<CoreOptions> = {}) {
  const dir = tmpDir('coreq');
  const sender = new GatedSender();
  const calls: string[] = [];
  const bytes = { n: 0 };
  const ports: CloudPorts = {
    locks: new MemoryLockStore(), sessions: new MemorySessionStore(), consoles: counted('consoles', new FsConsoleRegistry(dir), calls, bytes), relays: new FsRelayRegistry(dir),
    segments: counted('segments', new FsSegmentStore(dir), calls, bytes), hot: counted('hot', new FsHotTail(dir), calls, bytes),
    audit: new FsAuditStore(dir), tokens: new FsTokenStore(dir), access: new FsAccessStore(dir), keys: new FsKeyStore(dir), sender, clock: { now: () => Date.now() },
  };
  // Real tokens of this store: attach, replay and input look them up.
  for (const p of [relay, alice]) p.tokenId = (await ports.tokens.create({ kind: p.kind, name: p.name })).id;
  const core = new CloudCore(ports, opts);
  await core.relayMessage('R', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: ['web01', 'db01'].map((name) => ({ name, type: 'serial', state: 'up' as const, since: 1 })) });
  return { core, ports, sender, calls, bytes, dir };
}

/** `mib` MiB of numbered 40-byte lines (random, so segments do not compress them away) for web01,
 *  stored as 1 MiB segments of 64 KiB blocks. */
async function bigLog(core: CloudCore, mib: number): Promise<number> {
  let off = 0, n = 0;
  for (let s = 0; s < mib; s++) {
    const text = Buffer.from(Array.from({ length: 1024 * 1024 / 40 }, () => `line ${String(n++).padStart(10, '0')} ${randomBytes(18).toString('base64').slice(0, 23)}\n`).join(''));
    const chunks: Chunk[] = [];
    for (let p = 0; p < text.length; p += 4096) chunks.push({ offset: off + p, ts: 1000 + s, data: text.subarray(p, p + 4096) });
    await core.log.putSegment('web01', await encodeSegment('web01', chunks, { blockBytes: 64 * 1024 }));
    off += text.length;
  }
  return off;
}

test('a replay of 100000 lines reads no more than it may send (maxHistoryBytes and a block), not the whole log', async () => {
  const { core, sender, bytes } = await setup({ maxHistoryBytes: 128 * 1024 });
  const end = await bigLog(core, 8);
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  bytes.n = 0;
  await core.clientMessage('A', alice, { v: 1, t: 'replay', lines: 100_000 });
  const hist = sender.to('A', 'history').filter((m) => m.kind === 'replay');
  const got = Buffer.concat(hist.map((m) => Buffer.from(String(m.d), 'base64')));
  assert.ok(got.length <= 128 * 1024 && got.length > 100 * 1024, `${got.length} bytes of history`);
  assert.equal(hist.at(-1)!.last, true);
  assert.equal(hist.at(-1)!.end, end);
  assert.match(got.subarray(-40).toString(), /^line \d{10} [\w+/]{23}\n$/, 'the newest line last');
  // Segment reads: the history's bytes, a block on either side for the line search, and footers.
  assert.ok(bytes.n <= 128 * 1024 * 2 + 3 * 64 * 1024 + 64 * 1024, `read ${bytes.n} bytes of an ${end}-byte log for a ${got.length}-byte history`);
});

test('history goes out as the connection drains, and stops when the connection goes', async () => {
  const { core, sender } = await setup({ maxHistoryBytes: 512 * 1024 });
  await bigLog(core, 1);
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  sender.gated = true;
  const replay = core.clientMessage('A', alice, { v: 1, t: 'replay', lines: 100_000 });
  await until(() => sender.waiting === 1);
  assert.equal(sender.to('A', 'history').filter((m) => m.kind === 'replay').length, 1, 'one frame, then it waits for the connection to drain');
  sender.drain();
  await until(() => sender.to('A', 'history').filter((m) => m.kind === 'replay').length === 2 && sender.waiting === 1);
  sender.gone.add('A'); // the client hangs up
  sender.drain();
  await replay;
  const frames = sender.to('A', 'history').filter((m) => m.kind === 'replay');
  assert.equal(frames.length, 2, 'nothing more was sent (or read) after the connection went');
  assert.ok(frames.every((m) => m.last === false));
  assert.equal(core.queries.running('alice'), 0, 'its query slot was given back');
});

test('history needs one of the user\'s query slots: with none free the client is told, an attach still gets its end', async () => {
  const { core, sender } = await setup({ maxQueriesPerUser: 1, maxHistoryBytes: 256 * 1024 });
  const end = await bigLog(core, 1);
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  sender.gated = true;
  const first = core.clientMessage('A', alice, { v: 1, t: 'replay', lines: 1000 });
  await until(() => sender.waiting === 1);
  await core.clientMessage('B', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy', tail: 1000 });
  assert.match(String(sender.to('B', 'notice').at(-1)?.text), /history not sent: user alice has 1 replay, export, grep or history requests running, the limit \(maxQueriesPerUser 1\)/);
  const last = sender.to('B', 'history');
  assert.deepEqual(last.map((m) => [m.d, m.last, m.end]), [['', true, end]], 'an empty history that still says where the output ends');
  sender.gated = false;
  sender.drain();
  await first;
  await core.clientMessage('B', alice, { v: 1, t: 'replay', lines: 10 });
  assert.equal(Buffer.from(String(sender.to('B', 'history').at(-1)!.d), 'base64').toString().split('\n').length, 11);
});

test('a console the user may not list costs exactly the port calls of an unknown name', async () => {
  const { core, calls } = await setup();
  await core.setAccess({ ...alice, name: 'root', admin: true }, { rules: [{ consoles: 'web*', who: 'alice', allow: 'ro' }] });
  const attempt = async (name: string) => {
    calls.length = 0;
    const e = await core.requireKnown(alice, name, 'replay').then(() => undefined, (x: Error) => x);
    assert.ok(e instanceof NotFound, `${name}: ${e}`);
    return { calls: calls.map((c) => c.replace(`(${name})`, '(NAME)')), message: e.message.replace(name, 'NAME') };
  };
  const hidden = await attempt('db01'); // registered, but alice may not list it
  const unknown = await attempt('db99'); // no such console, and no rule would let alice list it
  assert.deepEqual(hidden, unknown);
  assert.ok(!hidden.calls.includes('consoles.get(NAME)'), `no lookup of the hidden name: ${hidden.calls.join(' ')}`);
  // A name alice may list but that does not exist costs a lookup and says just as little.
  const listable = await attempt('web99');
  assert.ok(listable.calls.includes('consoles.get(NAME)'));
  assert.equal(listable.message, hidden.message);
  // The same for getConsole and attach.
  for (const op of [(n: string) => core.getConsole(alice, n), (n: string) => core.clientMessage(`C-${n}`, alice, { v: 1, t: 'attach', c: n, mode: 'spy' })]) {
    const run = async (n: string) => { calls.length = 0; await assert.rejects(op(n), NotFound); return calls.map((c) => c.replace(`(${n})`, '(NAME)')); };
    assert.deepEqual(await run('db01'), await run('db99'));
  }
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 2));
  }
}
