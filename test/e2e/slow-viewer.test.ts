// A slow or stalled viewer never slows the console, the relay or other viewers, and never changes
// what is stored: it is told how many bytes it missed, or disconnected with a reason. Also: the
// cloud answers malformed and unauthenticated WebSocket traffic with errors and keeps serving.
// The cloud runs in this process (to set small limits); relay and device are real.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SerialPort } from 'serialport';
import WebSocket from 'ws';
import { startCloudServer, type CloudServer } from '../../cloud/server/node-server.ts';
import { cleanup, cloudcons, PtyPair, tmpDir, until } from '../helpers.ts';

let server: CloudServer | undefined;
after(async () => { await server?.close(); await cleanup(); });

interface Viewer { ws: WebSocket; bytes: Buffer[]; missed: number; msgs: { t: string; [k: string]: unknown }[]; closed?: { code: number; reason: string } }

function viewer(url: string, token: string, consoleName: string): Promise<Viewer> {
  const ws = new WebSocket(url.replace('http', 'ws') + '/v1/session', { headers: { authorization: `Bearer ${token}` } });
  const v: Viewer = { ws, bytes: [], missed: 0, msgs: [] };
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    v.msgs.push(m);
    if (m.t === 'out') v.bytes.push(Buffer.from(m.d, 'base64'));
    if (m.t === 'missed') v.missed += m.bytes;
  });
  ws.on('close', (code, reason) => { v.closed = { code, reason: reason.toString() }; });
  return new Promise((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ v: 1, t: 'attach', c: consoleName, mode: 'spy' })));
    ws.on('error', reject);
    const wait = setInterval(() => { if (v.msgs.some((m) => m.t === 'attached')) { clearInterval(wait); resolve(v); } }, 10);
  });
}
const total = (v: Viewer) => v.bytes.reduce((n, b) => n + b.length, 0);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rig(stallMs: number) {
  const dir = tmpDir('slow');
  server = await startCloudServer({ dataDir: path.join(dir, 'data'), log: () => {}, limits: { highWaterBytes: 256 * 1024, hardLimitBytes: 64 * 1024 * 1024, stallMs } });
  const srv = server;
  const userTok = (await srv.ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const relayTok = (await srv.ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `consoles:\n  ser1: { type: serial, device: ${pair.dev} }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', srv.url, '--token', relayTok]);
  await until('console up', async () => (await srv.core.getConsole({ kind: 'user', name: 'test', admin: true, tokenId: 't' }, 'ser1').catch(() => undefined))?.state === 'up');
  const device = new SerialPort({ path: pair.peer, baudRate: 115200 });
  const write = (b: Buffer) => new Promise<void>((res, rej) => device.write(b, (e) => (e ? rej(e) : device.drain(() => res()))));
  return { srv, userTok, device, write, async stop() { device.close(); await relay.kill(); await pair.stop(); await srv.close(); server = undefined; } };
}

test('a viewer that falls far behind still gets every byte, later, in order; the others and the store are unaffected', async () => {
  const r = await rig(60_000);
  const good = await viewer(r.srv.url, r.userTok, 'ser1');
  const slow = await viewer(r.srv.url, r.userTok, 'ser1');
  slow.ws.pause(); // reads nothing during the flood: far more than its 256 KiB allowance piles up
  const flood = randomBytes(24 * 1024 * 1024);
  const rss0 = process.memoryUsage().rss;
  await r.write(flood);
  await until('good viewer got the flood', () => total(good) >= flood.length, 60_000);
  const rssGrowth = process.memoryUsage().rss - rss0;
  assert.equal(sha(Buffer.concat(good.bytes)), sha(flood), 'the fast viewer got every byte in order');
  assert.equal(sha(await r.srv.core.log.read('ser1', 0, flood.length)), sha(flood), 'the store got every byte');
  assert.ok(total(slow) < flood.length / 2, `the paused viewer was not sent the flood while paused (${total(slow)} bytes)`);
  assert.ok(rssGrowth < 200 * 1024 * 1024, `cloud memory stayed bounded (grew ${rssGrowth} bytes for a 24 MiB flood to a stalled reader)`);

  slow.ws.resume();
  await r.write(Buffer.from('tail\n'));
  await until('slow viewer caught up', () => total(slow) >= flood.length + 5, 60_000)
    .catch((e) => { throw new Error(`${e.message}; slow: got ${total(slow)} missed ${slow.missed} closed ${JSON.stringify(slow.closed)}; flood ${flood.length}`); });
  assert.equal(sha(Buffer.concat(slow.bytes)), sha(Buffer.concat([flood, Buffer.from('tail\n')])), 'every byte, in order, nothing twice');
  assert.equal(slow.missed, 0);
  const offsets = slow.msgs.filter((m) => m.t === 'out').map((m) => Number(m.o));
  assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]), 'offsets strictly increase');
  assert.equal(slow.closed, undefined, 'a viewer that reads again is not disconnected');
  good.ws.close(); slow.ws.close();
  await r.stop();
});

test('a viewer that reads nothing at all is disconnected after the stall limit; the others go on', async () => {
  const r = await rig(1000);
  const good = await viewer(r.srv.url, r.userTok, 'ser1');
  const stalled = await viewer(r.srv.url, r.userTok, 'ser1');
  stalled.ws.pause();
  const flood = randomBytes(8 * 1024 * 1024);
  await r.write(flood);
  await until('stalled session removed', async () => (await r.srv.core.who('ser1')).length === 1, 30_000);
  await until('good viewer got the flood', () => total(good) >= flood.length, 60_000);
  assert.equal(sha(Buffer.concat(good.bytes)), sha(flood));
  good.ws.close(); stalled.ws.terminate();
  await r.stop();
});

test('malformed, oversized and unauthenticated WebSocket traffic gets clear errors and the cloud keeps serving', async () => {
  const rg = await rig(60_000);
  const server = rg.srv;
  const tok = (await server.ports.tokens.create({ kind: 'user', name: 'mallory' })).token;
  // no token / wrong token / relay endpoint with a user token
  for (const [p, headers, status] of [['/v1/session', {}, 401], ['/v1/session', { authorization: 'Bearer ccu_nopenopenopenopenopenope' }, 401], ['/v1/relay', { authorization: `Bearer ${tok}` }, 403], ['/v1/nowhere', { authorization: `Bearer ${tok}` }, 404]] as const) {
    const ws = new WebSocket(server.url.replace('http', 'ws') + p, { headers });
    const code = await new Promise<number>((r) => { ws.on('unexpected-response', (_q, res) => r(res.statusCode ?? 0)); ws.on('open', () => r(101)); ws.on('error', () => {}); });
    assert.equal(code, status, `${p} ${JSON.stringify(headers)}`);
  }
  const ws = new WebSocket(server.url.replace('http', 'ws') + '/v1/session', { headers: { authorization: `Bearer ${tok}` } });
  const msgs: { t: string; code?: string; message?: string }[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; });
  await new Promise((r) => ws.on('open', r));
  ws.send('{"v":1,"t":"in"');
  ws.send(Buffer.from([1, 2, 3]), { binary: true });
  ws.send(JSON.stringify({ v: 1, t: 'in', d: 'aGk=' }));
  ws.send(JSON.stringify({ v: 1, t: 'attach', c: 'nope', mode: 'rw' }));
  ws.send('x'.repeat(40_000));
  await until('errors', () => msgs.filter((m) => m.t === 'error').length >= 5);
  const errs = msgs.filter((m) => m.t === 'error').map((m) => m.message);
  for (const re of [/not valid JSON/, /binary frames are not accepted/, /send attach before in/, /console nope not found; known: ser1/, /frame of 40000 bytes exceeds the limit of 32768/]) {
    assert.ok(errs.some((e) => re.test(e!)), `${re} in ${JSON.stringify(errs)}`);
  }
  ws.send('y'.repeat(200_000)); // far past the limit: closed with a reason
  await until('closed', () => closed);
  assert.equal(closed!.code, 1009);
  const r = await fetch(server.url + '/v1/consoles', { headers: { authorization: `Bearer ${tok}` } });
  assert.equal(r.status, 200, 'the cloud still serves');
  const anon = await fetch(server.url + '/v1/consoles');
  assert.equal(anon.status, 401);
  await rg.stop();
});
