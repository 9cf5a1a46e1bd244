// Hostile input: random and mutated protocol frames, HTTP requests and config files thrown at the
// cloud, the relay and the importers for a bounded time. No crash, no hang, no unhandled
// rejection, no 500 for bad input; clear errors; and the legitimate path still works afterwards.
//
//   1. cloud (a real process, a real relay publishing `cat1`): a second relay and users over
//      WebSockets, random HTTP requests on every route, raw socket junk; RSS sampled.
//   2. relay (a real process) against a fake cloud written here: mutated cloud->relay messages,
//      random answers to its segment uploads; then an honest cloud checks nothing was lost.
//   3. relay YAML configs and conserver.cf files, in a worker (so a catastrophic regex is caught).
//
// Deterministic from a seed (printed). FUZZ_SEED=N (or `random`) picks another, FUZZ_MS the total
// fuzzing time (default 60000: about 65 s for the file on 2 cores).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import WebSocket, { WebSocketServer } from 'ws';
import { decode } from '../../protocol/codec.ts';
import { cloudToClient, cloudToRelay, relayToCloud } from '../../protocol/messages.ts';
import { bufferSource, encodeSegment, readBlock, segmentKey, verifySegment } from '../../protocol/segment.ts';
import { CcError } from '../../protocol/errors.ts';
import { parseRelayConfig } from '../../edge-relay/config.ts';
import { importConserverCf } from '../../edge-relay/conserver-import.ts';
import { cleanup, cloudcons, createToken, ROOT, startCloud, tmpDir, until, type Proc } from '../helpers.ts';

// ------------------------------------------------------------------------------ seeded randomness
/** mulberry32: a tiny seeded PRNG, enough for fuzzing. */
export class Rng {
  private a: number;
  constructor(seed: number) { this.a = seed >>> 0; }
  f(): number {
    let t = (this.a = (this.a + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.f() * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  bool(p = 0.5): boolean { return this.f() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  /** Printable ASCII (no control characters: those would be signals on a pty). */
  text(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 -_.:/'): string { let s = ''; for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)]; return s; }
  /** A size biased to small, sometimes large. */
  size(max: number): number { return this.bool(0.7) ? this.int(Math.min(max, 40)) : this.int(max); }
}

const seedEnv = process.env.FUZZ_SEED;
const SEED = seedEnv === 'random' ? Math.floor(Math.random() * 2 ** 31) : seedEnv ? Number(seedEnv) >>> 0 : 20261204;
const BUDGET = Number(process.env.FUZZ_MS ?? 60_000);
const phaseSeed = (n: number) => (SEED ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0;

// Values that break naive code: wrong types, edges of number ranges, odd strings, nesting.
const NASTY: unknown[] = [
  null, true, false, 0, -0, -1, 0.5, 1.5, -1.5, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53),
  1e21, 1e308, -1e308, 5e-324, '', ' ', '0', '-1', '1e999', 'NaN', 'Infinity', '-Infinity', '0x10', 'null', 'undefined', 'true',
  '\u0000', '\u0000abc', '%00', '../..', '..', '/', '\\', '\r\n', 'é', '\ud800', '\udfff', '💥', '<script>', '${x}', '{{x}}', '__proto__', 'constructor',
  'a'.repeat(129), 'a'.repeat(5000), '='.repeat(8), 'AAAA', 'AA==', 'A===', 'abc', '!!!!', [], [1, 2], {}, { a: 1 }, [[[[[]]]]], { v: 1, t: 'ping', id: 1 },
];
const nasty = (r: Rng): unknown => (r.bool(0.1) ? nest(r.range(2, 60)) : r.pick(NASTY));
function nest(depth: number): unknown { let x: unknown = 1; for (let i = 0; i < depth; i++) x = i % 2 ? [x] : { x }; return x; }

/** 0-3 mutations of a message object: drop, retype or add fields, change v and t. */
function mutateObj(r: Rng, msg: Record<string, unknown>): Record<string, unknown> {
  const m: Record<string, unknown> = { ...msg };
  for (let n = r.range(1, 3); n > 0; n--) {
    const keys = Object.keys(m);
    switch (r.int(8)) {
      case 0: if (keys.length) delete m[r.pick(keys)]; break;
      case 1: case 2: if (keys.length) m[r.pick(keys)] = nasty(r); break;
      case 3: m[r.pick(['x', 'extra', '__proto__', 'constructor', 'T', 'V', r.text(8)])] = nasty(r); break;
      case 4: m.t = r.pick(['', 'hello', 'welcome', 'attach', 'nope', 'out', 'in', 'error', 'HELLO', r.text(6), 'x'.repeat(300), 1, null]); break;
      case 5: m.v = r.pick([0, 2, '1', 1.0000001, null, -1, [1], undefined]); if (m.v === undefined) delete m.v; break;
      case 6: if ('d' in m || r.bool(0.3)) m.d = r.pick(['abc', '====', 'ab=c', 'YQ', 'YQ=', 'Y Q==', '!!!!', '\u0000', 'YWJj\n', 'A'.repeat(45_000), '']); break;
      case 7: if (keys.length) { const k = r.pick(keys); m[k] = typeof m[k] === 'number' ? r.pick([-1, -(2 ** 53), 2 ** 60, 1.5, NaN, Infinity]) : typeof m[k] === 'string' ? (m[k] as string).repeat(Math.min(r.range(2, 2000), Math.ceil(200_000 / ((m[k] as string).length || 1)))) : nasty(r); } break;
    }
  }
  return m;
}

/** A frame: a message (valid or mutated) as JSON, or text mangled on the way, or not text at all. */
function frame(r: Rng, valid: () => Record<string, unknown>, maxFrame: number): string | Buffer {
  const roll = r.f();
  if (roll < 0.45) return JSON.stringify(valid());
  if (roll < 0.75) return JSON.stringify(mutateObj(r, valid()));
  const text = JSON.stringify(valid());
  switch (r.int(12)) {
    case 0: return text.slice(0, r.int(text.length)); // truncated
    case 1: { const i = r.int(text.length); return text.slice(0, i) + String.fromCharCode(r.int(128)) + text.slice(i + 1); } // one character changed
    case 2: return r.pick(['', ' ', 'null', '[]', '{}', '"x"', '1', 'true', '{"v":1}', '{"t":"ping"}', '{"v":1,"t":"ping","id":1', '\u0000', '\ufeff{}']);
    case 3: return r.bytes(r.size(2048)); // binary frame
    case 4: return Buffer.from(text); // a valid message, as a binary frame
    case 5: return `${text.slice(0, -1)},"pad":"${'p'.repeat(Math.max(0, maxFrame - text.length - 9 + r.range(-2, 2)))}"}`; // just under / at / over the limit
    case 6: return `${text.slice(0, -1)},"pad":"${'p'.repeat(r.range(maxFrame, maxFrame * 5))}"}`; // over the limit (maybe over ws maxPayload)
    case 7: return `{"v":1,"v":2,${text.slice(1)}`; // duplicate keys
    case 8: return `{"__proto__":{"admin":true,"kind":"user"},"constructor":{"prototype":{"x":1}},${text.slice(1)}`;
    case 9: { const d = r.range(100, 15_000); return `{"v":1,"t":"ping","id":${'['.repeat(d)}${']'.repeat(d)}}`; } // deep nesting
    case 10: return text.replace(/"/g, r.pick(["'", '\\"', '""']));
    default: return JSON.stringify([valid(), valid()]);
  }
}

/** Every message a peer sends back must be valid per its schema; errors need a code and a message. */
function checkReply(kind: 'client' | 'relay', text: string, findings: string[], errors: Map<string, number>): Record<string, unknown> | undefined {
  const r = decode(kind === 'client' ? cloudToClient : cloudToRelay, text, Number.MAX_SAFE_INTEGER);
  if (!r.ok) { findings.push(`cloud sent an invalid ${kind} message: ${r.message}: ${text.slice(0, 200)}`); return undefined; }
  const m = r.msg as Record<string, unknown>;
  if (m.t === 'error') {
    const code = String(m.code), message = String(m.message);
    if (!/^CC_ERR_[A-Z_]+$/.test(code) || code === 'CC_ERR_INTERNAL' || message.trim().length < 5 || /internal error/i.test(message)) {
      findings.push(`unclear error to a ${kind}: ${text.slice(0, 300)}`);
    }
    errors.set(code, (errors.get(code) ?? 0) + 1);
  }
  return m;
}

function rssMb(pid: number): number {
  try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024; } catch { return 0; }
}

/** Lines of a process's stderr that say it crashed or failed on input it should have refused. */
const BAD_LOG = /unhandled|uncaught|http: unexpected error|error handling|internal error|cleanup failed|TypeError|RangeError|ReferenceError|Maximum call stack|^\s+at .+:\d+:\d+\)?$/im;
/** node-pty logs (and drops) input written to a pty whose process exits at that moment: a
 *  console going down as a user types is no crash. */
const PTY_RACE = /^Unhandled pty write error \[Error: (EBADF|EIO)/;
function badLogLines(text: string): string[] {
  return text.split('\n').filter((l) => BAD_LOG.test(l) && !PTY_RACE.test(l)).slice(0, 20);
}

const name = (r: Rng, own: readonly string[]) => r.bool(0.8) ? r.pick(own) : r.pick(['nope', 'x'.repeat(128), r.text(r.range(1, 20)), 'a:b@c', '-bad', '', 'é', '../x']);
const b64 = (r: Rng) => Buffer.from(r.text(r.size(200))).toString('base64');

if (isMainThread) {
  after(cleanup);
  console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} to repeat), budget ${BUDGET} ms (FUZZ_MS)`);

  // =============================================================================== 1. the cloud
  test('fuzz the cloud: WebSocket frames as relay and user, HTTP on every route, raw sockets', { timeout: BUDGET + 120_000 }, async () => {
    const r = new Rng(phaseSeed(1));
    const ms = Math.round(BUDGET * 0.5);
    const dir = tmpDir('fuzz-cloud');
    const data = path.join(dir, 'data');
    const cloud = await startCloud(data);
    const base = cloud.url;
    const wsBase = base.replace(/^http/, 'ws');
    const relayTok = createToken(data, 'relay', 'edge1');
    const fuzzRelayTok = createToken(data, 'relay', 'fuzzrelay');
    const alice = createToken(data, 'user', 'alice'); // the fuzzing user: ro on cat1, rw on fz*
    const bob = createToken(data, 'user', 'bob'); // the legitimate user
    const admin = cloud.adminToken;
    const rules = await fetch(`${base}/v1/access`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ doc: {
      rules: [{ consoles: '*', who: 'bob', allow: 'all' }, { consoles: 'cat1', who: 'alice', allow: ['ro', 'audit'] }, { consoles: 'fz*', who: 'alice', allow: ['rw', 'audit', 'manage'] }],
      relays: { edge1: ['cat1'], fuzzrelay: ['fz*', 'nope*'] },
    } }) });
    assert.equal(rules.status, 200, await rules.text());
    fs.writeFileSync(path.join(dir, 'relay.yaml'), 'relay: { name: edge1 }\nconsoles:\n  cat1: { type: exec, command: cat }\n');
    const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', base, '--token', relayTok]);
    await relay.waitFor(/console cat1 up/);
    const bobH = { authorization: `Bearer ${bob}` };
    await until('cat1 up at the cloud', async () => ((await (await fetch(`${base}/v1/consoles/cat1`, { headers: bobH })).json()) as { state?: string }).state === 'up', 15_000);

    /** The legitimate user: attach rw to cat1, type a line, see it come back. */
    async function legit(marker: string): Promise<void> {
      const ws = new WebSocket(`${wsBase}/v1/session`, { headers: bobH });
      let seen = '', attached = '';
      ws.on('message', (raw) => {
        const m = JSON.parse(raw.toString());
        if (m.t === 'attached') attached = m.mode;
        if (m.t === 'out' || m.t === 'history') seen += Buffer.from(m.d, 'base64').toString();
        if (m.t === 'error') attached = `error ${m.code} ${m.message}`;
      });
      await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
      ws.send(JSON.stringify({ v: 1, t: 'attach', c: 'cat1', mode: 'force', tail: 0 }));
      await until(`bob attached rw (${attached})`, () => attached === 'rw', 10_000);
      ws.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from(`${marker}\r`).toString('base64') }));
      // The pty echoes the line and cat prints it again.
      await until(`the echo of ${marker} (seen ${JSON.stringify(seen.slice(-200))})`, () => seen.split(marker).length >= 3, 10_000);
      ws.close();
    }
    const before = `before-${SEED}`, afterM = `after-${SEED}`;
    await legit(before);

    const findings: string[] = [];
    const errors = new Map<string, number>();
    const stats = { relayFrames: 0, sessionFrames: 0, wsConnections: 0, http: 0, raw: 0, closes: new Map<number, number>() };
    let maxRss = 0;
    const rss0 = rssMb(cloud.proc.child.pid!);
    const rssTimer = setInterval(() => { maxRss = Math.max(maxRss, rssMb(cloud.proc.child.pid!)); }, 250);
    const end = Date.now() + ms;
    const live = () => Date.now() < end && !cloud.proc.exited;
    const MAXF = 32 * 1024;
    const fz = ['fz0', 'fz1', 'fz2', 'fz3'];
    const offsets = new Map<string, number>();

    // ----- WebSocket fuzzers: one loop per socket kind, reconnecting whenever the cloud closes.
    function consoleInfo(rr: Rng, n: string): Record<string, unknown> {
      const info: Record<string, unknown> = { name: n, type: rr.pick(['exec', 'serial', 'tcp', 'x', 'ser\x1b[2Kial']), state: rr.pick(['up', 'down']), since: rr.bool(0.9) ? Date.now() : rr.pick([-1, 1e300, 253402300800000, 1.5]) };
      if (rr.bool(0.3)) info.reason = rr.bool(0.8) ? rr.text(rr.size(300)) : rr.pick(['\x1b[2K\x1b[1Aok', 'a\u202eb', 'line\r\nline']);
      if (rr.bool(0.3)) info.resizable = rr.bool();
      if (rr.bool(0.2)) info.fence = rr.pick([1, 5, 2 ** 40, 0, 2 ** 48, 2 ** 48 + 1, 2 ** 53 - 1]);
      if (rr.bool(0.2)) info.ondemand = rr.bool();
      if (rr.bool(0.2)) info.breaks = [{ id: '1', text: 'break' }, { id: 'z', text: rr.text(20), confirm: true }];
      return info;
    }
    const relayMsg = (rr: Rng): Record<string, unknown> => {
      const c = name(rr, [...fz, 'cat1']);
      switch (rr.int(10)) {
        case 0: return { v: 1, t: 'hello', relay: rr.bool(0.9) ? 'fuzzrelay' : rr.pick(['edge1', 'other']), boot: rr.text(8), consoles: fz.filter(() => rr.bool(0.7)).map((n) => consoleInfo(rr, n)).concat(rr.bool(0.2) ? [consoleInfo(rr, 'cat1')] : []) };
        case 1: return { v: 1, t: 'console', info: consoleInfo(rr, c) };
        case 2: case 3: case 4: {
          const d = rr.bool(0.05) ? rr.bytes(22 * 1024) : rr.bytes(rr.size(3000));
          let o = offsets.get(c) ?? 0;
          if (rr.bool(0.1)) o = rr.pick([0, 1, 2 ** 40, 2 ** 52, Math.max(0, o - rr.int(100))]);
          offsets.set(c, o + d.length);
          return { v: 1, t: 'out', c, o, ts: rr.bool(0.9) ? Date.now() : rr.pick([0, -1, 1e20, 1.5, 1e300, 253402300800000]), d: d.toString('base64') };
        }
        case 5: return { v: 1, t: 'rejected', c, fence: rr.int(10), session: rr.pick(['', 's-1', rr.text(64)]), what: rr.pick(['in', 'break', 'resize']), reason: rr.text(rr.size(256)) };
        case 6: return { v: 1, t: 'break-sent', c, fence: rr.int(10), session: rr.text(10), seq: rr.pick(['1', 'z', '0']) };
        case 7: return { v: 1, t: 'event', c, what: rr.pick(['initcmd.start', 'idle', 'flapping', 'manual.down', 'x']), detail: rr.text(rr.size(1024)) };
        default: return { v: 1, t: rr.pick(['ping', 'pong']), id: rr.pick([0, 1, -1, 2 ** 31, 2 ** 53 - 1]) };
      }
    };
    const clientMsg = (rr: Rng): Record<string, unknown> => {
      switch (rr.int(10)) {
        case 0: case 1: {
          const m: Record<string, unknown> = { v: 1, t: 'attach', c: name(rr, [...fz, 'cat1', 'cat1']), mode: rr.pick(['rw', 'spy', 'force']) };
          if (rr.bool(0.4)) m.tail = rr.pick([0, 1, 20, 100000]);
          if (rr.bool(0.2)) m.from = rr.pick([0, 5, 2 ** 40]);
          if (rr.bool(0.3)) { m.cols = rr.range(1, 1000); m.rows = rr.range(1, 1000); }
          if (rr.bool(0.2)) m.client = rr.bool(0.8) ? rr.text(rr.size(64)) : rr.pick(['\x1b]0;x\x07', 'a\u200bb', 'tab\there']);
          return m;
        }
        case 2: case 3: return { v: 1, t: 'in', d: b64(rr) };
        case 4: return { v: 1, t: 'lock', op: rr.pick(['take', 'force', 'spy']) };
        case 5: return { v: 1, t: 'break', seq: rr.pick(['0', '1', '2', 'z', 'q']) };
        case 6: return { v: 1, t: 'resize', cols: rr.range(1, 1000), rows: rr.range(1, 1000) };
        case 7: return { v: 1, t: 'who' };
        case 8: return { v: 1, t: 'replay', lines: rr.pick([1, 20, 100000]) };
        default: return { v: 1, t: rr.pick(['ping', 'pong']), id: rr.pick([0, 6, 12, -6, 2 ** 31]) };
      }
    };

    async function wsLoop(kind: 'relay' | 'session', seed: number): Promise<void> {
      const rr = new Rng(seed);
      while (live()) {
        const token = kind === 'relay' ? fuzzRelayTok : rr.pick([alice, alice, alice, relayTok]);
        const ws = new WebSocket(`${wsBase}/v1/${kind}`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
        stats.wsConnections++;
        let open = true;
        const closed = new Promise<void>((res) => ws.on('close', (code) => { open = false; stats.closes.set(code, (stats.closes.get(code) ?? 0) + 1); res(); }));
        ws.on('error', () => { /* refused (403 for a relay token on /v1/session), or reset */ });
        ws.on('unexpected-response', (_q, res) => {
          if (res.statusCode! >= 500) findings.push(`WebSocket upgrade to /v1/${kind} answered ${res.statusCode}`);
          res.resume(); ws.terminate();
        });
        ws.on('message', (raw, isBinary) => {
          if (isBinary) { findings.push(`cloud sent a binary frame on /v1/${kind}`); return; }
          checkReply(kind === 'relay' ? 'relay' : 'client', raw.toString(), findings, errors);
        });
        await new Promise<void>((res) => { ws.once('open', () => res()); ws.once('close', () => res()); });
        if (ws.readyState === WebSocket.OPEN) {
          // A relay mostly says hello first (so its out frames get somewhere); a user mostly attaches.
          if (kind === 'relay' && rr.bool(0.8)) ws.send(JSON.stringify({ v: 1, t: 'hello', relay: 'fuzzrelay', boot: rr.text(8), consoles: fz.map((n) => ({ name: n, type: 'exec', state: 'up', since: Date.now() })) }));
          if (kind === 'session' && rr.bool(0.7)) ws.send(JSON.stringify({ v: 1, t: 'attach', c: rr.pick([...fz, 'cat1']), mode: rr.pick(['rw', 'spy', 'force']) }));
          const n = rr.range(5, 300);
          for (let i = 0; i < n && open && live(); i++) {
            const f = frame(rr, () => (kind === 'relay' ? relayMsg(rr) : clientMsg(rr)), MAXF);
            ws.send(f, { binary: typeof f !== 'string' }, () => { /* closed meanwhile */ });
            if (kind === 'relay') stats.relayFrames++; else stats.sessionFrames++;
            if (i % 10 === 9) await new Promise((res) => setTimeout(res, rr.int(15)));
            // Hold the socket until its buffer drains: the point is the cloud's handling, not our memory.
            while (open && ws.bufferedAmount > 1 << 20) await new Promise((res) => setTimeout(res, 5));
          }
          if (open) { if (rr.bool(0.2)) ws.terminate(); else ws.close(rr.pick([1000, 1001, 4000, 3000])); }
        }
        await Promise.race([closed, new Promise((res) => setTimeout(res, 3000))]);
        if (open) ws.terminate();
      }
    }

    // ----- HTTP: every route, odd methods, paths, queries, bodies and Authorization headers.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const segments: Buffer[] = [];
    for (let i = 0; i < 4; i++) {
      const chunks = [{ offset: i * 100, ts: Date.now(), data: r.bytes(100) }, { offset: i * 100 + 100, ts: Date.now() + 1, data: Buffer.from('hello\n') }];
      segments.push(await encodeSegment(fz[i], chunks));
    }
    const mutateBytes = (rr: Rng, b: Buffer): Buffer => {
      const x = Buffer.from(b);
      switch (rr.int(4)) {
        case 0: for (let n = rr.range(1, 5); n > 0; n--) x[rr.int(x.length)] = rr.int(256); return x;
        case 1: return x.subarray(0, rr.int(x.length));
        case 2: return Buffer.concat([x, rr.bytes(rr.size(100))]);
        default: return x.subarray(rr.int(x.length));
      }
    };
    const pathName = (rr: Rng): string => rr.pick([
      'cat1', 'fz0', 'fz1', 'nope', '%00', '..', '%2e%2e', '%2F', 'a%2Fb', '%ZZ', '%', '%E0%A4%A', '%C0%AF', encodeURIComponent('é💥'),
      'x'.repeat(rr.pick([129, 5000, 20000])), '.cloudcons', '__proto__', 'constructor', encodeURIComponent(rr.text(10, 'ab\u0000 "\'<>\\{}|^`')),
    ]);
    const queryVal = (rr: Rng): string => rr.pick(['', '-1', '0', '1', '1.5', 'NaN', 'Infinity', '1e999', '2h', '-2h', '99999999999999999999', '2026-13-45', 'abc', '%00', '%ZZ',
      'true', 'false', 'raw', 'text', 'asciicast', 'chunks', 'x'.repeat(3000), encodeURIComponent('[a-'), encodeURIComponent('(?<'), encodeURIComponent('\\'), 'cat1']);
    const grepPattern = (rr: Rng): string => encodeURIComponent(rr.pick(['hello', 'a.c', '^tick', '[0-9]+$', 'x|y|z', '(', '[', '\\', '*', '+?', '(?<n>a)\\k<n>', '\\p{L}', 'é', '\\u{1F4A5}', '[\\s\\S]', '(a+)+\\1', '(?=x)y', '(?<!a)b', '(a{1000}){1000}', '(x+x+)+y', 'a'.repeat(1001), rr.text(rr.size(200))]));
    type Route = { m: string; p: (rr: Rng) => string; q?: string[]; body?: 'json' | 'segment' | 'none' };
    const ROUTES: Route[] = [
      { m: 'GET', p: () => '/healthz' }, { m: 'GET', p: () => '/v1/auth/config' }, { m: 'GET', p: () => '/v1/whoami' }, { m: 'GET', p: () => '/v1/consoles' },
      { m: 'GET', p: (rr) => `/v1/consoles/${pathName(rr)}` },
      { m: 'POST', p: (rr) => `/v1/consoles/${pathName(rr)}/down` }, { m: 'POST', p: (rr) => `/v1/consoles/${pathName(rr)}/up` },
      { m: 'GET', p: (rr) => `/v1/consoles/${pathName(rr)}/replay`, q: ['from', 'since', 'until', 'tail', 'format', 'marks', 'timestamps', 'width', 'height', 'mark-ms', 'export'] },
      { m: 'GET', p: () => '/v1/grep', q: ['pattern', 'i', 'console', 'since', 'until', 'max'] },
      { m: 'PUT', p: (rr) => `/v1/consoles/${pathName(rr)}/segments`, body: 'segment' },
      { m: 'POST', p: (rr) => `/v1/consoles/${pathName(rr)}/segments/upload-url`, body: 'json' },
      { m: 'POST', p: (rr) => `/v1/consoles/${pathName(rr)}/segments/commit`, body: 'json' },
      { m: 'GET', p: (rr) => `/v1/consoles/${rr.bool(0.2) ? '.cloudcons' : pathName(rr)}/audit`, q: ['limit'] },
      { m: 'DELETE', p: (rr) => `/v1/consoles/${pathName(rr)}` }, { m: 'POST', p: (rr) => `/v1/consoles/${pathName(rr)}/move`, body: 'json' },
      { m: 'GET', p: () => '/v1/audit/verify', q: ['console'] }, { m: 'POST', p: () => '/v1/audit/reseal', q: ['console'] },
      { m: 'POST', p: () => '/v1/tokens', body: 'json' }, { m: 'GET', p: () => '/v1/tokens' }, { m: 'DELETE', p: (rr) => `/v1/tokens/${pathName(rr)}` },
      { m: 'GET', p: () => '/v1/access' }, { m: 'PUT', p: () => '/v1/access', body: 'json' }, { m: 'GET', p: () => '/v1/access/check', q: ['user', 'console', 'groups'] },
      { m: 'GET', p: (rr) => rr.pick(['/', '/index.html', '/assets/../../etc/passwd', '/assets/%2e%2e/x', '/assets/.x', '/v1', '/v1/', '/v2/x', '/v1/relay', '/v1/session', '//v1//consoles', '/v1/consoles/', '/V1/CONSOLES', '/v1/consoles?x', '/%00', `/${'a/'.repeat(2000)}`]) },
    ];
    const jsonBody = (rr: Rng): string | Buffer => {
      const valid: Record<string, unknown> = rr.pick([
        { key: segmentKey({ console: 'fz0', start: 0, end: 100, t0: 1, t1: 2 }), size: 100, sha256: 'a'.repeat(64) },
        { key: rr.pick(['x', '', '../../etc/passwd', 'logs/fz0/0000', 'logs/cat1/x']), size: rr.pick([0, -1, 2 ** 60, 'big']), sha256: rr.pick(['A'.repeat(64), 'zz', 1]) },
        { kind: rr.pick(['user', 'relay', 'admin']), name: rr.pick(['fz-user', '', '-x', 'a'.repeat(65), 'ok.name']), admin: rr.bool(), expires: rr.pick([undefined, null, -1, 0, 2 ** 53, Date.now() + 60_000, 'soon']) },
        { version: rr.pick([1e9, -1, 'x', 1.5, 2 ** 60]), doc: { rules: [{ who: '*', allow: 'all' }], default: 'rw' } },
        { version: 999_999, doc: rr.pick([null, [], 'x', { rules: 'x' }, { admins: ['alice'] }, nest(200)]) },
        { relay: rr.pick(['fuzzrelay', 'edge1', '', 'x'.repeat(200), '../x', 'relay:x', 1, null]) },
      ]);
      switch (rr.int(6)) {
        case 0: return JSON.stringify(valid);
        case 1: case 2: return JSON.stringify(mutateObj(rr, valid));
        case 3: return rr.pick(['', '{', 'null', '[]', '"x"', '1e999', '{"a":', '\u0000', '['.repeat(5000) + ']'.repeat(5000)]);
        case 4: return rr.bytes(rr.size(5000));
        default: return JSON.stringify({ ...valid, pad: 'p'.repeat(rr.pick([100_000, 2_000_000])) });
      }
    };
    const authHeader = (rr: Rng, method: string, p: string): string | undefined => {
      const mutating = method !== 'GET' && method !== 'HEAD';
      // The admin token only where it cannot break the legitimate setup: no down/up, no revokes,
      // and rules only with a stale version (so they are parsed, then refused).
      const adminOk = !mutating || p === '/v1/tokens' || p === '/v1/access';
      return rr.pick([
        undefined, '', 'Bearer', 'Bearer ', 'Basic YWxpY2U6eA==', 'Bearer ccu_nope', 'Bearer ccr_nope', `Bearer ${'x'.repeat(rr.pick([100, 9000]))}`, 'Bearer a.b.c',
        `bearer ${alice}`, `Bearer ${alice}`, `Bearer ${alice}`, `Bearer ${alice} extra`, `Bearer ${alice}\t`, `Bearer ${fuzzRelayTok}`, `Bearer ${fuzzRelayTok}`,
        `Bearer ${adminOk ? admin : alice}`, `Bearer ${adminOk ? admin : alice}`, `Bearer ${relayTok.slice(0, -1)}`,
      ]);
    };
    let slowest = { ms: 0, what: '' };
    const guarded = new WeakSet<net.Socket>();
    const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

    function request(rr: Rng): Promise<void> {
      const route = rr.pick(ROUTES);
      const method = rr.bool(0.85) ? route.m : rr.pick(METHODS);
      let p = route.p(rr);
      const qs: string[] = [];
      for (const k of route.q ?? []) if (rr.bool(0.35)) qs.push(`${k}=${k === 'pattern' ? grepPattern(rr) : queryVal(rr)}`);
      if (route.q?.includes('pattern') && rr.bool(0.8)) qs.push(`pattern=${grepPattern(rr)}`);
      if (route.q?.includes('console') && rr.bool(0.6)) qs.push(`console=${rr.pick(['cat1', 'fz0', 'fz*', 'nope', '_cloud', encodeURIComponent('../../x'), encodeURIComponent('*'.repeat(60) + 'z'), encodeURIComponent('[a-')])}`);
      if (rr.bool(0.1)) qs.push(`${rr.pick(['x', '%00', '__proto__', 'from'])}=${queryVal(rr)}`, `from=${queryVal(rr)}`);
      if (qs.length) p += `?${qs.join('&')}`;
      let body: string | Buffer | undefined;
      if (method !== 'GET' && method !== 'HEAD' && rr.bool(0.9)) {
        body = route.body === 'segment' ? (rr.bool(0.7) ? mutateBytes(rr, rr.pick(segments)) : rr.pick([rr.bytes(rr.size(4000)), Buffer.alloc(0), segments[0], Buffer.alloc(rr.pick([17 * 1024 * 1024, 200_000]))])) : jsonBody(rr);
      }
      const headers: Record<string, string> = {};
      const auth = authHeader(rr, method, p.split('?')[0]);
      if (auth === `Bearer ${admin}` && method === 'PUT' && p === '/v1/access') {
        body = JSON.stringify({ version: 999_999, doc: rr.bool(0.7) ? mutateObj(rr, { rules: [{ who: '*', allow: 'all' }], admins: ['alice'], default: 'rw', relays: { x: ['*'] } }) : nasty(rr) });
      }
      if (auth !== undefined) headers.authorization = auth;
      // Always framed: node sends a DELETE or OPTIONS body unframed, which the server must read as the next request.
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      if (body !== undefined) headers['content-type'] = rr.pick(['application/json', 'application/octet-stream', 'text/plain', 'application/json; charset=utf-16', 'multipart/form-data']);
      stats.http++;
      const what = `${method} ${p.slice(0, 200)}${p.length > 200 ? '...' : ''} (auth ${auth === undefined ? 'none' : auth.slice(0, 20)}, body ${body === undefined ? 'none' : `${body.length} bytes: ${body.slice(0, 80).toString()}`})`;
      const t0 = Date.now();
      const send = (retry: boolean): Promise<void> => new Promise<void>((res0) => {
        const res = () => { const took = Date.now() - t0; if (took > slowest.ms) slowest = { ms: took, what }; res0(); };
        const req = http.request({ host: '127.0.0.1', port: Number(new URL(base).port), method, path: p, headers, agent: retry ? false : agent, timeout: 15_000 }, (resp) => {
          const parts: Buffer[] = [];
          resp.on('data', (d: Buffer) => parts.push(d));
          resp.on('error', (e) => { findings.push(`${what}: response broke off: ${e.message}`); res(); });
          resp.on('end', () => {
            const status = resp.statusCode ?? 0;
            const text = Buffer.concat(parts).toString();
            if (status >= 500 && !(status === 503 && p.startsWith('/index'))) findings.push(`${what}: ${status} ${text.slice(0, 200)}`);
            const api = /^\/(v1|healthz)/.test(p) && !/^\/v1\/(relay|session)$/.test(p.split('?')[0]);
            if (api && method !== 'HEAD' && status >= 400 && status !== 431) {
              let ok = false;
              try { const j = JSON.parse(text); ok = /^CC_ERR_[A-Z_]+$/.test(j?.error?.code) && typeof j.error.message === 'string' && j.error.message.length > 3; } catch { /* not JSON */ }
              if (!ok) findings.push(`${what}: ${status} is not a JSON error: ${text.slice(0, 200)}`);
            }
            if (status >= 200 && status < 300 && /x-ndjson|json/.test(String(resp.headers['content-type'])) && method !== 'HEAD') {
              for (const line of text.split('\n').filter(Boolean)) { try { JSON.parse(line); } catch { findings.push(`${what}: bad JSON line in a ${status} answer: ${line.slice(0, 100)}`); break; } }
            }
            res();
          });
        });
        // An early answer (413) to a large body ends the request while the body is still being
        // written; node then drops its socket error listener and the write's EPIPE would go uncaught.
        req.on('socket', (sock) => { if (!guarded.has(sock)) { guarded.add(sock); sock.on('error', () => { /* reported on req */ }); } });
        req.on('timeout', () => { findings.push(`${what}: no answer in 15 s`); req.destroy(); });
        req.on('error', (e) => {
          // The cloud may close on a body it refused before reading it all (413 then reset); a
          // kept-alive socket may have been closed by the server as it was reused (node's docs).
          const reset = /ECONNRESET|EPIPE|socket hang up/.test(e.message);
          if (reset && !retry && !(body && body.length >= 100_000)) { void send(true).then(res0); return; } // once more, on a new connection
          if (!reset || !(body && body.length >= 100_000)) findings.push(`${what}${retry ? ' (tried twice)' : ''}: ${e.message}`);
          res();
        });
        req.end(body);
      });
      return send(false);
    }
    async function httpLoop(seed: number): Promise<void> {
      const rr = new Rng(seed);
      while (live()) await request(rr);
    }

    // ----- Raw sockets: junk that no HTTP client sends.
    async function rawLoop(seed: number): Promise<void> {
      const rr = new Rng(seed);
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      while (live()) {
        stats.raw++;
        const junk = rr.pick([
          () => rr.bytes(rr.size(3000)),
          () => `GET /v1/consoles HTTP/1.1\r\nHost: x\r\n${'X-A: b\r\n'.repeat(rr.range(1, 3000))}\r\n`,
          () => `GET /v1/relay HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: ${rr.pick(['13', '8', 'x'])}\r\nSec-WebSocket-Key: ${rr.pick([key, 'x', ''])}\r\n${rr.bool() ? `Authorization: Bearer ${fuzzRelayTok}\r\n` : ''}\r\n${rr.bool() ? rr.bytes(50).toString('latin1') : ''}`,
          () => `GET /v1/session HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: cloudcons.v1, cloudcons.token.${rr.pick([alice, 'x', '', alice + ',,'])}\r\n\r\n`,
          () => `POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: ${rr.pick(['10', '-1', 'abc', '99999999999'])}\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ${alice}\r\n\r\nzz\r\n`,
          () => `${rr.pick(['GET', 'FOO', 'G\u0000T', ''])} ${rr.pick(['/v1/whoami', '*', 'http://x/', '/\u0000', '/ /'])} HTTP/${rr.pick(['1.1', '1.0', '2.0', '9'])}\r\n\r\n`,
        ])();
        await new Promise<void>((res) => {
          const s = net.connect(Number(new URL(base).port), '127.0.0.1', () => { s.end(junk); });
          s.on('data', () => { /* whatever it answers */ });
          s.setTimeout(3000, () => s.destroy());
          s.on('close', () => res());
          s.on('error', () => { /* reset */ });
        });
      }
    }

    await Promise.all([
      wsLoop('relay', r.int(2 ** 31)), wsLoop('relay', r.int(2 ** 31)), wsLoop('session', r.int(2 ** 31)), wsLoop('session', r.int(2 ** 31)), wsLoop('session', r.int(2 ** 31)),
      httpLoop(r.int(2 ** 31)), httpLoop(r.int(2 ** 31)), httpLoop(r.int(2 ** 31)), rawLoop(r.int(2 ** 31)),
    ]);
    clearInterval(rssTimer);
    agent.destroy();
    const secs = ms / 1000;
    console.log(`fuzz cloud: ${stats.relayFrames} relay frames (${Math.round(stats.relayFrames / secs)}/s), ${stats.sessionFrames} session frames (${Math.round(stats.sessionFrames / secs)}/s) on ${stats.wsConnections} connections, ` +
      `${stats.http} HTTP requests (${Math.round(stats.http / secs)}/s), ${stats.raw} raw sockets in ${secs} s; cloud RSS ${Math.round(rss0)} MB before, max ${Math.round(maxRss)} MB, ${Math.round(rssMb(cloud.proc.child.pid!))} MB after`);
    console.log(`fuzz cloud: slowest HTTP request ${slowest.ms} ms: ${slowest.what.slice(0, 300)}`);
    console.log(`fuzz cloud: error codes ${JSON.stringify(Object.fromEntries(errors))}; close codes ${JSON.stringify(Object.fromEntries(stats.closes))}`);

    // On an exit, say how and show the crash lines before the tail (a CI report cuts long messages).
    const exitInfo = (p: typeof relay) => `code ${p.child.exitCode} signal ${p.child.signalCode}; crash lines: ${JSON.stringify(badLogLines(p.err))}; tail: ${p.err.slice(-1500)}`;
    assert.ok(!cloud.proc.exited, `the cloud exited: ${exitInfo(cloud.proc)}`);
    assert.ok(!relay.exited, `the relay exited: ${exitInfo(relay)}`);
    const uniq = [...new Set(findings)];
    assert.deepEqual(uniq.slice(0, 30), [], `${uniq.length} findings (seed ${SEED})`);
    assert.deepEqual(badLogLines(cloud.proc.err), [], 'the cloud logged a crash or an internal error');
    assert.deepEqual(badLogLines(relay.err), [], 'the relay logged a crash or an internal error');
    assert.ok(maxRss < 400, `cloud RSS reached ${maxRss} MB (bound 400 MB)`);

    // The legitimate path still works: console up, a user attaches rw, types, sees the echo, and
    // the stored output has both lines.
    await until('cat1 still up', async () => ((await (await fetch(`${base}/v1/consoles/cat1`, { headers: bobH })).json()) as { state?: string }).state === 'up', 15_000);
    await legit(afterM);
    await until('the stored output has what was typed before and after', async () => {
      const t = await (await fetch(`${base}/v1/consoles/cat1/replay?from=0&format=raw`, { headers: bobH })).text();
      return t.includes(before) && t.includes(afterM) && t.indexOf(before) < t.indexOf(afterM) ? true : undefined;
    }, 10_000);
    assert.ok(!cloud.proc.exited);
  });

  // =============================================================================== 2. the relay
  test('fuzz the relay: a fake cloud sends mutated messages and answers uploads at random; nothing is lost', { timeout: BUDGET + 120_000 }, async () => {
    const r = new Rng(phaseSeed(2));
    const ms = Math.round(BUDGET * 0.3);
    const dir = tmpDir('fuzz-relay');
    let honest = false;
    const stored = new Map<string, Buffer>(); // segments the fake cloud said it stored
    const findings: string[] = [];
    const stats = { frames: 0, connections: 0, uploads: 0, fromRelay: 0, outs: 0 };
    let maxLiveTick = -1;
    const ticks = (b: Buffer) => [...b.toString('latin1').matchAll(/tick (\d+)\r?\n/g)].map((m) => Number(m[1]));

    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        const url = req.url ?? '';
        stats.uploads++;
        const answer = (status: number, text: string) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(text); };
        if (honest) {
          if (url.endsWith('/upload-url')) return answer(200, '{"mode":"direct"}');
          if (req.method === 'PUT') { stored.set(`${stored.size}`, body); return answer(201, '{"created":true}'); }
          return answer(404, '{}');
        }
        const delay = r.bool(0.1) ? r.int(1500) : 0;
        setTimeout(() => {
          if (res.destroyed) return;
          if (r.bool(0.05)) { req.socket.destroy(); return; }
          const status = r.pick([200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 412, 413, 429, 500, 502, 503, 507, 302]);
          const isPut = req.method === 'PUT';
          if (isPut && ((status >= 200 && status < 300) || (status === 412 && url.startsWith('/presigned/')))) stored.set(`${stored.size}`, body);
          if (url.endsWith('/upload-url') && status === 200) {
            return answer(200, r.pick([
              '{"mode":"direct"}', '{"mode":"direct"}', `{"mode":"presigned","url":"http://127.0.0.1:${port}/presigned/${r.int(1e6)}","headers":{}}`,
              `{"mode":"presigned","url":"http://127.0.0.1:${port}/presigned/x","headers":${r.pick(['null', '[]', '{"x-a":"b"}', '{"content-length":"1"}', '"x"'])}}`,
              '{"mode":"presigned","url":"not a url"}', '{"mode":"presigned","url":"http://127.0.0.1:1/"}', '{"mode":"presigned"}', '{"mode":"other"}',
              'null', '[]', '"direct"', 'not json', '', '{"mode":', '{"mode":' + '['.repeat(3000) + ']'.repeat(3000) + '}',
            ]));
          }
          answer(status, r.pick(['{}', '{"created":true}', '{"error":{"code":"CC_ERR_X","message":"no"}}', 'not json', '', 'x'.repeat(r.pick([10, 100_000])), '\u0000\u00ff']));
        }, delay);
      });
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    const port = (server.address() as net.AddressInfo).port;
    const wss = new WebSocketServer({ server, path: '/v1/relay', perMessageDeflate: false });
    let current: WebSocket | undefined;
    let firstWelcome = true;
    const send = (ws: WebSocket, f: string | Buffer) => { if (ws.readyState === WebSocket.OPEN) { ws.send(f, { binary: typeof f !== 'string' }); stats.frames++; } };
    wss.on('connection', (ws) => {
      stats.connections++;
      current = ws;
      ws.on('error', () => { /* reset */ });
      ws.on('message', (raw, isBinary) => {
        stats.fromRelay++;
        if (isBinary) { findings.push('the relay sent a binary frame'); return; }
        const d = decode(relayToCloud, raw.toString(), Number.MAX_SAFE_INTEGER);
        if (!d.ok) { findings.push(`the relay sent an invalid message: ${d.message}`); return; }
        const m = d.msg;
        if (m.t === 'hello') {
          // The first welcome confirms the spool's offsets; later ones are fuzzed (but welcome first).
          const ends: Record<string, unknown> = honest || firstWelcome ? { tick1: 0 } : r.pick([{ tick1: 0 }, { tick1: r.pick([1, 100, 2 ** 40, 2 ** 53 - 1]) }, {}, { nope: 5 }, { tick1: 0, x: 1 }]);
          firstWelcome = false;
          send(ws, JSON.stringify({ v: 1, t: 'welcome', ends, ...(r.bool(0.2) && !honest ? { live: r.pick(['always', 'watched']), watched: r.bool() ? ['tick1'] : [], quietBatchMs: r.pick([0, 50, 2000]) } : {}) }));
          if (honest) send(ws, JSON.stringify({ v: 1, t: 'ctl', c: 'tick1', op: 'up', by: 'fuzz' }));
        }
        if (m.t === 'ping') send(ws, JSON.stringify({ v: 1, t: 'pong', id: m.id }));
        if (m.t === 'out') { stats.outs++; for (const n of ticks(Buffer.from(m.d, 'base64'))) maxLiveTick = Math.max(maxLiveTick, n); }
      });
    });

    // A console that prints numbered lines forever and drains its input (typed bytes would
    // otherwise fill the pty); signals from typed control characters are ignored anyway.
    fs.writeFileSync(path.join(dir, 'relay.yaml'), 'relay: { name: fuzzedge }\nconsoles:\n  tick1:\n    type: exec\n' +
      `    command: ['/bin/sh', '-c', 'trap "" INT QUIT TSTP; cat 0<&0 >/dev/null & i=0; while echo "tick $i"; do echo $i >> ${path.join(dir, 'printed')}; i=$((i+1)); sleep 0.02; done']\n`);
    const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', `http://127.0.0.1:${port}`, '--token', 'ccr_fuzz',
      '--segment-ms', '300', '--segment-bytes', '4096']);
    await relay.waitFor(/console tick1 up/);
    await until('the relay said hello', () => stats.connections > 0 && !firstWelcome);

    const cloudMsg = (): Record<string, unknown> => {
      const c = name(r, ['tick1', 'tick1', 'tick1']);
      const fence = r.bool(0.9) ? r.int(20) : r.pick([2 ** 40, 2 ** 53 - 1]);
      switch (r.int(12)) {
        case 0: return { v: 1, t: 'welcome', ends: r.pick([{ tick1: 0 }, {}, { tick1: r.pick([1, 2 ** 40]) }]), ...(r.bool(0.3) ? { live: 'watched', watched: r.bool() ? ['tick1'] : [] } : {}) };
        case 1: return { v: 1, t: 'watch', c, on: r.bool(), ...(r.bool(0.5) ? { from: r.pick([0, 10, 2 ** 40]) } : {}), ...(r.bool(0.3) ? { once: true } : {}) };
        case 2: case 3: return { v: 1, t: 'in', c, fence, session: r.text(r.size(64)), d: b64(r) };
        case 4: return { v: 1, t: 'break', c, fence, session: 's1', seq: r.pick(['1', '2', '3', '4', 'z', '0']) };
        case 5: return { v: 1, t: 'resize', c, fence, session: 's1', cols: r.range(1, 1000), rows: r.range(1, 1000) };
        case 6: return { v: 1, t: 'fence', c, fence };
        case 7: return { v: 1, t: 'ctl', c, op: r.bool(0.3) ? 'down' : 'up', by: r.text(r.range(1, 20)) };
        case 8: return { v: 1, t: 'error', code: r.pick(['CC_ERR_FORBIDDEN', 'x', '']), message: r.text(r.size(300)) };
        default: return { v: 1, t: r.pick(['ping', 'pong']), id: r.int(1e6) };
      }
    };
    const end = Date.now() + ms;
    while (Date.now() < end && !relay.exited) {
      const ws = current;
      if (ws && ws.readyState === WebSocket.OPEN) {
        for (let i = 0; i < 20; i++) {
          const f = r.bool(0.02) ? 'x'.repeat(r.pick([40_000, 1_000_000])) : frame(r, cloudMsg, 32 * 1024);
          send(ws, f);
        }
        if (r.bool(0.01)) { if (r.bool()) ws.terminate(); else ws.close(r.pick([1000, 1011, 4000, 1008])); }
      }
      await new Promise((res) => setTimeout(res, 10));
    }
    // Honest from here: the console comes back up, uploads are taken, and every line is stored.
    honest = true;
    current?.close(1001, 'fuzz over');
    await until('the relay reconnected to the honest cloud', () => current?.readyState === WebSocket.OPEN && stats.connections > 1, 30_000);
    // What the console printed (it writes each number to a file too): every line must be stored.
    const liveMax = Math.max(...fs.readFileSync(path.join(dir, 'printed'), 'utf8').split('\n').filter(Boolean).map(Number));
    const storedTicks = async () => {
      const seen = new Set<number>();
      for (const b of stored.values()) {
        let f;
        try { f = await verifySegment(b); } catch { continue; } // a body it stored from a random 2xx may be one it sent elsewhere broken off
        for (let i = 0; i < f.blocks.length; i++) for (const c of await readBlock(bufferSource(b), f, i)) for (const n of ticks(c.data)) seen.add(n);
      }
      return seen;
    };
    let missing: number[] = [];
    // An upload that failed just before (its answer was still fuzzed) waits out its backoff (up to
    // 60 s); a new connection's welcome makes the relay retry every upload at once.
    let kicked = Date.now();
    await until(`every line up to tick ${liveMax} stored`, async () => {
      if (Date.now() - kicked > 3000) { kicked = Date.now(); current?.close(1001, 'upload now'); }
      const seen = await storedTicks();
      missing = [];
      for (let n = 0; n <= liveMax; n++) if (!seen.has(n)) missing.push(n);
      return missing.length === 0;
    }, 30_000).catch((e: Error) => {
      if (process.env.FUZZ_DEBUG) fs.writeFileSync(process.env.FUZZ_DEBUG, relay.err);
      throw new Error(`${e.message}: missing ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ` (${missing.length} in all)` : ''}`); });

    console.log(`fuzz relay: ${stats.frames} frames to the relay (${Math.round(stats.frames / (ms / 1000))}/s) on ${stats.connections} connections, ${stats.uploads} upload requests answered, ` +
      `${stats.fromRelay} messages from it (${stats.outs} out), ${stored.size} segments stored, ticks 0-${liveMax} all stored (max live ${maxLiveTick})`);
    assert.ok(!relay.exited, `the relay exited: ${relay.err.slice(-3000)}`);
    assert.match(relay.err, /bad message from cloud: /, 'the relay says what was wrong with a bad message');
    assert.deepEqual([...new Set(findings)].slice(0, 20), []);
    assert.deepEqual(badLogLines(relay.err), [], 'the relay logged a crash or an internal error');
    await relay.kill();
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise((res) => server.close(res));
  });

  // ===================================================================== 3. configs and importer
  test('fuzz relay configs and conserver.cf imports: a value or a CcError, each in under 2 s', { timeout: BUDGET + 60_000 }, async () => {
    const ms = Math.round(BUDGET * 0.2);
    const dir = tmpDir('fuzz-config');
    const progress = new Int32Array(new SharedArrayBuffer(8)); // [inputs done, index started]
    const worker = new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`,
      { eval: true, workerData: { seed: phaseSeed(3), ms, dir, progress } });
    const result = new Promise<WorkerResult>((res, rej) => { worker.once('message', res); worker.once('error', rej); });
    let last = -1, lastChange = Date.now(), hung: string | undefined;
    const watch = setInterval(() => {
      const done = Atomics.load(progress, 0);
      if (done !== last) { last = done; lastChange = Date.now(); return; }
      if (Date.now() - lastChange > 2000) {
        const i = Atomics.load(progress, 1);
        hung = `input ${i} took more than 2 s (the parser hangs or backtracks): ${JSON.stringify(configInput(phaseSeed(3), i, dir).text.slice(0, 2000))}`;
        void worker.terminate();
      }
    }, 200);
    const res = await Promise.race([result, new Promise<undefined>((r) => worker.once('exit', () => setTimeout(() => r(undefined), 100)))]);
    clearInterval(watch);
    assert.equal(hung, undefined, hung);
    assert.ok(res, 'the config fuzz worker ended without a result');
    console.log(`fuzz configs: ${res.yaml} relay configs, ${res.cf} conserver.cf imports in ${ms / 1000} s (${Math.round((res.yaml + res.cf) / (ms / 1000))}/s); ` +
      `outcomes ${JSON.stringify(res.outcomes)}; slowest ${res.slowest.ms} ms`);
    assert.deepEqual(res.findings.slice(0, 10), [], `${res.findings.length} findings (seed ${SEED})`);
  });
}

interface WorkerResult { yaml: number; cf: number; outcomes: Record<string, number>; findings: string[]; slowest: { ms: number; text: string } }

// ------------------------------------------------------------------------- config inputs
const YAML_SEEDS = [
  'relay: { name: edge1 }\nconsoles:\n  cat1: { type: exec, command: cat }\n',
  `relay:
  name: edge1
  spool:
    dir: /var/lib/cloudcons/spool
    segmentBytes: 1048576
    segmentMs: 60000
    capBytes: 1073741824
  cloud: { fingerprint: 'SHA256:${'AB:'.repeat(31)}AB', insecure: false }
breaks:
  5: { string: '\\r~^b', delayMs: 500 }
  x: { string: 'a\\db', delayMs: 50, confirm: true }
consoles:
  web01:
    type: serial
    device: /dev/ttyUSB0
    baud: 115200
    dataBits: 8
    parity: none
    stopBits: 1
    flowControl: none
    readHoldoffMs: 177
    break: 5
    breaklist: [1, 2, x]
  lab-shell:
    type: exec
    command: /bin/bash -l
    cwd: /tmp
    env: { TERM: vt100 }
    initcmd: 'echo hi'
    idleTimeout: 10m
    idleString: '\\r'
    ondemand: true
  ts1-port3: { type: telnet, host: ts1.example, port: 7003, baud: 9600 }
  sw1: { type: tcp, host: 10.0.0.5, port: 2001 }
  vm1: { type: uds, path: /run/vm1/serial.sock }
  bmc7: { type: ipmi, host: 10.1.0.7, user: admin, passwordFile: /etc/cloudcons/bmc7.pw }
  core1: { type: ssh, host: 10.2.0.1, user: admin, keyFile: ~/.ssh/id_ed25519, hostKey: 'SHA256:abc' }
`,
  'consoles:\n  a: { type: exec, command: [/bin/sh, -c, "echo $x"], env: { x: "1" } }\n  b: &b { type: tcp, host: h, port: 1 }\n  c: *b\n',
];
const CF_SEEDS = ['small.cf', 'big.cf', 'broken.cf', 'sites/terminal-servers.cf'].map((f) => fs.readFileSync(path.join(ROOT, 'test/fixtures/conserver', f), 'utf8'));

const YAML_JUNK = ['~', 'null', '!!binary AAAA', '!!js/function "x"', '!!str', '!!int x', '!!map', '&a', '*a', '*nope', '[', ']', '{', '}', "'", '"', '"\\u"', '"\\x"', '1e999', '-1', '0x1F', '0o7', '.inf',
  '-.inf', '.nan', 'yes', 'no', 'on', '2026-12-04', '12:30:45', '<<: *a', '? x', '- x', '|', '>', '%YAML 1.1', '---', '...', '#', '@', '`', '\t', 'é💥', '\u0000', '\ufeff',
  'a'.repeat(10_000), '9'.repeat(400), '[' .repeat(5000), '{a: '.repeat(3000), '- '.repeat(3000), '&x [*x]'];
const CF_JUNK = ['{', '}', ';', '"', "'", '\\', '#include', '#include x.cf', '#include self.cf', '#include /dev/null', '#include /etc/passwd', '#include ../../../../etc/hostname', 'include', 'default', 'console',
  'break', 'access', 'config', 'group', '*', '&', '!', '^', '\\d', '\\z', '\\', '"\\', 'port -1', 'port 99999999999999999999', 'portbase -100', 'portinc 0', 'baud abc', 'baud 9600e', 'parity x',
  'type device', 'type host', 'type exec', 'type uds', 'type ipmi', 'type nope', 'options ondemand,!ondemand,x', 'devicesubst x=Pd', 'execsubst h=hs,p=Pd', 'initsubst x', 'break 0', 'breaklist 1,2,z,',
  'string "\\r~^b"', 'delay -1', 'a'.repeat(10_000), '"'.repeat(3000), '{'.repeat(3000), '\u0000', '\r', 'é💥', 'console x { include x; }', 'default x { include x; }',
  'console y { aliases y,y; }'];

/** Config input `i` of a run: mutated from a seed file (deterministic from seed and i). */
function configInput(seed: number, i: number, dir: string): { kind: 'yaml' | 'cf'; text: string } {
  const r = new Rng((seed ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);
  const kind = r.bool() ? 'yaml' : 'cf';
  if (r.bool(0.03)) return { kind, text: r.bytes(r.size(3000)).toString(r.pick(['latin1', 'utf8'])) };
  let lines = (kind === 'yaml' ? r.pick(YAML_SEEDS) : r.pick(CF_SEEDS)).split('\n');
  const junk = kind === 'yaml' ? YAML_JUNK : CF_JUNK;
  for (let n = r.range(1, 6); n > 0; n--) {
    const at = r.int(lines.length);
    const line = lines[at] ?? '';
    switch (r.int(10)) {
      case 0: lines.splice(at, 1); break;
      case 1: lines.splice(at, 0, line); break;
      case 2: lines[at] = r.pick([' ', '  ', '\t', '']) + line.replace(/^ {1,2}/, r.bool() ? '' : '   '); break;
      case 3: { const j = r.int(lines.length); [lines[at], lines[j]] = [lines[j], line]; break; }
      case 4: case 5: { // a token replaced with junk
        const toks = line.split(/(\s+|[:;{},[\]])/);
        const k = r.int(toks.length);
        toks[k] = r.pick(junk);
        lines[at] = toks.join('');
        break;
      }
      case 6: lines.splice(at, 0, r.pick(junk)); break;
      case 7: { const c = r.int(line.length + 1); lines[at] = line.slice(0, c) + String.fromCharCode(r.int(r.bool(0.8) ? 128 : 0x3000)) + line.slice(c + 1); break; }
      case 8: lines[at] = line.replace(/\d+/, String(r.pick(NASTY.filter((x) => typeof x === 'number' || typeof x === 'string')))); break;
      default: lines = lines.slice(0, at); break;
    }
  }
  let text = lines.join(r.bool(0.9) ? '\n' : '\r\n');
  if (kind === 'cf') text = text.replaceAll('self.cf', path.join(dir, `in-${i % 4}.cf`));
  return { kind, text };
}

function runConfigWorker({ seed, ms, dir, progress }: { seed: number; ms: number; dir: string; progress: Int32Array }): void {
  const res: WorkerResult = { yaml: 0, cf: 0, outcomes: {}, findings: [], slowest: { ms: 0, text: '' } };
  const count = (k: string) => { res.outcomes[k] = (res.outcomes[k] ?? 0) + 1; };
  // Files the cf inputs may #include (each other, themselves).
  for (let k = 0; k < 4; k++) fs.writeFileSync(path.join(dir, `in-${k}.cf`), CF_SEEDS[k]);
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    Atomics.store(progress, 1, i);
    const { kind, text } = configInput(seed, i, dir);
    const t0 = performance.now();
    try {
      if (kind === 'yaml') { res.yaml++; parseRelayConfig(text, 'fuzz.yaml'); count('yaml ok'); }
      else {
        res.cf++;
        const file = path.join(dir, `in-${i % 4}.cf`);
        fs.writeFileSync(file, text);
        const im = importConserverCf(file);
        count('cf ok');
        // What the importer writes must be a config the relay takes.
        try { parseRelayConfig(im.yaml, 'imported.yaml'); count('cf ok, yaml ok'); } catch (e) {
          count('cf ok, yaml refused');
          res.findings.push(`imported config refused by the relay: ${(e as Error).message.slice(0, 300)}\n--- input:\n${text.slice(0, 1500)}`);
        }
      }
    } catch (e) {
      if (e instanceof CcError && e.message.trim().length > 5) count(`${kind} ${e.name}`);
      else { count(`${kind} crash`); res.findings.push(`${kind}: ${(e as Error)?.stack?.split('\n').slice(0, 4).join(' | ') ?? String(e)}\n--- input:\n${text.slice(0, 1500)}`); }
    }
    const took = performance.now() - t0;
    if (took > res.slowest.ms) res.slowest = { ms: Math.round(took), text: text.slice(0, 300) };
    if (took > 2000) res.findings.push(`${kind} input ${i} took ${Math.round(took)} ms: ${text.slice(0, 500)}`);
    Atomics.add(progress, 0, 1);
    if (kind === 'cf') fs.writeFileSync(path.join(dir, `in-${i % 4}.cf`), CF_SEEDS[i % 4]);
  }
  parentPort!.postMessage(res);
}

if (!isMainThread && workerData?.progress) runConfigWorker(workerData as { seed: number; ms: number; dir: string; progress: Int32Array });
