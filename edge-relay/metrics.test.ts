import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RelayMetrics, serveMetrics, type RelayHealth } from './metrics.ts';
import { parsePromText, promValue } from '../test/prom-text.ts';
import type { LogFields } from '../protocol/log.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => { for (const c of closers) await c(); });

const health = (over: Partial<RelayHealth> = {}): RelayHealth => ({
  relay: 'edge1', cloudConnected: true, consoles: [{ name: 'web01', up: true, read: 1024 }, { name: 'sw"1\\', up: false, read: 0 }],
  spoolBytes: 4096, spoolCapBytes: 1 << 30, segments: 2, heldBytes: 0, diskFull: false, ...over,
});

test('/metrics: every family with HELP and TYPE, gauges read from the relay at scrape time, counters as counted; /healthz, /readyz, 404, 405', async () => {
  const m = new RelayMetrics('9.9.9');
  let h = health();
  m.watch(() => h);
  const logs: [string, LogFields | undefined][] = [];
  const s = await serveMetrics({ host: '127.0.0.1', port: 0, metrics: m, log: (l, f) => logs.push([l, f]) });
  closers.push(() => s.close());
  const url = s.url()!;
  assert.match(logs[0][0], new RegExp(`^metrics: serving ${url}/metrics \\(and /healthz, /readyz\\)$`));

  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const before = await fetch(`${url}/readyz`);
  assert.equal(before.status, 503, 'not ready until the relay says so');
  assert.match(await before.text(), /^not ready: starting/);
  s.setReady(true);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  assert.equal((await fetch(`${url}/nope`)).status, 404);
  assert.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405);

  m.reconnects.inc(); m.uploadFailures.inc(); m.uploadFailures.inc();
  m.uploadSeconds.observe(0.2);
  const res = await fetch(`${url}/metrics`);
  assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  const p = parsePromText(await res.text());
  const want: [string, string][] = [['info', 'gauge'], ['console_up', 'gauge'], ['bytes_read_total', 'counter'], ['spool_bytes', 'gauge'], ['spool_oldest_unsent_seconds', 'gauge'],
    ['cloud_connected', 'gauge'], ['reconnects_total', 'counter'], ['upload_failures_total', 'counter'], ['segments_uploaded_total', 'counter'], ['upload_duration_seconds', 'histogram'],
    ['spool_disk_full', 'gauge'], ['lost_bytes_total', 'counter'], ['console_state_changes_total', 'counter'], ['process_cpu_seconds_total', 'counter'], ['process_resident_memory_bytes', 'gauge']];
  for (const [n, type] of want) assert.equal(p.families.get(`cloudcons_relay_${n}`)?.type, type, n);
  assert.equal(promValue(p, 'cloudcons_relay_info', { version: '9.9.9', relay: 'edge1' }), 1);
  assert.equal(promValue(p, 'cloudcons_relay_console_up', { console: 'web01' }), 1);
  assert.equal(promValue(p, 'cloudcons_relay_console_up', { console: 'sw"1\\' }), 0, 'a label value escaped and read back');
  assert.equal(promValue(p, 'cloudcons_relay_bytes_read_total', { console: 'web01' }), 1024);
  assert.equal(promValue(p, 'cloudcons_relay_spool_bytes'), 4096);
  assert.equal(promValue(p, 'cloudcons_relay_spool_segments'), 2);
  assert.equal(promValue(p, 'cloudcons_relay_cloud_connected'), 1);
  assert.equal(promValue(p, 'cloudcons_relay_spool_oldest_unsent_seconds'), 0);
  assert.equal(promValue(p, 'cloudcons_relay_reconnects_total'), 1);
  assert.equal(promValue(p, 'cloudcons_relay_upload_failures_total'), 2);
  assert.equal(promValue(p, 'cloudcons_relay_upload_duration_seconds_count'), 1);
  assert.equal(promValue(p, 'cloudcons_relay_upload_duration_seconds_bucket', { le: '0.25' }), 1);

  // The next scrape reads the relay again: a console gone, the cloud away, output waiting.
  h = health({ consoles: [{ name: 'web01', up: false, read: 1500 }], cloudConnected: false, oldestUnsent: Date.now() - 5000, diskFull: true });
  const q = parsePromText(await (await fetch(`${url}/metrics`)).text());
  assert.equal(promValue(q, 'cloudcons_relay_console_up', { console: 'web01' }), 0);
  assert.equal(promValue(q, 'cloudcons_relay_bytes_read_total', { console: 'web01' }), 1500);
  assert.equal(q.samples.filter((x) => x.name === 'cloudcons_relay_console_up').length, 1, 'a console no longer there has no series');
  assert.equal(promValue(q, 'cloudcons_relay_cloud_connected'), 0);
  assert.equal(promValue(q, 'cloudcons_relay_spool_disk_full'), 1);
  const age = promValue(q, 'cloudcons_relay_spool_oldest_unsent_seconds');
  assert.ok(age >= 5 && age < 30, `oldest unsent ${age} s`);

  s.setReady(false, 'stopping');
  const stopping = await fetch(`${url}/readyz`);
  assert.equal(stopping.status, 503);
  assert.equal(await stopping.text(), 'not ready: stopping\n');
});

test('an address another process holds: one error line naming it, the relay goes on without the endpoints, and they come up once the address is free', async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as net.AddressInfo).port;
  const logs: [string, LogFields | undefined][] = [];
  const m = new RelayMetrics('1');
  const s = await serveMetrics({ host: '127.0.0.1', port, metrics: m, log: (l, f) => logs.push([l, f]), retryMs: 100 });
  closers.push(() => s.close());
  assert.equal(s.url(), undefined);
  await new Promise((r) => setTimeout(r, 350)); // three more tries: still one line
  assert.equal(logs.length, 1, logs.map((l) => l[0]).join('\n'));
  assert.equal(logs[0][1]?.level, 'error');
  assert.equal(logs[0][0], `metrics: cannot listen on 127.0.0.1:${port}: another process holds that address; /metrics, /healthz and /readyz are OFF (the relay runs on and captures as usual); trying again every 100 ms. Stop the other process or change metrics.listen (--metrics-listen)`);
  await new Promise((r) => holder.close(r));
  for (let i = 0; i < 50 && !s.url(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.url(), `http://127.0.0.1:${port}`);
  assert.match(logs[1][0], new RegExp(`^metrics: serving http://127\\.0\\.0\\.1:${port}/metrics \\(and /healthz, /readyz\\) now that the address is free$`));
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
});
