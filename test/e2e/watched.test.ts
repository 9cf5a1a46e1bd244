// Live output only while watched (`cloudcons cloud --live watched`, the AWS stack's mode): a relay
// process and a cloud process over real sockets, a device on a real pty. Unwatched output is not
// streamed (it reaches the cloud by segment upload); a viewer attaching gets everything up to now
// (the relay sends the rest of its active log from the cloud's stored end) and then live output;
// when the last viewer leaves, streaming stops; in the end the stored log is byte-exact.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { cleanup, openPtyPeer, serialRig, spyViewer, until } from '../helpers.ts';

after(cleanup);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('live mode watched: nothing streams unwatched, a viewer gets everything up to now then live, streaming stops when it leaves, a replay asks the relay for what is not sealed, the log is exact', { timeout: 90_000 }, async (t) => {
  // Segments every 10 s: the "not streamed" checks below happen well before the first seal.
  const rig = await serialRig('watched', ['--segment-ms', '10000'], { args: ['--live', 'watched'] });
  const relay = rig.startRelay();
  await rig.relayUp(relay);
  await relay.waitFor(/live output only of consoles someone watches/);
  const dev = openPtyPeer(rig.pair.peer);
  // What the cloud holds, without the replay's catch-up (a range with an end does not ask the relay).
  const storedEnd = async () => Number((await fetch(`${rig.url}/v1/consoles/ser1/replay?from=0&until=4102444800000`, { headers: rig.auth })).headers.get('x-cloudcons-end'));

  dev.write('boot line 1\r\nboot line 2\r\n');
  await sleep(800);
  assert.equal(await storedEnd(), 0, 'unwatched output is not streamed to the cloud');

  const v = spyViewer(rig.url.replace('http', 'ws') + '/v1/session', rig.adminToken, 'ser1');
  await until('the viewer sees what the console printed before it attached', () => v.text === 'boot line 1\r\nboot line 2\r\n', 5000);
  dev.write('login: ');
  await until('then live output', () => v.text.endsWith('login: '), 5000);
  const watchedEnd = await storedEnd();
  assert.equal(watchedEnd, 'boot line 1\r\nboot line 2\r\nlogin: '.length, 'while watched, replay is current');

  v.close();
  await sleep(300);
  dev.write('after the viewer left\r\n');
  await sleep(800);
  assert.equal(await storedEnd(), watchedEnd, 'streaming stopped with the last viewer');
  // A replay up to now asks the relay once for what it has not sealed: current, though unwatched.
  const t0 = Date.now();
  assert.equal((await rig.stored())?.bytes.toString(), 'boot line 1\r\nboot line 2\r\nlogin: after the viewer left\r\n', 'replay is current');
  const caughtUp = Date.now() - t0;
  dev.write('still unwatched\r\n');
  await sleep(800);
  assert.equal(await storedEnd(), watchedEnd + 'after the viewer left\r\n'.length, 'and the relay did not stream on after it');

  // A second viewer comes and goes; then the segment upload brings the rest: byte-exact.
  const v2 = spyViewer(rig.url.replace('http', 'ws') + '/v1/session', rig.adminToken, 'ser1');
  await until('a new viewer gets the unwatched part too', () => v2.text.endsWith('still unwatched\r\n'), 5000);
  v2.close();
  const all = 'boot line 1\r\nboot line 2\r\nlogin: after the viewer left\r\nstill unwatched\r\nmore, unwatched\r\n';
  dev.write('more, unwatched\r\n');
  const s = await until('all stored (by segment upload)', async () => { const x = await rig.stored(); return x?.bytes.toString() === all ? x : undefined; }, 30_000, 250);
  assert.equal(s.end, all.length);
  assert.doesNotMatch(relay.err, /UPLOAD REFUSED|SPOOL/);
  t.diagnostic(`a replay of the unwatched console took ${caughtUp} ms with the relay's catch-up`);
});

test('quiet batching (--quiet-batch-ms, the AWS stack\'s 1 s): a spy gets a quiet console\'s output gathered into few messages; a writer\'s echo is not held', { timeout: 60_000 }, async (t) => {
  const rig = await serialRig('quiet', [], { args: ['--live', 'watched', '--quiet-batch-ms', '1000'] });
  const relay = rig.startRelay();
  await rig.relayUp(relay);
  const dev = openPtyPeer(rig.pair.peer);
  const wsUrl = rig.url.replace('http', 'ws') + '/v1/session';
  const spy = spyViewer(wsUrl, rig.adminToken, 'ser1');
  await until('attached', () => spy.attached());
  let all = '';
  for (let i = 0; i < 30; i++) { const l = `line ${i}\r\n`; dev.write(l); all += l; await sleep(100); }
  await until('the spy has every line', () => spy.text === all, 5000);
  t.diagnostic(`30 lines over 3 s reached the spy in ${spy.outs} messages`);
  assert.ok(spy.outs <= 6, `gathered: ${spy.outs} messages for 30 lines over 3 s`);

  // A writer types: the device echoes at once, and so must the relay.
  const writer = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${rig.adminToken}` } });
  const seen: { at: number; text: string }[] = [];
  writer.on('message', (raw) => { const m = JSON.parse(raw.toString()); if (m.t === 'out') seen.push({ at: Date.now(), text: Buffer.from(m.d, 'base64').toString() }); });
  await new Promise((r) => writer.once('open', r));
  writer.send(JSON.stringify({ v: 1, t: 'attach', c: 'ser1', mode: 'rw' }));
  await sleep(500);
  const echo = setInterval(() => { const r = dev.received().toString(); if (r.endsWith('k') && !all.endsWith('k')) { dev.write('k'); all += 'k'; } }, 5);
  const sent = Date.now();
  writer.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from('k').toString('base64') }));
  const got = await until('the echo', () => seen.find((s) => s.text.includes('k')), 5000);
  clearInterval(echo);
  t.diagnostic(`echo after ${got.at - sent} ms`);
  assert.ok(got.at - sent < 500, `the echo was not held for the 1 s batch: ${got.at - sent} ms`);
  writer.close();
  spy.close();
});

test('output gathered for viewers (3 s here) goes out before its log is sealed (every second here): viewers miss nothing', { timeout: 60_000 }, async () => {
  const rig = await serialRig('backfill', ['--segment-ms', '1000'], { args: ['--live', 'watched', '--quiet-batch-ms', '3000'] });
  const relay = rig.startRelay();
  await rig.relayUp(relay);
  const dev = openPtyPeer(rig.pair.peer);
  const spy = spyViewer(rig.url.replace('http', 'ws') + '/v1/session', rig.adminToken, 'ser1');
  await until('attached', () => spy.attached());
  let all = '';
  for (let i = 0; i < 40; i++) { const l = `line ${i} ${'x'.repeat(i)}\r\n`; dev.write(l); all += l; await sleep(100); }
  await until('the spy has every line', () => spy.text === all, 10_000).catch(() => assert.fail(`the spy has ${spy.end} of ${all.length} bytes; waiting for holes: ${JSON.stringify(spy.waiting)}`));
  const s = await until('all stored', async () => { const x = await rig.stored(); return x?.bytes.toString() === all ? x : undefined; }, 15_000, 250);
  assert.equal(s.end, all.length);
  spy.close();
});
