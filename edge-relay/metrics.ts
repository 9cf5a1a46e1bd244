// The relay's health and metrics endpoint, off unless relay.yaml has `metrics: { listen: HOST:PORT }`
// or the relay was given --metrics-listen HOST:PORT (loopback only unless `allowRemote: true` /
// --metrics-allow-remote: none of it is authenticated, and it names every console):
//
//   GET /metrics   Prometheus text format (prom-client, its own registry): the relay's metrics
//                  below, and the process's (CPU, memory, event loop lag, ...: prom-client's
//                  default metrics, prefixed cloudcons_relay_)
//   GET /healthz   200 while the process answers (alive)
//   GET /readyz    200 once the config is loaded, the spool recovered and every console is
//                  opening; 503 before that and while stopping. A cloud outage does NOT make the
//                  relay unready: it keeps capturing into the spool, which is what it is there for
//                  (cloudcons_relay_cloud_connected and ..._spool_oldest_unsent_seconds say so).
//
// Counters count at the event; gauges are read from the relay's own state at scrape time
// (RelayHealth), and so is bytes_read_total: the relay counts each read in a plain number (the hot
// path), and the scrape publishes it.
// The address in use by another process is one error line, and the relay runs on without the
// endpoints, trying the address again every 30 s: capturing consoles matters more than metrics.
import http from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Log } from '../protocol/log.ts';

/** What the gauges show, read from the relay at each scrape (Relay.health()). */
export interface RelayHealth {
  relay: string | undefined; // undefined until the cloud's welcome names a relay without one
  cloudConnected: boolean;
  /** `read`: bytes read from the console since the relay started. */
  consoles: { name: string; up: boolean; read: number }[];
  /** Disk the spool uses (all consoles), and its cap. */
  spoolBytes: number;
  spoolCapBytes: number;
  /** Sealed segments waiting for upload. */
  segments: number;
  /** Output held in memory while the spool's disk refuses writes. */
  heldBytes: number;
  diskFull: boolean;
  /** When the oldest output byte that the cloud has not got (neither sent live nor uploaded) was
   *  read, ms since the epoch; undefined if there is none. */
  oldestUnsent?: number;
}

const P = 'cloudcons_relay_';

export class RelayMetrics {
  readonly registry = new Registry();
  private source?: () => RelayHealth;
  private h?: RelayHealth; // this scrape's snapshot
  readonly stateChanges = new Counter({ name: `${P}console_state_changes_total`, help: 'Times the console went up or down (state: the new one).', labelNames: ['console', 'state'], registers: [this.registry] });
  readonly lostBytes = new Counter({ name: `${P}lost_bytes_total`, help: 'Output bytes lost to a full spool (disk cap reached, or memory full while the disk refused writes); each loss is a recorded gap in the console\'s log.', labelNames: ['console'], registers: [this.registry] });
  readonly reconnects = new Counter({ name: `${P}reconnects_total`, help: 'Dials to the cloud after the connection was lost or could not be opened (each retry counts).', registers: [this.registry] });
  readonly uploadFailures = new Counter({ name: `${P}upload_failures_total`, help: 'Segment uploads that failed or the cloud refused (each is retried with backoff).', registers: [this.registry] });
  readonly uploadConflicts = new Counter({ name: `${P}upload_conflicts_total`, help: 'Segments the cloud refused because it holds other bytes at their offsets; set aside as .conflict files in the spool.', registers: [this.registry] });
  readonly segmentsUploaded = new Counter({ name: `${P}segments_uploaded_total`, help: 'Sealed segments the cloud confirmed storing (then deleted from the spool).', registers: [this.registry] });
  readonly uploadedBytes = new Counter({ name: `${P}uploaded_bytes_total`, help: 'Bytes of segment files (compressed) the cloud confirmed storing.', registers: [this.registry] });
  readonly uploadSeconds = new Histogram({ name: `${P}upload_duration_seconds`, help: 'Time one successful segment upload took, request to confirmation.', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });

  constructor(version: string) {
    const r = [this.registry];
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias -- a gauge's collect() gets the gauge as `this`
    const g = (name: string, help: string, value: (h: RelayHealth) => number | undefined) => new Gauge({
      name: P + name, help, registers: r,
      collect() { const h = self.snapshot(); const v = h && value(h); if (v === undefined) this.reset(); else this.set(v); },
    });
    new Gauge({ name: `${P}info`, help: 'Always 1: the relay\'s version and name as labels.', labelNames: ['version', 'relay'], registers: r,
      collect() { this.reset(); this.set({ version, relay: self.snapshot()?.relay ?? '' }, 1); } });
    new Counter({ name: `${P}bytes_read_total`, help: 'Bytes of output read from the console (all of them go to the spool first).', labelNames: ['console'], registers: r,
      collect() { this.reset(); for (const c of self.snapshot()?.consoles ?? []) this.inc({ console: c.name }, c.read); } });
    new Gauge({ name: `${P}console_up`, help: '1 while the console is open (up), 0 while it is down.', labelNames: ['console'], registers: r,
      collect() { this.reset(); for (const c of self.snapshot()?.consoles ?? []) this.set({ console: c.name }, c.up ? 1 : 0); } });
    g('cloud_connected', '1 while the relay\'s connection to the cloud is open.', (h) => Number(h.cloudConnected));
    g('spool_bytes', 'Disk the spool uses: output not yet confirmed stored by the cloud (all consoles).', (h) => h.spoolBytes);
    g('spool_cap_bytes', 'Disk the spool may use (relay.spool.capBytes); past it the oldest unsent output becomes a recorded gap.', (h) => h.spoolCapBytes);
    g('spool_segments', 'Sealed segments waiting for upload.', (h) => h.segments);
    g('spool_held_bytes', 'Output held in memory because the spool\'s disk refuses writes.', (h) => h.heldBytes);
    g('spool_disk_full', '1 while the spool\'s disk refuses writes (full or failing): output is held in memory, up to relay.spool.memoryBytes.', (h) => Number(h.diskFull));
    g('spool_oldest_unsent_seconds', 'Age of the oldest output byte the cloud has not got yet (neither sent live nor uploaded); 0 when it has everything.', (h) => (h.oldestUnsent === undefined ? 0 : Math.max(0, (Date.now() - h.oldestUnsent) / 1000)));
    collectDefaultMetrics({ register: this.registry, prefix: P });
  }

  private snapshot(): RelayHealth | undefined { return this.h ?? (this.h = this.source?.()); }

  /** Where the gauges read the relay's state from (the relay calls it when it is made). */
  watch(source: () => RelayHealth): void { this.source = source; }

  /** One scrape: the relay's state read once for every gauge. */
  async text(): Promise<string> {
    this.h = undefined;
    // prom-client writes a NaN (an event-loop gauge before its first sample) as `Nan`, which
    // Prometheus reads but the format (and stricter readers, OpenMetrics) spell `NaN`.
    try { return (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN'); } finally { this.h = undefined; }
  }

  /** Forgets a console's series (a console removed from the config by a reload). */
  forgetConsole(name: string): void {
    this.lostBytes.remove({ console: name });
    for (const state of ['up', 'down']) this.stateChanges.remove({ console: name, state });
  }
}

export interface MetricsServer {
  /** The address it listens on (undefined while the address is taken). */
  readonly url: () => string | undefined;
  /** Ready (200 at /readyz) or not (503, with `why`). */
  setReady(ready: boolean, why?: string): void;
  close(): Promise<void>;
}

/** Serves /metrics, /healthz and /readyz on host:port (checked by the caller: see
 *  config.ts metricsListenProblem). Never rejects for a taken address: says so in one error
 *  line and tries again every `retryMs` (default 30 s) until it gets it. */
export async function serveMetrics(o: { host: string; port: number; metrics: RelayMetrics; log: Log; retryMs?: number }): Promise<MetricsServer> {
  let ready = false, why = 'starting: loading the config, recovering the spool, opening the consoles';
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.setHeader('allow', 'GET, HEAD'); send(405, 'text/plain', 'only GET and HEAD\n'); return; }
    if (path === '/healthz') send(200, 'text/plain', 'ok\n');
    else if (path === '/readyz') send(ready ? 200 : 503, 'text/plain', ready ? 'ready\n' : `not ready: ${why}\n`);
    else if (path === '/metrics') {
      o.metrics.text().then((t) => send(200, o.metrics.registry.contentType, t), (e: Error) => {
        o.log(`metrics: a scrape failed: ${e.message}`, { level: 'error' });
        send(500, 'text/plain', 'scrape failed (see the relay log)\n');
      });
    } else send(404, 'text/plain', 'not found: /metrics, /healthz or /readyz\n');
  });
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 10_000;
  const where = o.host.includes(':') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
  let retry: NodeJS.Timeout | undefined, closed = false, said = false;
  const retryMs = o.retryMs ?? 30_000;
  const every = retryMs >= 1000 ? `${Math.round(retryMs / 1000)} s` : `${retryMs} ms`;
  const listen = () => new Promise<void>((resolve) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const held = e.code === 'EADDRINUSE';
      if (!said) {
        said = true;
        o.log(held
          ? `metrics: cannot listen on ${where}: another process holds that address; /metrics, /healthz and /readyz are OFF (the relay runs on and captures as usual); trying again every ${every}. Stop the other process or change metrics.listen (--metrics-listen)`
          : `metrics: cannot listen on ${where}: ${e.code ?? ''} ${e.message}; /metrics, /healthz and /readyz are OFF (the relay runs on and captures as usual); trying again every ${every}. Change metrics.listen (--metrics-listen)`,
        { level: 'error' });
      }
      if (!closed) { retry = setTimeout(() => void listen(), retryMs); retry.unref(); }
      resolve();
    };
    const onListening = () => {
      server.off('error', onError);
      const a = server.address();
      o.log(`metrics: serving http://${where.replace(/:\d+$/, `:${typeof a === 'object' && a ? a.port : o.port}`)}/metrics (and /healthz, /readyz)${said ? ' now that the address is free' : ''}`);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(o.port, o.host);
  });
  await listen();
  return {
    url: () => { const a = server.address(); return typeof a === 'object' && a ? `http://${where.replace(/:\d+$/, `:${a.port}`)}` : undefined; },
    setReady: (r, w) => { ready = r; why = w ?? (r ? '' : why); },
    close: () => new Promise((resolve) => { closed = true; clearTimeout(retry); server.closeAllConnections(); if (!server.listening) { resolve(); return; } server.close(() => resolve()); }),
  };
}
