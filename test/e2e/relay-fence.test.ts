// The relay as a real process against a scripted cloud (a plain WebSocket server, the relay's
// neighbour): stale-fence input never reaches the device, malformed frames do not crash the relay,
// and a restarted relay continues the console's offsets where the cloud's stored stream ends.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { WebSocketServer, type WebSocket } from 'ws';
import { cleanup, cloudcons, PtyPair, tmpDir, until } from '../helpers.ts';

const closers: (() => void)[] = [];
after(async () => { for (const c of closers) c(); await cleanup(); });

interface Msg { t: string; [k: string]: unknown }

async function fakeCloud(ends: Record<string, number>, welcomeDelayMs = 0) {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const got: Msg[] = [];
  let sock: WebSocket | undefined;
  let auth = '';
  wss.on('connection', (ws, req) => {
    sock = ws;
    auth = req.headers.authorization ?? '';
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Msg;
      got.push(m);
      if (m.t === 'hello') setTimeout(() => ws.send(JSON.stringify({ v: 1, t: 'welcome', ends })), welcomeDelayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  closers.push(() => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(); });
  return {
    url, got, get auth() { return auth; },
    send: (m: object | string) => sock!.send(typeof m === 'string' ? m : JSON.stringify({ v: 1, ...m })),
    close: () => { wss.close(); server.close(); },
  };
}

test('the relay drops input with a fence older than the newest it has seen, and reports it', async () => {
  const dir = tmpDir('fence');
  const pair = await PtyPair.create(dir);
  const cloud = await fakeCloud({ ser1: 1000 });
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge9 }\nconsoles:\n  ser1: { type: serial, device: ${pair.dev} }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', 'ccr_relaytokenrelaytokenrelaytoken']);
  const device = new SerialPort({ path: pair.peer, baudRate: 9600 });
  let received = '';
  device.on('data', (d: Buffer) => { received += d.toString('latin1'); });
  const hello = await until('hello', () => cloud.got.find((m) => m.t === 'hello'));
  assert.equal(cloud.auth, 'Bearer ccr_relaytokenrelaytokenrelaytoken');
  assert.equal(hello.relay, 'edge9');
  await until('console up', () => cloud.got.some((m) => m.t === 'console' && (m.info as { state: string }).state === 'up') || (hello.consoles as { state: string }[])[0].state === 'up');

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  cloud.send({ t: 'in', c: 'ser1', fence: 5, session: 's5', d: b64('fresh-5|') });
  await until('fence 5 input', () => received.includes('fresh-5|'));
  cloud.send({ t: 'in', c: 'ser1', fence: 3, session: 's3', d: b64('stale-3|') });
  const rej = await until('rejection', () => cloud.got.find((m) => m.t === 'rejected'));
  assert.deepEqual({ c: rej.c, fence: rej.fence, session: rej.session, what: rej.what }, { c: 'ser1', fence: 3, session: 's3', what: 'in' });
  assert.match(String(rej.reason), /stale fence 3 \(newest is 5\)/);
  // A fence announcement alone makes older input stale too.
  cloud.send({ t: 'fence', c: 'ser1', fence: 9 });
  cloud.send({ t: 'in', c: 'ser1', fence: 5, session: 's5', d: b64('stale-5|') });
  cloud.send({ t: 'in', c: 'ser1', fence: 9, session: 's9', d: b64('fresh-9|') });
  await until('fence 9 input', () => received.includes('fresh-9|'));
  assert.ok(!received.includes('stale'), `stale input reached the device: ${received}`);

  // Garbage from the cloud is logged, not fatal.
  cloud.send('this is not json');
  cloud.send({ t: 'in', c: 'ser1' });
  cloud.send({ v: 99, t: 'ping', id: 1 });
  cloud.send({ t: 'ping', id: 7 });
  await until('pong after garbage', () => cloud.got.find((m) => m.t === 'pong' && m.id === 7));
  assert.ok(!relay.exited);
  assert.match(relay.err, /bad message from cloud/);

  // Output is sent with offsets continuing the cloud's stored stream (welcome said 1000).
  device.write('abc');
  const out = await until('output', () => cloud.got.find((m) => m.t === 'out'));
  assert.equal(out.o, 1000);
  assert.equal(Buffer.from(String(out.d), 'base64').toString(), 'abc');
  device.close();
  cloud.close();
});

test('a console that comes up between the relay\'s hello and the cloud\'s welcome is reported up', async () => {
  const dir = tmpDir('fence');
  const cloud = await fakeCloud({}, 4000);
  const pair = new PtyPair(path.join(dir, 'dev'), path.join(dir, 'peer'));
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `consoles:\n  ser1: { type: serial, device: ${pair.dev} }\n`);
  cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', 'ccr_relaytokenrelaytokenrelaytoken']);
  const hello = await until('hello', () => cloud.got.find((m) => m.t === 'hello'));
  assert.equal((hello.consoles as { state: string }[])[0].state, 'down', 'no device yet');
  await pair.start(); // the device appears while the cloud has not answered yet
  const lastState = () => ([...cloud.got].reverse().find((m) => m.t === 'console')?.info as { state: string } | undefined)?.state;
  await until('ser1 reported up', () => lastState() === 'up', 10_000);
  assert.ok(!cloud.got.some((m) => m.t === 'out'), 'no output is sent before the welcome says where the stream ends');
  cloud.close();
});
