// The WebSocket Lambda handler (cloud/lambda/ws-handler.ts) behind the local API Gateway harness,
// on the AWS adapters (DynamoDB state on dynalite, S3 segments on s3rver), with a relay and a
// user speaking the wire protocol over real WebSockets: $connect authorizes by token, a relay's
// hello is welcomed, live output reaches an attached user, the lock holder's input reaches the
// relay with its fence and is audited, a relay going away turns its console down, and bad input
// gets clear errors. Every invocation builds nothing in memory that the next one needs. And the HTTP
// Lambda (hono/aws-lambda) answers API Gateway HTTP API v2 events on the same adapters.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import WebSocket from 'ws';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ApiGatewaySender, DynamoConnections } from '../../cloud/adapters/aws/apigw-connections.ts';
import type { CloudPorts, ConnectionSender } from '../../cloud/core/ports.ts';
import type { RelayView } from '../../cloud/core/core.ts';
import { awsPorts } from '../../cloud/lambda/aws-ports.ts';
import { createHttpHandler } from '../../cloud/lambda/http-handler.ts';
import { createWsHandler } from '../../cloud/lambda/ws-handler.ts';
import { startApiGateway, type ApiGateway } from '../apigw-harness.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../aws-peers.ts';
import { cleanup, until } from '../helpers.ts';

let gw: ApiGateway | undefined;
after(async () => { await gw?.close(); await closeAwsPeers(); await cleanup(); });

interface Peer { ws: WebSocket; got: Record<string, unknown>[]; closed: Promise<number>; send(m: object): void }
function open(url: string, token: string): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const got: Record<string, unknown>[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.on('open', () => resolve({ ws, got, closed, send: (m) => ws.send(JSON.stringify({ v: 1, ...m })) }));
    ws.on('unexpected-response', (_q, res) => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (m: Record<string, unknown>) => Buffer.from(String(m.d), 'base64').toString();

/** Calls the HTTP Lambda's handler (on `ports`) with API Gateway HTTP API v2 events. */
function httpCaller(ports: CloudPorts) {
  const { handler } = createHttpHandler({ ports });
  return async (method: string, path: string, token?: string, body?: unknown) => {
    const [rawPath, rawQueryString = ''] = path.split('?');
    const headers: Record<string, string> = { host: 'api.example', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) };
    const r = await handler({
      version: '2.0', routeKey: '$default', rawPath: rawPath!, rawQueryString, headers, cookies: [],
      requestContext: {
        accountId: '123456789012', apiId: 'api', domainName: 'api.example', domainPrefix: 'api', requestId: 'r', routeKey: '$default', stage: '$default',
        time: new Date().toISOString(), timeEpoch: Date.now(), http: { method, path: rawPath!, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      },
      body: body ? JSON.stringify(body) : undefined, isBase64Encoded: false,
    } as never, {} as never) as { statusCode: number; body: string; isBase64Encoded: boolean; headers: Record<string, string> };
    return r;
  };
}

test('lambda ws handler behind the API Gateway harness: relay hello, live output, locked input with fence and audit, relay gone -> console down', async () => {
  const { client: s3 } = await startS3rver(['segs']);
  const { client: db, table } = await freshStateTable();
  let sender: ConnectionSender | undefined;
  const ports: CloudPorts = awsPorts({ db, table, s3, bucket: 'segs', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  const relayTok = (await ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const aliceTok = (await ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const logs: string[] = [];
  const handler = createWsHandler({ ports, connections: new DynamoConnections(db, table), log: (l) => logs.push(l), maxConnsPerRelay: 1 });
  gw = await startApiGateway({ handler, log: (l) => logs.push(l) });
  sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));

  await assert.rejects(open(gw.wsUrl, 'ccu_' + 'x'.repeat(32)), (e: Error & { status?: number }) => e.status === 401);

  const relay = await open(gw.wsUrl, relayTok);
  relay.send({ t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: Date.now(), resizable: false }] });
  const welcome = await until('welcome', () => relay.got.find((m) => m.t === 'welcome'));
  assert.deepEqual(welcome.ends, { web01: 0 });
  // Connections per relay (here 1), counted in DynamoDB across Lambdas: a second one is refused.
  await assert.rejects(open(gw.wsUrl, relayTok), (e: Error & { status?: number }) => e.status === 429);
  relay.send({ t: 'out', c: 'web01', o: 0, ts: Date.now(), d: b64('login: ') });
  await until('output stored', async () => ((await ports.hot.end('web01')) === 7 ? true : undefined));

  const alice = await open(gw.wsUrl, aliceTok);
  alice.send({ t: 'attach', c: 'web01', mode: 'rw', tail: 10 });
  const attached = await until('attached', () => alice.got.find((m) => m.t === 'attached'));
  assert.deepEqual([attached.mode, attached.user, attached.fence], ['rw', 'alice', 1]);
  await until('history', () => alice.got.find((m) => m.t === 'history' && m.last));
  assert.equal(alice.got.filter((m) => m.t === 'history').map(text).join(''), 'login: ');

  alice.send({ t: 'in', d: b64('root\r') });
  const input = await until('input at the relay', () => relay.got.find((m) => m.t === 'in'));
  assert.deepEqual([input.c, input.fence, text(input)], ['web01', 1, 'root\r']);
  relay.send({ t: 'out', c: 'web01', o: 7, ts: Date.now(), d: b64('root\r\nPassword: ') });
  await until('live output at alice', () => alice.got.filter((m) => m.t === 'out').map(text).join('') === 'root\r\nPassword: ' || undefined);
  const audit = await ports.audit.list('web01');
  assert.ok(audit.some((r) => r.type === 'input' && r.user === 'alice' && Buffer.from(r.data!, 'base64').toString() === 'root\r'), JSON.stringify(audit));

  // The console now shows a password prompt: what alice types is audited redacted (the prompt
  // state lives in DynamoDB, so any Lambda instance handling her input knows it).
  alice.send({ t: 'in', d: b64('hunter2\r') });
  await until('second input at the relay', () => relay.got.filter((m) => m.t === 'in').length === 2 || undefined);
  const secret = (await ports.audit.list('web01')).filter((r) => r.type === 'input').at(-1)!;
  assert.deepEqual([secret.data, secret.detail], [undefined, '[redacted: 8 bytes typed at a password prompt]']);

  // A browser cannot set headers: the token comes as a subprotocol, and $connect answers with
  // cloudcons.v1 (without it a browser drops the connection).
  const browser = new WebSocket(gw.wsUrl, ['cloudcons.v1', `cloudcons.token.${aliceTok}`]);
  await new Promise((r, j) => { browser.once('open', r); browser.once('error', j); });
  assert.equal(browser.protocol, 'cloudcons.v1');
  browser.close();
  const badBrowser = new WebSocket(gw.wsUrl, ['cloudcons.v1', 'cloudcons.token.ccu_nope']);
  const refused = await new Promise<number>((r) => badBrowser.once('unexpected-response', (_q, res) => r(res.statusCode ?? 0)));
  assert.equal(refused, 401);

  alice.ws.send('{"v":1,"t":"nonsense"}');
  const err = await until('an error for a bad frame', () => alice.got.find((m) => m.t === 'error'));
  assert.equal(err.code, 'CC_ERR_BAD_FRAME');

  relay.ws.close();
  const down = await until('console down at alice', () => alice.got.find((m) => m.t === 'state' && m.state === 'down'));
  assert.match(String(down.reason), /relay edge1 disconnected/);
  assert.equal((await ports.consoles.get('web01'))?.state, 'down');
  alice.ws.close();
  await until('no connections left', () => (gw!.open().length === 0 ? true : undefined));
  assert.ok(!logs.some((l) => /error handling|handler failed/.test(l)), logs.join('\n'));
});

test('lambda http handler (API Gateway HTTP API v2 events): console list, raw replay (base64), presigned upload URL, auth errors', async () => {
  const { client: s3 } = await startS3rver(['segs2']);
  const { client: db, table } = await freshStateTable();
  const ports = awsPorts({ db, table, s3, bucket: 'segs2', sender: { send: async () => false, close: async () => {} } });
  const alice = (await ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const edge = (await ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  await ports.consoles.put({ name: 'web01', type: 'serial', state: 'up', since: 1, relay: 'edge1', relayConn: 'r1' });
  await ports.hot.append('web01', 0, Date.now(), Buffer.from([0x1b, 0x5b, 0x48, 0xff, 0x00, 0x41])); // not UTF-8
  const call = httpCaller(ports);
  assert.equal((await call('GET', '/v1/consoles')).statusCode, 401);
  const list = await call('GET', '/v1/consoles', alice);
  assert.equal(list.statusCode, 200);
  assert.deepEqual(JSON.parse(list.body).consoles.map((c: { name: string }) => c.name), ['web01']);
  const raw = await call('GET', '/v1/consoles/web01/replay?from=0&format=raw', alice);
  assert.equal(raw.statusCode, 200);
  assert.ok(raw.isBase64Encoded, 'binary output is base64 for API Gateway');
  assert.deepEqual([...Buffer.from(raw.body, 'base64')], [0x1b, 0x5b, 0x48, 0xff, 0x00, 0x41]);
  const key = 'logs/web01/2026/11/25/0000000000000006-0000000000000010_1764028800000-1764028800001.seg';
  assert.equal((await call('POST', '/v1/consoles/web01/segments/upload-url', alice, { key, size: 100 })).statusCode, 403);
  const up = await call('POST', '/v1/consoles/web01/segments/upload-url', edge, { key, size: 100 });
  assert.equal(up.statusCode, 200, up.body);
  assert.equal(JSON.parse(up.body).mode, 'presigned');
  assert.equal((await call('GET', '/v1/consoles/web99', alice)).statusCode, 404);

  // Access rules live in DynamoDB: an admin sets them through the API; each invocation obeys them
  // (a fresh handler stands for another Lambda container; the first keeps its 2 s cache).
  const root = (await ports.tokens.create({ kind: 'user', name: 'root', admin: true })).token;
  const bob = (await ports.tokens.create({ kind: 'user', name: 'bob' })).token;
  assert.equal((await call('PUT', '/v1/access', alice, { doc: {} })).statusCode, 403);
  const set = await call('PUT', '/v1/access', root, { doc: { rules: [{ consoles: 'web*', who: 'bob', allow: 'ro' }] } });
  assert.equal(set.statusCode, 200, set.body);
  assert.equal(JSON.parse(set.body).version, 1);
  const other = createHttpHandler({ ports }).handler;
  const callOther = async (path: string, token: string) => (await other({
    version: '2.0', routeKey: '$default', rawPath: path.split('?')[0], rawQueryString: path.split('?')[1] ?? '', headers: { host: 'api.example', authorization: `Bearer ${token}` }, cookies: [],
    requestContext: { accountId: '1', apiId: 'api', domainName: 'api.example', domainPrefix: 'api', requestId: 'r2', routeKey: '$default', stage: '$default', time: new Date().toISOString(), timeEpoch: Date.now(),
      http: { method: 'GET', path: path.split('?')[0], protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' } }, isBase64Encoded: false,
  } as never, {} as never) as { statusCode: number; body: string });
  assert.deepEqual(JSON.parse((await callOther('/v1/consoles', alice)).body).consoles, [], 'alice has no rule now');
  assert.equal((await callOther('/v1/consoles/web01/replay?from=0', alice)).statusCode, 404);
  assert.equal((await callOther('/v1/consoles/web01/replay?from=0', bob)).statusCode, 200);
  assert.equal((await callOther('/v1/consoles/web01/audit', bob)).statusCode, 403);
  const chk = JSON.parse((await callOther('/v1/access/check?user=bob&console=web01', root)).body);
  assert.equal(chk.actions.attach.allow, false);
  assert.match(chk.actions.spy.why, /allowed by rule 1/);
});

test('lambda handlers: a relay without a name is welcomed with its token\'s, another name is refused and closed; what it runs and its backlog reach GET /v1/relays (DynamoDB)', async () => {
  const { client: s3 } = await startS3rver(['segs3']);
  const { client: db, table } = await freshStateTable();
  let sender: ConnectionSender | undefined;
  const ports: CloudPorts = awsPorts({ db, table, s3, bucket: 'segs3', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  const relayTok = (await ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const root = (await ports.tokens.create({ kind: 'user', name: 'root', admin: true })).token;
  const logs: string[] = [];
  const relayGw = await startApiGateway({ handler: createWsHandler({ ports, connections: new DynamoConnections(db, table), log: (l) => logs.push(l) }), log: (l) => logs.push(l) });
  try {
    sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: relayGw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));
    const about = { version: '0.1.0', os: 'Debian GNU/Linux 12 (bookworm) (Linux 6.1.0)', arch: 'arm64' };
    const console1 = { name: 'web01', type: 'serial', state: 'up', since: Date.now() };

    const imp = await open(relayGw.wsUrl, relayTok);
    imp.send({ t: 'hello', relay: 'edge2', boot: 'x', consoles: [{ ...console1, name: 'web02' }] });
    await imp.closed; // by @connections DELETE (API Gateway picks the close code)
    assert.match(String(imp.got.find((m) => m.t === 'error')?.message), /^this token belongs to relay edge1, but the relay says it is edge2/);
    assert.equal(imp.got.find((m) => m.t === 'welcome'), undefined);
    assert.equal(await ports.consoles.get('web02'), undefined);

    const relay = await open(relayGw.wsUrl, relayTok);
    relay.send({ t: 'hello', boot: 'b1', consoles: [console1], ...about });
    const welcome = await until('welcome', () => relay.got.find((m) => m.t === 'welcome'));
    assert.deepEqual([welcome.relay, welcome.ends], ['edge1', { web01: 0 }]);
    relay.send({ t: 'status', spool: { bytes: 70_000, oldestMs: 45_000 } });
    const call = httpCaller(ports);
    const list = async () => JSON.parse((await call('GET', '/v1/relays', root)).body).relays as RelayView[];
    const [r] = await until('the backlog stored', async () => { const l = await list(); return l[0]?.spool ? l : undefined; });
    assert.deepEqual([r.name, r.version, r.protocol, r.os, r.arch, r.connected, r.consoles, r.spool!.bytes], ['edge1', about.version, 1, about.os, about.arch, true, ['web01'], 70_000]);
    assert.ok(Math.abs(r.spool!.oldestUnsentMs! - 45_000) < 5000, `oldest unsent ${r.spool!.oldestUnsentMs} ms`);
    assert.equal((await call('GET', '/v1/relays', relayTok)).statusCode, 403, 'not for relay tokens');
    relay.ws.close();
    await until('the relay down in the list', async () => ((await list())[0]?.connected === false ? true : undefined));
    assert.ok(!logs.some((l) => /error handling|handler failed/.test(l)), logs.join('\n'));
  } finally { await relayGw.close(); }
});

test('lambda handlers: a relay that keeps local-access snapshots gets one after its welcome, and a new one when keys or relay-local change through the HTTP Lambda (DynamoDB keys, @connections posts)', async () => {
  const { client: s3 } = await startS3rver(['segs-keys']);
  const { client: db, table } = await freshStateTable();
  let sender: ConnectionSender | undefined;
  const ports: CloudPorts = awsPorts({ db, table, s3, bucket: 'segs-keys', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  const relayTok = (await ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const aliceTok = (await ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const adminTok = (await ports.tokens.create({ kind: 'user', name: 'root', admin: true })).token;
  const logs: string[] = [];
  await gw?.close();
  gw = await startApiGateway({ handler: createWsHandler({ ports, connections: new DynamoConnections(db, table), log: (l) => logs.push(l) }), log: (l) => logs.push(l) });
  sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));
  const http = httpCaller(ports);
  // An ed25519 public key line as ssh-keygen writes it.
  const raw = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  const wire = (s: Buffer) => { const n = Buffer.alloc(4); n.writeUInt32BE(s.length); return Buffer.concat([n, s]); };
  const blob = Buffer.concat([wire(Buffer.from('ssh-ed25519')), wire(raw)]).toString('base64');
  const added = await http('POST', '/v1/keys', aliceTok, { keys: `ssh-ed25519 ${blob} alice@laptop\n` });
  assert.equal(added.statusCode, 201, added.body);
  const fp = (JSON.parse(added.body) as { added: string[] }).added[0]!;
  assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);

  const relay = await open(gw.wsUrl, relayTok);
  relay.send({ t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: Date.now() }], features: ['access'] });
  const snaps = () => relay.got.filter((m) => m.t === 'access');
  const first = await until('a snapshot after the welcome', () => snaps()[0]);
  assert.deepEqual([first.part, first.parts, first.enabled, first.users], [1, 1, true, [{ user: 'alice', keys: [{ type: 'ssh-ed25519', blob, fingerprint: fp }], rights: { web01: 'rw' } }]]);
  assert.ok(relay.got.findIndex((m) => m.t === 'welcome') < relay.got.indexOf(first), 'after its welcome');

  const removed = await http('DELETE', `/v1/keys/${encodeURIComponent(fp)}`, aliceTok);
  assert.equal(removed.statusCode, 200, removed.body);
  const second = await until('a snapshot without the key', () => snaps()[1]);
  assert.deepEqual(second.users, []);
  assert.equal((await http('POST', '/v1/relays/edge1/local', aliceTok, { on: false })).statusCode, 403);
  const off = await http('POST', '/v1/relays/edge1/local', adminTok, { on: false });
  assert.deepEqual(JSON.parse(off.body), { relay: 'edge1', local: 'off', by: 'root', at: JSON.parse(off.body).at, connected: true });
  const third = await until('a snapshot saying local access is off', () => snaps()[2]);
  assert.equal(third.enabled, false);
  assert.deepEqual(await ports.keys.get('alice'), { keys: [], version: 2 });
  relay.ws.close();
  await until('no connections left', () => (gw!.open().length === 0 ? true : undefined));
  assert.ok(!logs.some((l) => /error handling|handler failed/.test(l)), logs.join('\n'));
});
