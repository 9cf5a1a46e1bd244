// Issue 14 on the AWS shape: the ws Lambda handler behind the API Gateway harness and the http
// handler, on the AWS ports (dynalite, s3rver). No process keeps a timer here, so what holds must
// come from the invocations themselves:
// - a revocation through the HTTP function closes the token's connections at once (it finds them
//   by principal in the connections table, gsi1, and closes them through @connections), and input
//   sent after its answer never reaches the relay;
// - a token revoked behind its back, or expired, ends a connection at its first message after
//   tokenRecheckMs (pings all with id 1), or at the next live output for one that says nothing;
// - an access change through the HTTP function ends the sessions of users who lost the console and
//   moves a writer who may no longer attach to spy (its resize and input stop);
// - a writer whose lease lapsed is refused, told, audited once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ApiGatewaySender, DynamoConnections } from '../../cloud/adapters/aws/apigw-connections.ts';
import type { CloudPorts, ConnectionSender } from '../../cloud/core/ports.ts';
import { awsPorts } from '../../cloud/lambda/aws-ports.ts';
import { createHttpHandler } from '../../cloud/lambda/http-handler.ts';
import { createWsHandler } from '../../cloud/lambda/ws-handler.ts';
import { startApiGateway, type ApiGateway } from '../apigw-harness.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../aws-peers.ts';
import { cleanup, until } from '../helpers.ts';

let gw: ApiGateway | undefined;
after(async () => { await gw?.close(); await closeAwsPeers(); await cleanup(); });

interface Peer { ws: WebSocket; got: Record<string, unknown>[]; closed?: number; send(m: object): void }
function open(url: string, token: string): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const p: Peer = { ws, got: [], send: (m) => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ v: 1, ...m })); } };
    ws.on('message', (d) => p.got.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.on('close', (code) => { p.closed = code; });
    ws.on('open', () => resolve(p));
    ws.on('unexpected-response', (_q, res) => reject(new Error(`refused ${res.statusCode}`)));
    ws.on('error', reject);
  });
}
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (m: Record<string, unknown>) => Buffer.from(String(m.d), 'base64').toString();
const RECHECK_MS = 800;
const LEASE_MS = 1500;

test('lambda: revocation, expiry, rights and lapsed leases reach open WebSockets without a timer', async () => {
  const { client: s3 } = await startS3rver(['segs-sess']);
  const { client: db, table } = await freshStateTable();
  let sender: ConnectionSender | undefined;
  const ports: CloudPorts = awsPorts({ db, table, s3, bucket: 'segs-sess', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  // accessCacheMs: how long the ws function's containers may keep rules they read (the HTTP
  // function's change reaches open sessions at once; new attaches follow within this).
  const core = { tokenRecheckMs: RECHECK_MS, leaseMs: LEASE_MS, accessCacheMs: 200 };
  const logs: string[] = [];
  gw = await startApiGateway({ handler: createWsHandler({ ports, connections: new DynamoConnections(db, table), core, log: (l) => logs.push(l) }), log: (l) => logs.push(l) });
  sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));
  const { handler } = createHttpHandler({ ports, core });
  const call = async (method: string, path: string, token: string, body?: unknown) => await handler({
    version: '2.0', routeKey: '$default', rawPath: path, rawQueryString: '', cookies: [],
    headers: { host: 'api.example', authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    requestContext: { accountId: '1', apiId: 'api', domainName: 'api.example', domainPrefix: 'api', requestId: 'r', routeKey: '$default', stage: '$default', time: new Date().toISOString(), timeEpoch: Date.now(),
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' } },
    body: body ? JSON.stringify(body) : undefined, isBase64Encoded: false,
  } as never, {} as never) as { statusCode: number; body: string };
  const mk = async (name: string, o: { admin?: boolean; expires?: number } = {}) => ports.tokens.create({ kind: 'user', name, ...o });
  const root = await mk('root', { admin: true });
  const relayTok = await ports.tokens.create({ kind: 'relay', name: 'edge1' });
  const relay = await open(gw.wsUrl, relayTok.token);
  relay.send({ t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'exec', state: 'up', since: Date.now(), resizable: true }] });
  await until('welcome', () => relay.got.find((m) => m.t === 'welcome'));
  let o = 0;
  const output = (s: string) => { relay.send({ t: 'out', c: 'web01', o, ts: Date.now(), d: b64(s) }); o += s.length; };
  const attach = async (tok: string, mode: 'rw' | 'spy') => {
    const p = await open(gw!.wsUrl, tok);
    p.send({ t: 'attach', c: 'web01', mode });
    const a = await until('attached', () => p.got.find((m) => m.t === 'attached' || m.t === 'error'));
    assert.equal(a.mode, mode, JSON.stringify(a));
    return p;
  };
  const inputs = () => relay.got.filter((m) => m.t === 'in').map(text);

  // 1. Revocation through the HTTP function: both connections of the token close at once; input
  //    sent after the answer never reaches the relay.
  const alice = await mk('alice');
  const writer = await attach(alice.token, 'rw');
  const silent = await attach(alice.token, 'spy');
  writer.send({ t: 'in', d: b64('before\r') });
  await until('input at the relay', () => inputs().includes('before\r') || undefined);
  const revoked = await call('DELETE', `/v1/tokens/${alice.id}`, root.token);
  const answered = Date.now();
  for (let i = 0; i < 10; i++) writer.send({ t: 'in', d: b64(`after-${i}\r`) });
  assert.equal(revoked.statusCode, 200, revoked.body);
  await until('both connections of the revoked token closed', () => (writer.closed && silent.closed ? true : undefined), 5000, 10);
  console.log(`# lambda: revoke answer -> both connections closed: ${Date.now() - answered} ms`);
  assert.ok(Date.now() - answered < 1500);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(inputs(), ['before\r'], 'input after the revoke answer reached the relay');
  assert.ok(silent.got.some((m) => m.t === 'error' && /your token .* was revoked at .* by root: sign in again/.test(String(m.message))));

  // 2. Behind its back (the store alone, as another region's function or a script would) and
  //    expiry: closed at the first message after tokenRecheckMs, though every ping says id 1; a
  //    viewer that says nothing at all loses its output at the next live message.
  const bob = await attach((await mk('bob')).token, 'spy');
  const bobId = (await ports.tokens.list()).find((t) => t.name === 'bob')!.id;
  const carolTok = await mk('carol', { expires: Date.now() + 1500 });
  const carol = await attach(carolTok.token, 'spy');
  const daveTok = await mk('dave', { expires: Date.now() + 1500 });
  const dave = await attach(daveTok.token, 'spy');
  const pings = setInterval(() => { bob.send({ t: 'ping', id: 1 }); carol.send({ t: 'ping', id: 1 }); }, 100);
  try {
    await ports.tokens.revoke(bobId, 'script', Date.now());
    const t0 = Date.now();
    await until('bob closed', () => bob.closed, RECHECK_MS + 3000, 10);
    console.log(`# lambda: revoked without the hook -> closed after ${Date.now() - t0} ms (tokenRecheckMs ${RECHECK_MS})`);
    await until('carol closed after her token expired', () => carol.closed, 5000, 10);
    assert.ok(Date.now() - carolTok.expires! < RECHECK_MS + 1000, `closed ${Date.now() - carolTok.expires!} ms after expiry`);
    assert.match(String(carol.got.find((m) => m.t === 'error')?.message), /expired at/);
  } finally { clearInterval(pings); }
  assert.equal(dave.closed, undefined, 'dave said nothing: still open');
  output('for-everyone ');
  await until('dave closed at the next live output', () => dave.closed, 5000, 10);
  assert.ok(!dave.got.some((m) => m.t === 'out'), 'an expired viewer got live output');

  // 3. Rights: the HTTP function's access change ends erin's session and moves frank to spy.
  const erin = await mk('erin'), frank = await mk('frank');
  const set = async (rules: unknown[]) => { const r = await call('PUT', '/v1/access', root.token, { doc: { rules } }); assert.equal(r.statusCode, 200, r.body); };
  await set([{ consoles: 'web01', who: 'erin', allow: 'ro' }, { consoles: 'web01', who: 'frank', allow: 'rw' }]);
  const e = await attach(erin.token, 'spy');
  const f = await attach(frank.token, 'rw');
  f.send({ t: 'resize', cols: 100, rows: 40 });
  await until('frank\'s resize at the relay', () => relay.got.find((m) => m.t === 'resize' && m.cols === 100));
  output('before-change ');
  await until('erin sees output', () => e.got.some((m) => m.t === 'out') || undefined);
  await set([{ consoles: 'web01', who: 'frank', allow: 'ro' }]);
  f.send({ t: 'resize', cols: 120, rows: 50 });
  f.send({ t: 'in', d: b64('frank\r') });
  output('after-change ');
  // (API Gateway's DeleteConnection carries no close code: the error message before it says why.)
  await until('erin told and closed', () => (e.closed ? true : undefined), 3000, 10);
  assert.match(String(e.got.find((m) => m.t === 'error')?.message), /your session on web01 ended: you may no longer see web01/);
  assert.ok(!e.got.some((m) => m.t === 'out' && text(m).includes('after-change')));
  await until('frank a spy and refused', () => f.got.find((m) => m.t === 'notice' && /input not sent/.test(String(m.text))));
  assert.ok(f.got.some((m) => m.t === 'mode' && m.mode === 'spy'));
  assert.ok(!relay.got.some((m) => m.t === 'resize' && m.cols === 120), 'a resize without rights reached the relay');
  assert.ok(!inputs().includes('frank\r'));

  // 4. A lapsed lease: the writer that stopped heartbeating is refused, told, audited once.
  await set([{ consoles: 'web01', who: 'gina', allow: 'rw' }]);
  await new Promise((r) => setTimeout(r, 250)); // the ws function's cached rules (accessCacheMs)
  const g = await attach((await mk('gina')).token, 'rw');
  await new Promise((r) => setTimeout(r, LEASE_MS + 300));
  g.send({ t: 'in', d: b64('late\r') });
  await until('gina told her lease lapsed', () => g.got.find((m) => m.t === 'notice' && /your write lock lapsed at .* \(no heartbeat for 1\.5 s\)/.test(String(m.text))));
  await until('gina\'s input refused', () => g.got.find((m) => m.t === 'notice' && /input not sent/.test(String(m.text))));
  assert.ok(!inputs().includes('late\r'));
  const records = await ports.audit.list('web01');
  assert.equal(records.filter((r) => r.type === 'lock.expired' && r.user === 'gina').length, 1);
  for (const t of ['session.ended:erin', 'lock.revoked:frank', 'input.denied:gina']) assert.ok(records.some((r) => `${r.type}:${r.user}` === t), t);
  assert.ok(!logs.some((l) => /error handling|handler failed/.test(l)), logs.join('\n'));
  for (const p of [relay, f, g]) p.ws.close();
});
