// Where an echo's time goes, without the CLI: real cloud and relay processes, a socat pty with an
// echoing device in this process, and a WebSocket client attached read-write. Prints the keystroke
// round trip (client -> cloud -> relay -> device -> relay -> cloud -> client) and a bare ping/pong
// to the cloud (one process hop), in microseconds. Run: node --import tsx bench/hop-latency.ts
// TLS=1: the cloud serves HTTPS/WSS with a self-signed certificate, relay and client pin it; also
// prints the time to open a session WebSocket (TCP + TLS + upgrade + auth), TLS or not.
import path from 'node:path';
import fs from 'node:fs';
import WebSocket from 'ws';
import { SerialPort } from 'serialport';
import { cloudcons, createToken, PtyPair, startCloud, tmpDir, until, cleanup } from '../test/helpers.ts';
import { cloudTls } from '../protocol/tls.ts';

const dir = tmpDir('probe');
const data = path.join(dir, 'data');
const TLS = process.env.TLS === '1';
// Probes go back to back, past the 200 messages/s a session may send by default (a limit on
// hostile clients no typist reaches): lifted, so this measures the path.
const UNLIMITED = ['--session-msgs-per-sec', '1000000'];
let url: string, fp = '';
if (TLS) {
  const p = cloudcons(['cloud', '--data', data, '--port', '0', '--tls-self-signed', ...UNLIMITED]);
  url = (await p.waitFor(/listening on (https:\/\/\S+)/))[1];
  fp = (await p.waitFor(/fingerprint: (SHA256:\S+)/))[1];
} else ({ url } = await startCloud(data, 0, { args: UNLIMITED }));
const net = cloudTls(TLS ? { fingerprint: fp } : {});
const wsUrl = url.replace('http', 'ws') + '/v1/session';
const N = Number(process.env.N ?? 1000);
const rt = createToken(data, 'relay', 'e'); const ut = createToken(data, 'user', 'u');
const pair = await PtyPair.create(dir);
fs.writeFileSync(path.join(dir, 'r.yaml'), `consoles:\n  c: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
const relay = cloudcons(['relay', '--config', path.join(dir, 'r.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', rt, ...(TLS ? ['--fingerprint', fp] : [])]);
await relay.waitFor(/console c up/);
const dev = new SerialPort({ path: pair.peer, baudRate: 115200 });
dev.on('data', (d: Buffer) => dev.write(d)); // echo device
const opens: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = process.hrtime.bigint();
  const w = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${ut}` }, ...net.wsOptions(wsUrl) });
  await new Promise((r, j) => { w.on('open', r); w.on('error', j); });
  opens.push(Number(process.hrtime.bigint() - t0) / 1000);
  w.close();
}
opens.sort((a, b) => a - b);
console.log(`${TLS ? 'wss' : 'ws'} session open us p50`, opens[25].toFixed(0), 'p90', opens[45].toFixed(0));
const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${ut}` }, ...net.wsOptions(wsUrl) });
let resolve: (() => void) | undefined;
ws.on('message', (m) => { const x = JSON.parse(m.toString()); if (x.t === 'out' && resolve) { const r = resolve; resolve = undefined; r(); } });
await new Promise((r) => ws.on('open', r));
ws.send(JSON.stringify({ v: 1, t: 'attach', c: 'c', mode: 'rw' }));
await new Promise((r) => setTimeout(r, 500));
const ts: number[] = [];
for (let i = 0; i < N; i++) {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((r) => { resolve = r; ws.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from('x').toString('base64') })); });
  ts.push(Number(process.hrtime.bigint() - t0) / 1000);
}
ts.sort((a, b) => a - b);
console.log('ws client echo us p50', ts[Math.floor(N / 2)].toFixed(0), 'p90', ts[Math.floor(N * 0.9)].toFixed(0), 'p99', ts[Math.floor(N * 0.99)].toFixed(0));
const ps: number[] = [];
let presolve: (() => void) | undefined;
ws.on('message', (m) => { const x = JSON.parse(m.toString()); if (x.t === 'pong' && presolve) { const r = presolve; presolve = undefined; r(); } });
for (let i = 0; i < N; i++) {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((r) => { presolve = r; ws.send(JSON.stringify({ v: 1, t: 'ping', id: i })); });
  ps.push(Number(process.hrtime.bigint() - t0) / 1000);
}
ps.sort((a, b) => a - b);
console.log('cloud ping/pong us p50', ps[Math.floor(N / 2)].toFixed(0), 'p90', ps[Math.floor(N * 0.9)].toFixed(0));
ws.close(); dev.close();
await cleanup();
process.exit(0);
