// Hostile-input limits of the embedded cloud, through its real sockets: connections per user and
// per relay, sessions per console, messages per second per connection (slowed, nothing dropped),
// request body size. Each refusal is a clear error, logged, and the cloud goes on serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { cleanup, cloudcons, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);

type Msg = { t: string; [k: string]: unknown };
function open(url: string, token: string): Promise<{ ws: WebSocket; msgs: Msg[] } | { status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const msgs: Msg[] = [];
    ws.on('message', (raw) => msgs.push(JSON.parse(raw.toString())));
    ws.on('open', () => resolve({ ws, msgs }));
    ws.on('unexpected-response', (_req, res) => { let body = ''; res.on('data', (d) => { body += d; }); res.on('end', () => resolve({ status: res.statusCode ?? 0, body })); });
    ws.on('error', () => {});
  });
}
const ok = (r: Awaited<ReturnType<typeof open>>) => { if (!('ws' in r)) throw new Error(`refused: ${r.status} ${r.body}`); return r; };

test('limits: connections per user and relay, sessions per console, messages/s, body size', { timeout: 120_000 }, async () => {
  const dir = tmpDir('limits');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data, 0, { args: ['--max-conns-per-user', '2', '--max-conns-per-relay', '1', '--max-sessions-per-console', '2', '--session-msgs-per-sec', '50', '--max-body-bytes', '4096'] });
  const ws = cloud.url.replace(/^http/, 'ws');
  const call = async (token: string, method: string, p: string, body?: string) => {
    const r = await fetch(cloud.url + p, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    return { status: r.status, text: await r.text() };
  };
  const mk = async (kind: string, name: string) => JSON.parse((await call(cloud.adminToken, 'POST', '/v1/tokens', JSON.stringify({ kind, name }))).text).token as string;
  const edge = await mk('relay', 'edge1');
  const [alice, bob, carol] = [await mk('user', 'alice'), await mk('user', 'bob'), await mk('user', 'carol')];
  fs.writeFileSync(path.join(dir, 'relay.yaml'), 'relay: { name: edge1 }\nconsoles:\n  c1: { type: exec, command: cat }\n');
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', edge]);
  await relay.waitFor(/console c1 up/);
  // The relay logs "up" when the console opens, maybe before its own connection is in: wait until
  // the cloud has its hello.
  await until('the cloud lists c1 up', async () => (JSON.parse((await call(cloud.adminToken, 'GET', '/v1/consoles/c1')).text) as { state?: string }).state === 'up' ? true : undefined, 15_000);

  // Connections per relay: the relay holds its one; another with its token is refused.
  const second = await open(`${ws}/v1/relay`, edge);
  assert.ok(!('ws' in second), 'a second relay connection was let in');
  assert.equal(second.status, 429);
  assert.match(second.body, /relay edge1 has 1 WebSocket connections open, the limit \(maxConnsPerRelay 1\)/);

  // Connections per user: two open, the third refused; closing one makes room.
  const a1 = ok(await open(`${ws}/v1/session`, alice));
  const a2 = ok(await open(`${ws}/v1/session`, alice));
  const a3 = await open(`${ws}/v1/session`, alice);
  assert.ok(!('ws' in a3) && a3.status === 429 && /user alice has 2 WebSocket connections open, the limit \(maxConnsPerUser 2\)/.test(a3.body), JSON.stringify(a3));
  a2.ws.close();
  await until('room again', async () => 'ws' in (await open(`${ws}/v1/session`, alice)).valueOf() ? true : undefined, 5000).catch(() => assert.fail('no room after a close'));

  // Sessions per console: two attach, the third is refused with the limit named.
  const attach = (s: { ws: WebSocket; msgs: Msg[] }, mode: string) => { s.ws.send(JSON.stringify({ v: 1, t: 'attach', c: 'c1', mode, tail: 0 })); return until('attach answered', () => s.msgs.find((m) => m.t === 'attached' || m.t === 'error')); };
  assert.equal((await attach(a1, 'rw')).t, 'attached');
  const b = ok(await open(`${ws}/v1/session`, bob));
  assert.equal((await attach(b, 'spy')).t, 'attached');
  const c = ok(await open(`${ws}/v1/session`, carol));
  const refused = await attach(c, 'spy');
  assert.equal(refused.code, 'CC_ERR_RATE_LIMITED');
  assert.match(String(refused.message), /console c1 has 2 sessions, its limit \(maxSessionsPerConsole 2\)/);

  // Messages per second: 150 pings at once from a 50/s connection all get their pong (nothing is
  // dropped) but over about two seconds, and the client is told once.
  const t0 = Date.now();
  for (let i = 1; i <= 150; i++) c.ws.send(JSON.stringify({ v: 1, t: 'ping', id: i }));
  await until('every pong', () => c.msgs.filter((m) => m.t === 'pong').length === 150, 20_000);
  const took = Date.now() - t0;
  assert.ok(took >= 1500, `150 messages at 50/s (a burst of 50) took ${took} ms`);
  const warn = c.msgs.filter((m) => m.t === 'error' && m.code === 'CC_ERR_RATE_LIMITED' && /messages\/s/.test(String(m.message)));
  assert.equal(warn.length, 1);
  assert.match(String(warn[0].message), /more than 50 messages\/s \(sessionMsgsPerSec\)/);
  assert.deepEqual(c.msgs.filter((m) => m.t === 'pong').map((m) => m.id), Array.from({ length: 150 }, (_, i) => i + 1), 'in order, none lost');
  console.log(`# 150 pings at a 50/s limit: all answered in ${took} ms`);

  // Typing still works for the writer.
  a1.ws.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from('still-fine\n').toString('base64') }));
  await until('echo', () => a1.msgs.some((m) => m.t === 'out' && Buffer.from(String(m.d), 'base64').toString().includes('still-fine')));

  // Request bodies: over 4096 bytes is refused with 413 and the limit named; under it works.
  const big = await call(cloud.adminToken, 'POST', '/v1/tokens', JSON.stringify({ kind: 'user', name: 'x', pad: 'y'.repeat(5000) }));
  assert.equal(big.status, 413);
  assert.match(big.text, /request body larger than 4096 bytes \(maxBodyBytes\)/);
  assert.equal((await call(cloud.adminToken, 'POST', '/v1/tokens', JSON.stringify({ kind: 'user', name: 'small' }))).status, 201);

  // Bad frames: each is answered; past maxBadFrames (20) the connection closes with 1008 and a
  // reason that quotes the last one, cut to the 123 bytes a close frame holds. A reason of
  // multibyte characters once went over that and crashed the cloud (ws throws a RangeError).
  const bad = ok(await open(`${ws}/v1/session`, carol));
  const closed = new Promise<{ code: number; reason: Buffer }>((res) => bad.ws.once('close', (code, reason) => res({ code, reason })));
  for (let i = 0; i < 21; i++) bad.ws.send(JSON.stringify({ v: 'é'.repeat(100), t: 'ping', id: i }));
  const shut = await closed;
  assert.equal(shut.code, 1008);
  assert.ok(shut.reason.length <= 123, `close reason of ${shut.reason.length} bytes`);
  assert.match(shut.reason.toString(), /^too many bad frames \(21\); last: unsupported protocol version "é+\.\.\.$/);
  assert.equal(bad.msgs.filter((m) => m.t === 'error' && m.code === 'CC_ERR_BAD_FRAME').length, 21);
  assert.equal(cloud.proc.exited, false, cloud.proc.err.slice(-2000));

  // Logged, and audited; the cloud is still up.
  await until('logged', () => /sends more than 50 messages\/s: slowed down/.test(cloud.proc.err) && /refused a WebSocket of user alice/.test(cloud.proc.err)
    && /\(session carol\): console c1 has 2 sessions/.test(cloud.proc.err) && /http: POST \/v1\/tokens by admin: request body larger than 4096/.test(cloud.proc.err));
  const audit = JSON.parse((await call(cloud.adminToken, 'GET', '/v1/consoles/c1/audit')).text).records as { type: string }[];
  assert.ok(audit.some((r) => r.type === 'session.refused'));
  assert.equal((await fetch(`${cloud.url}/healthz`)).status, 200);
  for (const s of [a1, b, c]) s.ws.close();
  relay.kill();
});
