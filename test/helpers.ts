// Shared fixtures for end-to-end tests: real processes (cloud, relay, CLI) on loopback, real ptys
// from socat. Everything started here is registered and stopped by PID in `cleanup()`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import * as pty from '@lydell/node-pty';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'bin', 'cloudcons.js');

const procs = new Set<ChildProcess>();
const ptys = new Set<pty.IPty>();

const dirs = new Set<string>();
/** Stopped by cleanup(), so a test that fails midway leaves no timer or socket keeping its file's
 *  process alive. */
const stoppers = new Set<() => void>();
/** A temp dir removed by cleanup() (kept when KEEP_TMP is set, to look at after a failure). */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `cc-${prefix}-`));
  dirs.add(d);
  return d;
}

/** Every path under `root` (itself included) that group or others may use, with its mode: what
 *  must be empty for a data directory or a spool (protocol/private-files.ts). */
export function looseModes(root: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.mode & 0o077) out.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(root);
  return out;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try { const v = await fn(); if (v) return v as NonNullable<T>; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A process with its output collected. */
export class Proc {
  out = '';
  err = '';
  readonly child: ChildProcess;
  /** `opts.env` adds to this process's environment; with `cleanEnv` it is the whole environment. */
  constructor(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; cleanEnv?: boolean } = {}) {
    this.child = spawn(cmd, args, { env: opts.cleanEnv ? opts.env : { ...process.env, ...opts.env }, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); });
    this.child.stderr!.on('data', (d: Buffer) => { this.err += d.toString(); });
    this.child.on('exit', () => procs.delete(this.child));
  }
  waitFor(re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    return until(`${re} in output of pid ${this.child.pid}`, () => re.exec(this.out + this.err), timeoutMs);
  }
  get exited(): boolean { return this.child.exitCode !== null || this.child.signalCode !== null; }
  async kill(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill(sig);
    await done;
  }
}

/** A CLI process. A relay's or cloud's log is in the readable form tests match messages in (its
 *  stderr is a pipe, which would make it JSON); test/e2e/observe.test.ts covers the JSON form. */
export function cloudcons(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Proc {
  return new Proc(process.execPath, [CLI, ...args], { env: { CLOUDCONS_LOG_FORMAT: 'pretty', ...env }, cwd });
}

/** Runs a CLI command to completion. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, cwd, timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Extra arguments and environment for a cloud process. */
export interface CloudExtra { args?: string[]; env?: NodeJS.ProcessEnv }

export async function startCloud(dataDir: string, port = 0, extra: CloudExtra = {}): Promise<{ proc: Proc; url: string; adminToken: string }> {
  const proc = cloudcons(['cloud', '--data', dataDir, '--port', String(port), ...(extra.args ?? [])], extra.env);
  const m = await proc.waitFor(/listening on (http:\/\/\S+)/);
  return { proc, url: m[1], adminToken: fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim() };
}

export function createToken(dataDir: string, kind: 'user' | 'relay', name: string): string {
  const r = cli(kind === 'user' ? ['token', 'create', '--user', name, '--data', dataDir] : ['relay-token', 'create', name, '--data', dataDir]);
  if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return r.stdout.toString().trim();
}

/** A linked pty pair made by socat: the relay opens `dev`, the test plays the device on `peer`. */
export class PtyPair {
  proc?: Proc;
  constructor(readonly dev: string, readonly peer: string) {}
  static async create(dir: string): Promise<PtyPair> {
    const p = new PtyPair(path.join(dir, 'dev'), path.join(dir, 'peer'));
    await p.start();
    return p;
  }
  async start(): Promise<void> {
    this.proc = new Proc('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.dev}`, `pty,raw,echo=0,link=${this.peer}`]);
    await this.proc.waitFor(/starting data transfer loop/);
  }
  /** Ends socat. SIGTERM (the default) lets it remove its links; after SIGKILL a link dangles into
   *  /dev/pts, where another process's new pty may take the same number. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> { await this.proc?.kill(signal); }
}

/** The device end of a pty pair, opened without becoming a controlling terminal: collects what
 *  arrives and writes what the device "says". Closed by cleanup(). */
export function openPtyPeer(file: string): { received(): Buffer; write(b: Buffer | string): number; close(): void } {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
  const stream = new tty.ReadStream(fd);
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  stream.on('error', () => { /* EIO once socat is gone */ });
  peers.add(stream);
  return {
    received: () => Buffer.concat(chunks),
    write: (b) => (typeof b === 'string' ? fs.writeSync(fd, b) : fs.writeSync(fd, b)),
    close: () => { peers.delete(stream); stream.destroy(); },
  };
}
const peers = new Set<tty.ReadStream>();

/** The CLI run interactively on a real pty, as a person would. */
export class Terminal {
  screen = '';
  readonly p: pty.IPty;
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT) {
    this.p = pty.spawn(process.execPath, [CLI, ...args], { cols: 100, rows: 30, cwd, env: { ...process.env, ...env } as Record<string, string> });
    ptys.add(this.p);
    this.p.onData((d) => { this.screen += d; });
    this.p.onExit(() => ptys.delete(this.p));
  }
  write(s: string): void { this.p.write(s); }
  waitFor(text: string | RegExp, timeoutMs = 10_000): Promise<boolean> {
    return until(`${text} on the terminal`, () => (typeof text === 'string' ? this.screen.includes(text) : text.test(this.screen)), timeoutMs);
  }
  kill(): void { try { this.p.kill(); } catch { /* gone */ } }
}

export async function cleanup(): Promise<void> {
  for (const stop of stoppers) stop();
  stoppers.clear();
  for (const p of peers) p.destroy();
  peers.clear();
  for (const t of ptys) { try { t.kill('SIGKILL'); } catch { /* gone */ } }
  await Promise.all([...procs].map((c) => new Promise<void>((r) => {
    if (c.exitCode !== null || c.signalCode !== null) return r();
    c.once('exit', () => r());
    c.kill('SIGKILL');
  })));
  if (!process.env.KEEP_TMP) for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** A cloud process (on a fixed port, so it can be restarted), a relay token for relay `edge1`, and
 *  a socat pty pair published as serial console `ser1` by relays `startRelay()` starts (spool in
 *  DIR/spool, `relayArgs` appended). `stored()` is the console's stored bytes and end offset. */
export async function serialRig(prefix: string, relayArgs: string[] = [], cloudExtra: CloudExtra = {}) {
  const dir = tmpDir(prefix);
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  const c = await startCloud(dataDir, port, cloudExtra);
  const relayTok = createToken(dataDir, 'relay', 'edge1');
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  ser1: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
  const auth = { authorization: `Bearer ${c.adminToken}` };
  // The token in a file, as the README teaches: never on the relay's command line.
  const tokenFile = path.join(dir, 'relay-token');
  fs.writeFileSync(tokenFile, `${relayTok}\n`, { mode: 0o600 });
  const rig = {
    dir, dataDir, port, url: c.url, adminToken: c.adminToken, relayToken: relayTok, tokenFile, auth, cloud: c.proc, pair,
    startRelay: (extra: string[] = [], env: NodeJS.ProcessEnv = {}) => cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', c.url, ...(env.CLOUDCONS_TOKEN_FILE || env.CREDENTIALS_DIRECTORY || extra.includes('--token-file') ? [] : ['--token-file', tokenFile]), ...relayArgs, ...extra], env),
    /** Waits until the relay has the console up and the cloud lists it up (the relay logs "up"
     *  before the cloud has taken its hello; attaching in between is "not found"). */
    async relayUp(relay: Proc): Promise<void> {
      await relay.waitFor(/console ser1 up/);
      await until('the cloud to list ser1 up', async () => {
        const r = await fetch(`${c.url}/v1/consoles/ser1`, { headers: auth });
        if (!r.ok) throw new Error(`GET /v1/consoles/ser1: ${r.status} ${await r.text()}`);
        return ((await r.json()) as { state?: string }).state === 'up' ? true : undefined;
      }, 15_000);
    },
    async restartCloud(): Promise<void> { rig.cloud = (await startCloud(dataDir, port, cloudExtra)).proc; },
    async stored(): Promise<{ end: number; bytes: Buffer } | undefined> {
      const r = await fetch(`${c.url}/v1/consoles/ser1/replay?from=0&format=raw`, { headers: auth }).catch(() => undefined);
      return r?.ok ? { end: Number(r.headers.get('x-cloudcons-end')), bytes: Buffer.from(await r.arrayBuffer()) } : undefined;
    },
  };
  return rig;
}

/** Writes `stream` to a pty peer at `rate` bytes/s (115200 baud: 11520) while running; a full
 *  pty (nobody reading) just makes it fall behind, as a device under flow control would. */
export function paceEmitter(peer: { write(b: Buffer): number }, stream: Buffer, rate: number) {
  let pos = 0, credit = 0, running = false;
  const t = setInterval(() => {
    if (!running) return;
    credit = Math.min(credit + rate / 20, rate);
    while (credit >= 1 && pos < stream.length) {
      try {
        const n = peer.write(stream.subarray(pos, pos + Math.min(Math.floor(credit), 4096)));
        pos += n; credit -= n;
      } catch (e) { if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break; throw e; }
    }
  }, 50);
  const stop = () => { clearInterval(t); stoppers.delete(stop); };
  stoppers.add(stop);
  return {
    get pos() { return pos; },
    run(on: boolean) { running = on; },
    stop,
  };
}

/** A spy over a session WebSocket: the attach history, then live output placed by offset. Chunks
 *  that arrive ahead of the view (overtaken on their way) wait in `ahead` for the bytes before them;
 *  a hole that never fills leaves them there, and the view short. */
export function spyViewer(wsUrl: string, token: string, consoleName: string, tail = 1000) {
  const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
  let view = Buffer.alloc(0);
  let end = -1; // offset of view's end, once the history arrived
  let ahead: { o: number; d: Buffer }[] = [];
  let outs = 0;
  const place = () => {
    ahead.sort((a, b) => a.o - b.o);
    while (ahead.length && ahead[0].o <= end) {
      const { o, d } = ahead.shift()!;
      if (o + d.length > end) { view = Buffer.concat([view, d.subarray(end - o)]); end = o + d.length; }
    }
  };
  let hist = Buffer.alloc(0);
  let status = 'connecting';
  ws.on('open', () => { status = 'connected, attach sent'; });
  ws.on('close', (code, reason) => { status += `; closed ${code} ${reason}`; });
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString());
    if (m.t === 'error' || m.t === 'notice' || m.t === 'attached') status += `; ${m.t} ${m.message ?? m.text ?? m.mode}`;
    if (m.t === 'history') {
      hist = Buffer.concat([hist, Buffer.from(m.d, 'base64')]);
      if (m.last) { view = hist; end = m.end; place(); }
    }
    if (m.t === 'out') { outs++; ahead.push({ o: m.o, d: Buffer.from(m.d, 'base64') }); if (end >= 0) place(); }
  });
  ws.on('open', () => ws.send(JSON.stringify({ v: 1, t: 'attach', c: consoleName, mode: 'spy', tail })));
  ws.on('error', (e) => { status += `; error ${e.message}`; });
  const kill = () => { ws.terminate(); stoppers.delete(kill); };
  stoppers.add(kill);
  return {
    get text() { return view.toString(); }, get bytes() { return view; }, get end() { return end; },
    /** Live messages received; chunks still waiting for a hole to fill. */
    get outs() { return outs; }, get waiting() { return ahead.map((a) => [a.o, a.o + a.d.length]); },
    /** What happened to the connection: opened, attached, errors, closed with code and reason. */
    get status() { return status; },
    /** For until(): true once the attach history arrived; else throws saying how far it got. */
    attached() { if (end >= 0) return true; throw new Error(`the spy is not attached: ${status}`); },
    close: () => { ahead = []; ws.close(); stoppers.delete(kill); },
  };
}
