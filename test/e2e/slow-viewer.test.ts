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

test('a paused viewer misses output and is told how much; the others and the store get every byte', async () => {
  const dir = tmpDir('slow');
  server = await startCloudServer({ dataDir: path.join(dir, 'data'), log: () => {}, limits: { highWaterBytes: 256 * 1024, hardLimitBytes: 64 * 1024 * 1024, stallMs: 3000 } });
  const userTok = (await server.ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const relayTok = (await server.ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `consoles:\n  ser1: { type: serial, device: ${pair.dev} }\n`);
  cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--cloud', server.url, '--token', relayTok]);
  await until('console up', async () => (await server!.core.getConsole('ser1').catch(() => undefined))?.state === 'up');
  const device = new SerialPort({ path: pair.peer, baudRate: 115200 });

  const good = await viewer(server.url, userTok, 'ser1');
  const slow = await viewer(server.url, userTok, 'ser1');
  const stalled = await viewer(server.url, userTok, 'ser1');
  // `slow` reads in short bursts (a bad link); `stalled` never reads again.
  slow.ws.pause();
  stalled.ws.pause();
  const trickle = setInterval(() => { slow.ws.resume(); setTimeout(() => slow.ws.pause(), 5); }, 200);

  const flood = randomBytes(24 * 1024 * 1024);
  const t0 = Date.now();
  await new Promise<void>((res, rej) => device.write(flood, (e) => (e ? rej(e) : device.drain(() => res()))));
  await until('good viewer got the flood', () => total(good) >= flood.length, 60_000);
  const floodMs = Date.now() - t0;
  assert.equal(sha(Buffer.concat(good.bytes)), sha(flood), 'the fast viewer got every byte in order');
  assert.equal(sha(await server.ports.output.read('ser1', 0, flood.length)), sha(flood), 'the store got every byte');

  clearInterval(trickle);
  slow.ws.resume();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(slow.closed, undefined, 'a viewer that keeps reading, however slowly, is not disconnected');
  device.write('tail\n');
  await until('slow viewer told what it missed', () => slow.missed > 0 && total(slow) + slow.missed >= flood.length + 5, 30_000);
  assert.equal(total(slow) + slow.missed, flood.length + 5, 'received + missed = everything emitted');
  // What the slow viewer did get is real output: each chunk is found at its offset in the store.
  for (const m of slow.msgs.filter((x) => x.t === 'out').slice(0, 50)) {
    const b = Buffer.from(String(m.d), 'base64');
    assert.ok((await server.ports.output.read('ser1', Number(m.o), Number(m.o) + b.length)).equals(b));
  }
  // The stalled viewer (never reads) is disconnected after stallMs with a reason; its session ends.
  device.write(randomBytes(64 * 1024));
  await until('stalled session removed', async () => (await server!.core.who('ser1')).length === 2, 30_000);
  assert.ok(floodMs < 60_000);
  device.close();
  good.ws.close(); slow.ws.close(); stalled.ws.terminate();
});

test('malformed, oversized and unauthenticated WebSocket traffic gets clear errors and the cloud keeps serving', async () => {
  assert.ok(server);
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
});
