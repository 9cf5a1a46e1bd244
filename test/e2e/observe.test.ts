// Watching a relay (issue 16, items 6 and 7): a real relay process with a socat pty console and a
// real cloud. /metrics is scraped and read strictly; its values follow what the console prints
// and what the cloud does; /healthz and /readyz answer, a cloud outage leaves the relay ready.
// Its log is JSON lines off a terminal and readable lines on one; --log-level hides what is below.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cleanup, cli, openPtyPeer, serialRig, Terminal, until, type Proc } from '../helpers.ts';
import { parsePromText, promValue } from '../prom-text.ts';

after(cleanup);

const scrape = async (url: string) => parsePromText(await (await fetch(`${url}/metrics`)).text());
const metric = async (url: string, name: string, labels: Record<string, string> = {}) => promValue(await scrape(url), `cloudcons_relay_${name}`, labels);
const metricsUrl = async (relay: Proc) => (await relay.waitFor(/metrics: serving (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1];
const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { throw new Error(`not a JSON line: ${l}`); } });

test('/metrics follows the console and the cloud: bytes read exactly as written, connected 1 -> 0 -> 1, reconnects counted, the age of unsent output while the cloud is away; ready throughout; JSON log lines with time, level and fields', { timeout: 120_000 }, async () => {
  const rig = await serialRig('observe', ['--reconnect-max-backoff-ms', '500']);
  fs.appendFileSync(path.join(rig.dir, 'relay.yaml'), 'metrics: { listen: 127.0.0.1:0 }\n');
  const relay = rig.startRelay([], { CLOUDCONS_LOG_FORMAT: '' }); // stderr is a pipe: JSON by default
  const url = await metricsUrl(relay);
  await rig.relayUp(relay);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  await until('ready', async () => (await fetch(`${url}/readyz`)).status === 200);

  const peer = openPtyPeer(rig.pair.peer);
  let sent = Buffer.alloc(0);
  const say = (n: number) => { const b = randomBytes(n); peer.write(b); sent = Buffer.concat([sent, b]); };
  const read0 = await metric(url, 'bytes_read_total', { console: 'ser1' });
  assert.equal(read0, 0);
  assert.equal(await metric(url, 'console_up', { console: 'ser1' }), 1);
  assert.equal(await metric(url, 'cloud_connected'), 1);
  assert.equal(await metric(url, 'reconnects_total'), 0);
  say(5000);
  await until('bytes_read_total to count what the device wrote', async () => (await metric(url, 'bytes_read_total', { console: 'ser1' })) === sent.length, 10_000);
  await until('output stored', async () => ((await rig.stored())?.bytes.equals(sent) ? true : undefined), 20_000, 100);
  assert.equal(await metric(url, 'spool_oldest_unsent_seconds'), 0, 'the cloud has everything');

  await rig.cloud.kill('SIGKILL');
  await until('cloud_connected 0', async () => (await metric(url, 'cloud_connected')) === 0, 10_000);
  say(3000);
  await until('the console output counted while the cloud is away', async () => (await metric(url, 'bytes_read_total', { console: 'ser1' })) === sent.length, 10_000);
  await until('reconnect attempts counted', async () => (await metric(url, 'reconnects_total')) >= 2, 15_000);
  await new Promise((r) => setTimeout(r, 1100));
  const p = await scrape(url);
  const age = promValue(p, 'cloudcons_relay_spool_oldest_unsent_seconds');
  assert.ok(age >= 1 && age < 60, `the output waiting is ${age} s old`);
  assert.ok(promValue(p, 'cloudcons_relay_spool_bytes') > 0);
  assert.equal(promValue(p, 'cloudcons_relay_console_up', { console: 'ser1' }), 1, 'capture goes on');
  assert.equal((await fetch(`${url}/readyz`)).status, 200, 'a cloud outage does not make the relay unready');

  await rig.restartCloud();
  await until('cloud_connected 1 again', async () => (await metric(url, 'cloud_connected')) === 1, 20_000);
  await until('everything stored, nothing doubled', async () => ((await rig.stored())?.bytes.equals(sent) ? true : undefined), 20_000, 100);
  await until('nothing unsent', async () => (await metric(url, 'spool_oldest_unsent_seconds')) === 0, 10_000);
  const reconnects = await metric(url, 'reconnects_total');
  await relay.kill('SIGTERM');

  // The log: one JSON object a line, with time, level, msg and the relay's and console's names.
  const lines = jsonLines(relay.err);
  for (const l of lines) {
    assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(String(l.level)), JSON.stringify(l));
    assert.equal(typeof l.msg, 'string');
    assert.equal(l.name, 'relay');
  }
  const up = lines.find((l) => l.msg === 'console ser1 up');
  assert.deepEqual(up && { level: up.level, relay: up.relay, console: up.console }, { level: 'info', relay: 'edge1', console: 'ser1' });
  const gone = lines.find((l) => String(l.msg).startsWith('disconnected from cloud'));
  assert.equal(gone?.level, 'warn');
  assert.equal(gone?.relay, 'edge1');
  assert.ok(lines.some((l) => l.msg === 'SIGTERM: shutting down'));
  assert.ok(reconnects >= 2);
});

test('metrics refused on an address that is not loopback (flag or config); an address in use is one error line and the relay captures on; log.level warn hides info, --log-level wins; readable lines on a terminal', { timeout: 120_000 }, async () => {
  const rig = await serialRig('observe2');
  const relayArgs = ['relay', '--config', path.join(rig.dir, 'relay.yaml'), '--spool', path.join(rig.dir, 'spool'), '--cloud', rig.url, '--token-file', rig.tokenFile];
  const remote = cli([...relayArgs, '--metrics-listen', '0.0.0.0:9464']);
  assert.equal(remote.code, 2, remote.stderr);
  assert.equal(remote.stderr, 'cloudcons: --metrics-listen: 0.0.0.0 is not a loopback address: /metrics, /healthz and /readyz have no authentication and name every console; ' +
    'listen on 127.0.0.1 (a scraper on this host, or a proxy in front), or set metrics.allowRemote: true (--metrics-allow-remote) to serve them on the network (got "0.0.0.0:9464")\n');
  const cfg = path.join(rig.dir, 'remote.yaml');
  fs.writeFileSync(cfg, fs.readFileSync(path.join(rig.dir, 'relay.yaml'), 'utf8') + 'metrics: { listen: "[::]:9464" }\n');
  const inCfg = cli([...relayArgs.slice(0, 2), cfg, ...relayArgs.slice(3)]);
  assert.equal(inCfg.code, 2, inCfg.stderr);
  assert.match(inCfg.stderr, /^cloudcons: invalid config .*remote\.yaml:\n {2}- metrics\.listen: :: is not a loopback address: .* \(got "\[::\]:9464"\)\n$/);

  // Another process holds the address: the relay says so once, at error, and goes on capturing.
  // The config's log level (warn) hides the rest.
  const quiet = path.join(rig.dir, 'quiet.yaml');
  fs.writeFileSync(quiet, fs.readFileSync(path.join(rig.dir, 'relay.yaml'), 'utf8') + 'log: { level: warn }\n');
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  after(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const relay = rig.startRelay(['--metrics-listen', `127.0.0.1:${port}`, '--config', quiet]);
  await until('the cloud to list ser1 up', async () => ((await (await fetch(`${rig.url}/v1/consoles/ser1`, { headers: rig.auth })).json()) as { state?: string }).state === 'up' ? true : undefined, 15_000);
  const peer = openPtyPeer(rig.pair.peer);
  const sent = randomBytes(2000);
  peer.write(sent);
  await until('output stored', async () => ((await rig.stored())?.bytes.equals(sent) ? true : undefined), 20_000, 100);
  assert.ok(!relay.exited);
  const lines = relay.err.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, relay.err);
  assert.match(lines[0], new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} ERROR relay: metrics: cannot listen on 127\\.0\\.0\\.1:${port}: another process holds that address; /metrics, /healthz and /readyz are OFF \\(the relay runs on and captures as usual\\); trying again every 30 s\\. Stop the other process or change metrics\\.listen \\(--metrics-listen\\)$`));
  // Below warn nothing shows (at info the relay says it holds ser1, connected, ser1 up: the test above).
  await rig.cloud.kill('SIGKILL');
  await relay.waitFor(/WARN {2}relay: disconnected from cloud/);
  assert.doesNotMatch(relay.err, /INFO|holding|connected to|console ser1 up/);
  await relay.kill('SIGTERM');
  await rig.restartCloud();

  // On a terminal: readable lines (local time, level, message) by themselves; --log-level wins
  // over the config's.
  const term = new Terminal([...relayArgs.slice(0, 2), quiet, ...relayArgs.slice(3), '--log-level', 'info'], { CLOUDCONS_LOG_FORMAT: '', CLOUDCONS_LOG_LEVEL: '', NO_COLOR: '' });
  await term.waitFor(/console ser1 up/, 15_000);
  term.kill();
  assert.match(term.screen, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \x1b\[36mINFO \x1b\[0m relay: edge1 holding ser1 \(serial\)\r\n/);
  assert.match(term.screen, /INFO \x1b\[0m relay: console ser1 up\r\n/);
  assert.doesNotMatch(term.screen, /"level"|\{"/);
});
