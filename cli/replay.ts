// `cloudcons replay`, `export` and `grep`: clients of the cloud's replay and grep endpoints.
import fs from 'node:fs';
import WebSocket from 'ws';
import { decode, encode } from '../protocol/codec.ts';
import { BadParameter, CcError, StorageFull } from '../protocol/errors.ts';
import { checkPlainUrl, cloudTls } from '../protocol/tls.ts';
import { cloudToClient } from '../protocol/messages.ts';
import { Formatter, parseTime, stamp, type ReplayFormat } from '../cloud/core/replay.ts';
import type { LogItem } from '../cloud/core/log-store.ts';
import { api } from './api.ts';
import type { Login } from './login-config.ts';
import { err, json, line, put, safe, write } from './print.ts';

export interface RangeOptions { tail?: number; since?: string; until?: string }

function rangeQuery(o: RangeOptions): URLSearchParams {
  const q = new URLSearchParams();
  for (const k of ['since', 'until'] as const) {
    if (o[k] === undefined) continue;
    const t = parseTime(o[k]!);
    if (t === undefined) throw new BadParameter(`--${k}: not a time: ${JSON.stringify(o[k])} (use e.g. 2h, 30m, 2026-11-25, "2026-11-25 14:00" or an ISO time)`);
    q.set(k, String(t));
  }
  if (o.tail !== undefined) q.set('tail', String(o.tail));
  return q;
}

/** The JSON objects of an NDJSON body, as they arrive. */
async function* ndjson(res: Response): AsyncGenerator<Record<string, any>> {
  let rest = '';
  const dec = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += dec.decode(part, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
}

/** Parses a `chunks` replay body into LogItems as they arrive. */
async function* chunkItems(res: Response): AsyncGenerator<LogItem> {
  for await (const j of ndjson(res)) {
    if (j.gap) yield { kind: 'gap', offset: j.gap.o, bytes: j.gap.bytes, t0: j.gap.t0, t1: j.gap.t1, reason: j.gap.reason };
    else if (j.pending) yield { kind: 'pending', offset: j.pending.o, bytes: j.pending.bytes };
    else yield { kind: 'data', offset: j.o, ts: j.ts, data: Buffer.from(j.d, 'base64') };
  }
}

export interface ReplayOptions extends RangeOptions {
  follow?: boolean;
  timestamps?: boolean;
  raw?: boolean;
  marks?: boolean;
  /** Real-time playback, scaled (2 = twice as fast). */
  speed?: number;
  /** With --speed: longest pause between outputs (s). */
  maxIdle?: number;
  out?: NodeJS.WriteStream;
}

export async function replay(login: Login, name: string, o: ReplayOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  if (o.raw && (o.timestamps || o.marks)) throw new BadParameter('--raw prints the exact bytes: it cannot be combined with --timestamps or --marks');
  if (o.follow && o.until) throw new BadParameter('--follow and --until exclude each other');
  const q = rangeQuery(o);
  const format: ReplayFormat = o.speed ? 'chunks' : o.raw ? 'raw' : 'text';
  q.set('format', format);
  if (o.timestamps) q.set('timestamps', '1');
  if (o.marks) q.set('marks', '1');
  const res = await api(login, `/v1/consoles/${encodeURIComponent(name)}/replay?${q}`);
  const end = Number(res.headers.get('x-cloudcons-end'));
  if (o.speed) {
    const f = new Formatter(o.raw ? 'raw' : 'text', { timestamps: o.timestamps });
    let last: number | undefined;
    for await (const it of chunkItems(res)) {
      if (it.kind === 'data') {
        if (last !== undefined) await sleep(Math.min((it.ts - last) / o.speed, (o.maxIdle ?? 2) * 1000));
        last = it.ts;
      }
      const b = f.push(it);
      if (b.length) await write(out, b);
    }
    await write(out, f.end());
  } else { // the cloud's Formatter output: console bytes, and markers it made safe (cloud/core/replay.ts)
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) await write(out, Buffer.from(part));
  }
  if (!o.follow) return 0;
  return follow(login, name, end, o, out);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Live output from `from` on, over a spy session, until interrupted. */
function follow(login: Login, name: string, from: number, o: ReplayOptions, out: NodeJS.WriteStream): Promise<number> {
  return new Promise((resolve) => {
    const url = process.env.CLOUDCONS_WS_URL ?? login.url.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/session';
    checkPlainUrl(url, login.insecure);
    let shown = from;
    let atLineStart = true;
    const show = (o2: number, d: Buffer) => {
      const skip = Math.max(0, shown - o2);
      if (skip >= d.length) return;
      const data = d.subarray(skip);
      shown = o2 + d.length;
      if (!o.timestamps) { out.write(data); return; }
      const parts: (string | Buffer)[] = [];
      let p = 0;
      while (p < data.length) {
        if (atLineStart) { parts.push(`[${stamp(Date.now())}] `); atLineStart = false; }
        const nl = data.indexOf(0x0a, p);
        const stop = nl < 0 ? data.length : nl + 1;
        parts.push(data.subarray(p, stop));
        if (nl >= 0) atLineStart = true;
        p = stop;
      }
      for (const x of parts) out.write(x);
    };
    let ws: WebSocket | undefined;
    let stopped = false, attempt = 0;
    const ping = setInterval(() => ws?.readyState === WebSocket.OPEN && ws.send(encode({ t: 'ping', id: 1 })), 20_000);
    const stop = () => { stopped = true; clearInterval(ping); if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'replay --follow ended'); else resolve(0); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // A lost link is re-dialed; the new session starts its history at what was shown, so the
    // output continues with no gap and no overlap.
    const connect = () => {
      const sock = new WebSocket(url, { headers: { authorization: `Bearer ${login.token}` }, perMessageDeflate: false, ...cloudTls(login).wsOptions(url) });
      ws = sock;
      sock.on('open', () => { attempt = 0; sock.send(encode({ t: 'attach', c: name, mode: 'spy', from: shown, client: 'replay --follow' })); });
      sock.on('message', (data) => {
        const r = decode(cloudToClient, data.toString(), Number.MAX_SAFE_INTEGER);
        if (!r.ok) return;
        const m = r.msg;
        if (m.t === 'history') { show(shown, Buffer.from(m.d, 'base64')); if (m.last && m.end !== undefined) shown = Math.max(shown, m.end); }
        else if (m.t === 'out') show(m.o, Buffer.from(m.d, 'base64'));
        else if (m.t === 'missed') err(line`[cloudcons: ${m.bytes} bytes of output are missing here]`);
        else if (m.t === 'error') err(line`cloudcons: ${m.message}`);
      });
      sock.on('close', () => {
        if (stopped) { resolve(0); return; }
        const delay = Math.min(5000, 250 * 2 ** attempt++);
        if (attempt === 1) err(line`[cloudcons: link to the cloud lost; reconnecting]`);
        setTimeout(connect, delay);
      });
      sock.on('error', () => { /* close follows */ });
    };
    connect();
  });
}

export interface ExportOptions extends RangeOptions { format: 'raw' | 'text' | 'asciicast'; output?: string; width?: number; height?: number }

/** Writes an export to a file (or stdout), with a progress bar on a terminal. */
export async function exportLog(login: Login, name: string, o: ExportOptions): Promise<number> {
  if (!['raw', 'text', 'asciicast'].includes(o.format)) throw new BadParameter(`--format: must be raw, text or asciicast (got ${JSON.stringify(o.format)})`);
  const q = rangeQuery(o);
  if (o.tail === undefined && o.since === undefined) q.set('from', '0'); // default: everything
  q.set('format', 'chunks');
  q.set('export', '1'); // the export right, and an `export` audit record
  const res = await api(login, `/v1/consoles/${encodeURIComponent(name)}/replay?${q}`);
  const from = Number(res.headers.get('x-cloudcons-from')), to = Number(res.headers.get('x-cloudcons-end'));
  let out: NodeJS.WritableStream = process.stdout;
  let failure: Error | undefined; // the output file's first write error
  if (o.output && o.output !== '-') {
    // Opened before anything is written: a bad path is a clear error, not a crash mid-stream.
    let fd: number;
    try { fd = fs.openSync(o.output, 'w'); } catch (e) { throw new BadParameter(`--output: cannot write ${o.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    // A write the disk refuses (full) is an 'error' event: without a listener it would end the
    // process with a stack trace; here it fails the next write (or the end) with a clear message.
    out = fs.createWriteStream('', { fd }).on('error', (e) => { failure ??= e; });
  }
  const bar = process.stderr.isTTY && out !== process.stdout ? progress(to - from) : undefined;
  const f = new Formatter(o.format, { timestamps: o.format === 'text', console: name, width: o.width, height: o.height });
  try {
    for await (const it of chunkItems(res)) {
      const b = f.push(it);
      if (b.length) await write(out, b);
      bar?.(it.offset + (it.kind === 'data' ? it.data.length : it.bytes) - from);
    }
    await write(out, f.end());
    if (out !== process.stdout) await new Promise<void>((r, j) => (out as fs.WriteStream).end((e?: Error | null) => (e ? j(e) : r())));
  } catch (e0) {
    if (e0 instanceof CcError || out === process.stdout || (!failure && !(e0 as NodeJS.ErrnoException).syscall)) throw e0; // not the file's
    const e = failure ?? e0 as Error; // (later writes fail as "destroyed")
    const code = (e as NodeJS.ErrnoException).code;
    const why = `--output: writing ${o.output} failed (${code ?? e.message}): the export in it is incomplete`;
    throw code === 'ENOSPC' || code === 'EDQUOT' ? new StorageFull(`${why}; free space on that disk and export again`) : new CcError('CC_ERR_INTERNAL', why);
  }
  bar?.(to - from, true);
  return 0;
}

function progress(total: number): (done: number, final?: boolean) => void {
  let last = 0;
  const t0 = Date.now();
  return (done, final) => {
    const now = Date.now();
    if (!final && now - last < 100) return;
    last = now;
    const frac = total ? Math.min(1, done / total) : 1;
    const width = 30;
    const full = Math.round(frac * width);
    const mb = done / 1048576, s = Math.max(0.001, (now - t0) / 1000);
    put(process.stderr, line`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb.toFixed(1)} MiB ${(mb / s).toFixed(1)} MiB/s`);
    if (final) put(process.stderr, line`\n`);
  };
}

export interface GrepOptions {
  console?: string; since?: string; until?: string; ignoreCase?: boolean; json?: boolean; max?: number;
  /** Print matched lines as the console sent them (escape sequences act on the terminal). Default:
   *  rendered by safeText, since they stand among the CLI's own columns. */
  raw?: boolean;
}

export interface GrepHit { console: string; time: number; offset: number; line: string }

export async function grep(login: Login, pattern: string, o: GrepOptions): Promise<number> {
  const q = rangeQuery(o);
  q.set('pattern', pattern);
  if (o.console) q.set('console', o.console);
  if (o.ignoreCase) q.set('i', '1');
  if (o.max) q.set('max', String(o.max));
  const res = await api(login, `/v1/grep?${q}`);
  let n = 0;
  for await (const h of ndjson(res) as AsyncGenerator<GrepHit | { truncated: number; reason?: string }>) {
    // --max, or the cloud's time limit for one search (then it says why and how to narrow it).
    if ('truncated' in h) { err(h.reason !== undefined ? line`cloudcons: ${h.reason}` : line`cloudcons: stopped after ${h.truncated} matches (--max)`); continue; }
    n++;
    if (o.json) await write(process.stdout, line`${json(h, 0)}\n`);
    else if (o.raw) await write(process.stdout, Buffer.from(`${safe(h.console)}\t${stamp(h.time)}\t${h.line}\n`)); // console bytes, asked for
    else await write(process.stdout, line`${h.console}\t${stamp(h.time)}\t${h.line}\n`);
  }
  return n ? 0 : 1; // like grep: 1 when nothing matched
}
