// The attach client's handling of live output that arrives out of order (on API Gateway a relay's
// messages run in concurrent Lambdas, so a chunk can overtake the one before it). The cloud is a
// neighbour here: a WebSocket server sending what the cloud would; the client under test is real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { attach } from './attach.ts';

async function session(script: (ws: WebSocket) => Promise<void>) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws) => ws.once('message', () => void script(ws)));
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (b: Buffer) => { text += b.toString(); });
  const stdin = new PassThrough();
  const done = attach({ url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, token: 't', console: 'c', mode: 'spy', reconnect: false, stdin: stdin as never, stdout: stdout as never });
  return { wss, done, get text() { return text; } };
}
const send = (ws: WebSocket, m: object) => ws.send(JSON.stringify({ v: 1, ...m }));
const out = (ws: WebSocket, o: number, s: string) => send(ws, { t: 'out', o, d: Buffer.from(s).toString('base64') });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('live chunks that overtake each other are shown in stream order', async () => {
  const s = await session(async (ws) => {
    send(ws, { t: 'attached', c: 'c', session: 's', user: 'u', mode: 'spy', state: 'up', type: 'serial' });
    send(ws, { t: 'history', kind: 'attach', d: Buffer.from('abc').toString('base64'), last: true, end: 3 });
    out(ws, 9, 'jkl');
    out(ws, 6, 'ghi');
    await sleep(50);
    out(ws, 3, 'def');
    out(ws, 3, 'def'); // a resend: shown once
    await sleep(50);
    ws.close(1000, 'bye');
  });
  await s.done;
  s.wss.close();
  assert.match(s.text, /abcdefghijkl/);
  assert.doesNotMatch(s.text, /jkl.*def|ghi.*def|defdef/s);
});

test('a hole that never fills is skipped after a moment, and later output follows', async () => {
  const s = await session(async (ws) => {
    send(ws, { t: 'attached', c: 'c', session: 's', user: 'u', mode: 'spy', state: 'up', type: 'serial' });
    send(ws, { t: 'history', kind: 'attach', d: Buffer.from('abc').toString('base64'), last: true, end: 3 });
    out(ws, 10, 'XYZ'); // 3-10 never comes (skipped by the cloud)
    await sleep(600);
    out(ws, 13, '!');
    await sleep(50);
    ws.close(1000, 'bye');
  });
  await s.done;
  s.wss.close();
  assert.match(s.text, /abcXYZ!/);
});
