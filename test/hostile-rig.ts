// The rig of the hostile-user end-to-end tests (test/e2e/hostile-*.test.ts): a real cloud process,
// an honest relay process publishing a real pty console (`ser1`, relay `edge1`), and the people who
// attack it: an admin (to watch), a read-only user `reader`, a user with no rights `nobody`, and a
// second relay token (`evil`) for a hostile relay the test speaks for itself over a WebSocket.
// While an attack runs, `health()` measures the cloud's /healthz latency from a process of its own
// (the test process is busy attacking, so its own event loop would be what it measured) and
// `rss()` reads the cloud's resident memory: what must hold is that nobody else notices the attack
// (assertResponsive).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { createToken, Proc, serialRig, until, type CloudExtra } from './helpers.ts';

/** The access rules of the rig: `reader` may read every console (ro), `nobody` may do nothing. */
export const HOSTILE_ACCESS = { rules: [{ consoles: '*', who: 'reader', allow: 'ro' }], default: 'none' };

export async function hostileRig(prefix: string, opts: { relayArgs?: string[]; cloud?: CloudExtra; access?: unknown } = {}) {
  const r = await serialRig(prefix, opts.relayArgs, opts.cloud);
  const relay = r.startRelay();
  await r.relayUp(relay);
  const reader = createToken(r.dataDir, 'user', 'reader');
  const nobody = createToken(r.dataDir, 'user', 'nobody');
  const evil = createToken(r.dataDir, 'relay', 'evil');
  const put = await fetch(`${r.url}/v1/access`, { method: 'PUT', headers: { ...r.auth, 'content-type': 'application/json' }, body: JSON.stringify({ doc: opts.access ?? HOSTILE_ACCESS }) });
  if (!put.ok) throw new Error(`PUT /v1/access: ${put.status} ${await put.text()}`);
  const wsBase = r.url.replace(/^http/, 'ws');
  return {
    ...r, relay, reader, nobody, evil, wsBase,
    /** fetch with a bearer token. */
    as(token: string, p: string, init: RequestInit = {}): Promise<Response> {
      return fetch(`${r.url}${p}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    },
    /** A WebSocket to /v1/session (users) or /v1/relay (relays), open. */
    async socket(kind: 'session' | 'relay', token: string): Promise<WsPeer> { return WsPeer.open(`${wsBase}/v1/${kind}`, token); },
    /** The cloud's resident set size in bytes (its process, /proc). */
    rss(): number { return rssOf(r.cloud); },
    /** Starts measuring /healthz latency every `everyMs` from a separate process, and waits until
     *  it is warm (HealthProbe.warm); `stop()` gives the samples and their quantiles. */
    health(everyMs = 50): Promise<HealthProbe> { return new HealthProbe(`${r.url}/healthz`, everyMs).warm(); },
  };
}
export type HostileRig = Awaited<ReturnType<typeof hostileRig>>;

export function rssOf(p: Proc): number {
  const status = fs.readFileSync(`/proc/${p.child.pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${p.child.pid}`);
  return Number(kb[1]) * 1024;
}

const PROBE = `
const [url, every] = process.argv.slice(1);
let stop = false;
process.on('SIGTERM', () => { stop = true; });
(async () => {
  while (!stop) {
    const t0 = performance.now();
    let ms;
    try { const r = await fetch(url, { signal: AbortSignal.timeout(10000) }); await r.text(); ms = r.ok ? performance.now() - t0 : 10000; } catch { ms = 10000; }
    process.stdout.write(ms.toFixed(2) + '\\n');
    await new Promise((r) => setTimeout(r, Number(every)));
  }
  process.exit(0);
})();`;

/** /healthz latencies (ms) and their nearest-rank quantiles (p99: the value 99 % of the samples
 *  are at or below; with fewer than 100 samples, the largest). */
export interface HealthStats { samples: number[]; p50: number; p99: number; max: number }

/** What "nobody else notices" means, for every attack: 99 % of /healthz answers within 500 ms, and
 *  none over 2 s. The probe asks again only once answered, so a stall of the cloud shows as one
 *  long sample however long it lasts: `max` is what catches a single stall, p99 a slow cloud,
 *  while one scheduling hiccup on a loaded CI machine (2 cores, two test files at once) fails
 *  neither. The attacks this guards against held the cloud for 10 s and more. */
export const HEALTH_P99_MS = 500;
export const HEALTH_MAX_MS = 2000;
export function assertResponsive(h: HealthStats, during: string): void {
  const seen = `${h.samples.length} samples, p50 ${h.p50.toFixed(1)} p99 ${h.p99.toFixed(1)} max ${h.max.toFixed(1)} ms`;
  assert.ok(h.samples.length > 0, `no /healthz answer ${during}`);
  assert.ok(h.p99 < HEALTH_P99_MS, `/healthz p99 ${h.p99.toFixed(0)} ms ${during} (${seen})`);
  assert.ok(h.max < HEALTH_MAX_MS, `/healthz took ${h.max.toFixed(0)} ms once ${during} (${seen})`);
}

export class HealthProbe {
  private readonly proc: Proc;
  /** Samples before the probe was warm: left out. */
  private skip = 0;
  constructor(url: string, everyMs: number) {
    this.proc = new Proc(process.execPath, ['-e', PROBE, url, String(everyMs)]);
  }
  /** Latencies so far (ms), warm-up included; a request that failed or took over 10 s counts as 10000. */
  samples(): number[] { return this.proc.out.split('\n').filter(Boolean).map(Number); }
  /** Waits for the probe's first `n` answers and leaves them out of stop()'s numbers: a new
   *  process's first requests (connection set-up, compiling) are slow whatever the cloud does. */
  async warm(n = 5): Promise<this> {
    await until('the /healthz probe warm', () => this.samples().length >= n || undefined, 20_000, 20);
    this.skip = this.samples().length;
    return this;
  }
  /** Stops the probe; the samples since it was warm and their quantiles. */
  async stop(): Promise<HealthStats> {
    await this.proc.kill('SIGTERM');
    const s = this.samples().slice(this.skip);
    const sorted = [...s].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
    return { samples: s, p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? NaN };
  }
}

/** A WebSocket peer that keeps every message it got, for tests that speak the protocol by hand. */
export class WsPeer {
  readonly msgs: Record<string, unknown>[] = [];
  closed?: { code: number; reason: string };
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => { try { this.msgs.push(JSON.parse(d.toString())); } catch { /* not JSON */ } });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; });
    ws.on('error', () => { /* close follows */ });
  }
  static async open(url: string, token: string): Promise<WsPeer> {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const p = new WsPeer(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => reject(new Error(`WebSocket ${url}: ${res.statusCode} ${body.trim()}`)));
      });
      ws.once('error', reject);
    });
    return p;
  }
  send(msg: Record<string, unknown>): void { this.ws.send(JSON.stringify({ v: 1, ...msg })); }
  /** The first message (from `from` on) that `pred` accepts. */
  async next(pred: (m: Record<string, unknown>) => boolean, timeoutMs = 10_000, from = 0): Promise<Record<string, unknown>> {
    return until('a matching message', () => this.msgs.slice(from).find(pred), timeoutMs, 20);
  }
  close(): void { this.ws.terminate(); }
}

/** The path of a file in the rig's data directory. */
export function dataPath(r: { dataDir: string }, ...parts: string[]): string { return path.join(r.dataDir, ...parts); }
