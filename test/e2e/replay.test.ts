// Replay, search and export through the real CLI against real cloud and relay processes; part of
// the log is in sealed segments, part only in the hot tail.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pty from '@lydell/node-pty';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, cloudcons, createToken, freePort, openPtyPeer, PtyPair, startCloud, tmpDir, until, type Proc } from '../helpers.ts';

after(cleanup);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let dir: string, dataDir: string, url: string, env: NodeJS.ProcessEnv, relay: Proc, cloud: Proc, port: number, relayTok: string;
let dev: ReturnType<typeof openPtyPeer>;
let tMid = 0;
const alpha = Array.from({ length: 50 }, (_, i) => `alpha ${i} boot message\r\n`).join('');
const beta = Array.from({ length: 50 }, (_, i) => `beta ${i} kernel: eth0 up \u00e9t\u00e9\r\n`).join('');
const startRelay = () => cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', relayTok, '--segment-ms', '500']);
const storedEnd = async () => Number((await fetch(`${url}/v1/consoles/ser1/replay?tail=0`, { headers: { authorization: `Bearer ${env.CLOUDCONS_TOKEN}` } })).headers.get('x-cloudcons-end'));

before(async () => {
  dir = tmpDir('replay');
  dataDir = path.join(dir, 'data');
  port = await freePort();
  ({ proc: cloud, url } = await startCloud(dataDir, port));
  relayTok = createToken(dataDir, 'relay', 'edge1');
  env = { CLOUDCONS_URL: url, CLOUDCONS_TOKEN: createToken(dataDir, 'user', 'alice'), HOME: dir };
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  ser1: { type: serial, device: ${pair.dev} }\n`);
  relay = startRelay();
  await relay.waitFor(/console ser1 up/);
  dev = openPtyPeer(pair.peer);
  dev.write(alpha);
  await until('alpha stored', async () => (await storedEnd()) === alpha.length);
  await sleep(1200); // sealed into a segment
  tMid = Date.now();
  await sleep(50);
  dev.write(beta);
  await until('beta stored', async () => (await storedEnd()) === Buffer.byteLength(alpha + beta));
  assert.ok(fs.existsSync(path.join(dataDir, 'segments', 'logs', 'ser1')), 'part of the log is in segments');
});

test('replay --tail, --since, --until, --raw and --timestamps select and show the right output', () => {
  const r = (args: string[]) => { const x = cli(['replay', 'ser1', ...args], env); assert.equal(x.code, 0, x.stderr); return x.stdout.toString(); };
  assert.equal(r(['--tail', '2']), 'beta 48 kernel: eth0 up \u00e9t\u00e9\r\nbeta 49 kernel: eth0 up \u00e9t\u00e9\r\n');
  assert.equal(r(['--since', new Date(tMid).toISOString()]), beta);
  assert.equal(r(['--until', String(tMid)]), alpha.split('\r\n').slice(-21, -1).join('\r\n') + '\r\n', 'default: the last 20 lines of the range');
  assert.equal(r(['--until', String(tMid), '--tail', '1000']), alpha);
  assert.equal(r(['--since', '1h', '--raw']), alpha + beta);
  const ts = r(['--since', '1h', '--timestamps']).split('\n').filter(Boolean);
  assert.equal(ts.length, 100);
  for (const [i, line] of ts.entries()) {
    const m = /^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z)\] (alpha|beta) /.exec(line);
    assert.ok(m, line);
    const t = Date.parse(m[1].replace(' ', 'T'));
    assert.ok(i < 50 ? t < tMid : t > tMid, `line ${i} stamped ${m[1]}`);
  }
  const bad = cli(['replay', 'ser1', '--since', 'yesterday-ish'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since: not a time: "yesterday-ish"/);
  assert.match(cli(['replay', 'ser1', '--raw', '--timestamps'], env).stderr, /--raw prints the exact bytes/);
});

test('replay --speed plays back in real time, scaled, with long pauses capped by --max-idle', async () => {
  // The two parts were written ~1.25 s apart; every other chunk follows within milliseconds. What
  // is timed is the pause between the last alpha line and the first beta line in the CLI's own
  // output (not the whole run: process start-up jitters by hundreds of ms on a loaded machine).
  const gap = async (args: string[]) => {
    const p = cloudcons(['replay', 'ser1', '--since', '1h', ...args], env);
    let out = '', tAlpha = 0, tBeta = 0;
    p.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!tAlpha && out.includes('alpha 49')) tAlpha = performance.now();
      if (!tBeta && out.includes('beta 0')) tBeta = performance.now();
    });
    const code = await new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1)));
    assert.equal(code, 0, p.err);
    assert.equal(out, alpha + beta);
    return tBeta - tAlpha;
  };
  const slow = await gap(['--speed', '2', '--max-idle', '10']);
  const fast = await gap(['--speed', '2', '--max-idle', '0.01']);
  assert.ok(slow >= 450 && slow <= 1500, `the 1.25 s pause plays as ~625 ms at 2x: ${slow.toFixed(0)} ms`);
  assert.ok(fast < 300, `capped at 10 ms: ${fast.toFixed(0)} ms`);
  assert.match(cli(['replay', 'ser1', '--speed', '0'], env).stderr, /--speed: expected a number > 0/);
});

test('replay --marks interleaves attach and console events at their place', () => {
  const x = cli(['replay', 'ser1', '--since', '1h', '--marks'], env);
  assert.equal(x.code, 0, x.stderr);
  const out = x.stdout.toString();
  // (A relay may first announce the console as down while it is still opening it.)
  assert.match(out, /^(\[-- console down \(starting\) --\]\r\n)?\[-- console up --\]\r\nalpha 0 /, 'the console came up right before its first byte');
  assert.equal(out.split('\r\n').filter((l) => !l.startsWith('[-- ')).join('\r\n'), alpha + beta, 'the output itself is unchanged');
});

test('grep searches stored output with regex, -i, --console, --json, and exits 1 on no match', () => {
  const g = cli(['grep', 'beta 4[2-3] kernel', '--console', 'ser*'], env);
  assert.equal(g.code, 0, g.stderr);
  const lines = g.stdout.toString().trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^ser1\t\d{4}-\d\d-\d\d [\d:.]+Z\tbeta 42 kernel: eth0 up \u00e9t\u00e9$/);
  const j = cli(['grep', 'ÉTÉ', '-i', '--json', '--since', new Date(tMid).toISOString()], env);
  assert.equal(j.code, 0, j.stderr);
  const hits = j.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(hits.length, 50);
  assert.equal(hits[0].offset, alpha.length);
  assert.ok(hits[0].time > tMid);
  assert.equal(cli(['grep', 'alpha', '--since', new Date(tMid).toISOString()], env).code, 1);
  assert.equal(cli(['grep', 'beta', '--console', 'nomatch*'], env).code, 1);
  assert.match(cli(['grep', '(unclosed'], env).stderr, /bad pattern/);
  const g2 = cli(['grep', 'beta', '--console', 'ser[1-'], env); // once a 500 (the glob went straight into a RegExp)
  assert.equal(g2.code, 2, g2.stderr);
  assert.match(g2.stderr, /console: glob "ser\[1-": the \[ at position 4 has no closing \]/);
  assert.equal(cli(['grep', 'beta 42', '--console', 'ser[!2-9]'], env).code, 0);
});

test('export: raw bytes, timestamped text, and an asciicast that asciinema plays back', async () => {
  const raw = path.join(dir, 'out.raw'), cast = path.join(dir, 'out.cast'), text = path.join(dir, 'out.txt');
  const bad = cli(['export', 'ser1', '-o', path.join(dir, 'no-such-dir', 'x.cast')], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--output: cannot write .*no-such-dir\/x\.cast: ENOENT/);
  // A disk that refuses the writes (/dev/full: ENOSPC): a clear failure, not an unhandled 'error'.
  const full = cli(['export', 'ser1', '--format', 'raw', '-o', '/dev/full'], env);
  assert.equal(full.code, 1, full.stderr);
  assert.match(full.stderr, /^cloudcons: --output: writing \/dev\/full failed \(ENOSPC\): the export in it is incomplete; free space on that disk and export again\n$/);
  assert.equal(cli(['export', 'ser1', '--format', 'raw', '-o', raw], env).code, 0);
  assert.equal(fs.readFileSync(raw, 'utf8'), alpha + beta);
  assert.equal(cli(['export', 'ser1', '--format', 'text', '-o', text], env).code, 0);
  assert.match(fs.readFileSync(text, 'utf8'), /^\[\d{4}-[^\]]+Z\] alpha 0 boot message\r\n/);
  const e = cli(['export', 'ser1', '--format', 'asciicast', '-o', cast, '--width', '100'], env);
  assert.equal(e.code, 0, e.stderr);
  const [header, ...events] = fs.readFileSync(cast, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(header.version, 2);
  assert.equal(header.width, 100);
  assert.ok(events.every((ev: unknown[]) => ev[1] === 'o'));
  assert.ok(events.at(-1)[0] >= (events[0][0] as number) + 1, 'event times span the pause between the two parts');
  // asciinema's own reader (the real asciinema, from Debian; it wants a terminal) prints exactly
  // the recorded output: run on a pty with output post-processing off, so bytes pass unchanged.
  const term = pty.spawn('sh', ['-c', `stty -opost; asciinema cat ${JSON.stringify(cast)}; echo "[exit $?]"`], { cols: 100, rows: 30 });
  let shown = '';
  term.onData((d) => { shown += d; });
  await until('asciinema cat finished', () => /\[exit \d+\]/.test(shown));
  assert.equal(shown, `${alpha}${beta}[exit 0]\n`);
});

test('replay --follow: history, then live output across a segment seal and a relay restart, without gap or overlap', async () => {
  const f = cloudcons(['replay', 'ser1', '--follow', '--tail', '1'], env);
  await f.waitFor(/beta 49 kernel/);
  dev.write('gamma 1\r\n');
  await f.waitFor(/gamma 1/);
  await sleep(1200); // gamma 1 is sealed now
  await relay.kill('SIGKILL');
  dev.write('gamma 2\r\n'); // buffered by the pty while no relay holds it... and flushed at reopen:
  relay = startRelay();     // so only what is written after the relay is back can count
  await relay.waitFor(/console ser1 up/);
  await sleep(300);
  dev.write('gamma 3\r\n');
  await f.waitFor(/gamma 3/);
  // The follower, restarted from scratch, must show the same stream.
  await f.kill('SIGINT');
  const log = cli(['replay', 'ser1', '--tail', '3', '--raw'], env).stdout.toString();
  const expectTail = log.slice(log.indexOf('beta 49'));
  assert.equal(f.out, expectTail.includes('gamma 2') ? expectTail : `beta 49 kernel: eth0 up \u00e9t\u00e9\r\ngamma 1\r\ngamma 3\r\n`);
  assert.equal(f.out.split('gamma 1').length, 2, 'nothing shown twice');
  void cloud; void port;
});
