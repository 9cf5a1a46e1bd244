// The API Gateway WebSocket harness (test/apigw-harness.ts), checked with a small handler that
// answers through the real AWS SDK @connections client, and with plain `ws` clients: event
// shapes, $connect refusal, @connections (post, get, delete, 410 Gone, 413), and the limits.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  ApiGatewayManagementApiClient, DeleteConnectionCommand, GetConnectionCommand, PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { startApiGateway, type ApiGateway, type WsEvent } from './apigw-harness.ts';
import { until } from './helpers.ts';

const gateways: ApiGateway[] = [];
after(async () => { await Promise.all(gateways.map((g) => g.close())); });

async function gateway(limits = {}, dropDisconnects = false) {
  const events: WsEvent[] = [];
  let mgmt: ApiGatewayManagementApiClient | undefined;
  const gw = await startApiGateway({
    limits, dropDisconnects,
    handler: async (ev) => {
      events.push(ev);
      if (ev.requestContext.routeKey === '$connect') return { statusCode: ev.headers?.authorization === 'Bearer good' ? 200 : 401, body: 'no' };
      if (ev.requestContext.routeKey === '$default') {
        await mgmt!.send(new PostToConnectionCommand({ ConnectionId: ev.requestContext.connectionId, Data: Buffer.from(`echo:${ev.body}`) }));
      }
      return { statusCode: 200 };
    },
  });
  mgmt = new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, maxAttempts: 1 });
  gateways.push(gw);
  return { gw, events, mgmt };
}

function connect(url: string, token = 'good'): Promise<{ ws: WebSocket; got: string[]; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?client=test`, { headers: { authorization: `Bearer ${token}` } });
    const got: string[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d, isBinary) => got.push(isBinary ? '<binary>' : d.toString()));
    ws.on('open', () => resolve({ ws, got, closed }));
    ws.on('unexpected-response', (_q, res) => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

test('apigw harness: $connect can refuse; messages reach $default as AWS shapes them; @connections posts, gets, deletes; 410 after', async () => {
  const { gw, events, mgmt } = await gateway();
  await assert.rejects(connect(gw.wsUrl, 'bad'), (e: Error & { status?: number }) => e.status === 401);
  const c = await connect(gw.wsUrl);
  const con = events.filter((e) => e.requestContext.routeKey === '$connect').at(-1)!;
  assert.equal(con.requestContext.eventType, 'CONNECT');
  assert.equal(con.queryStringParameters?.client, 'test');
  assert.equal(con.isBase64Encoded, false);
  const id = con.requestContext.connectionId;
  c.ws.send(JSON.stringify({ t: 'ping', id: 1 }));
  await until('the echo', () => c.got.length === 1);
  assert.equal(c.got[0], 'echo:{"t":"ping","id":1}');
  const msg = events.find((e) => e.requestContext.routeKey === '$default')!;
  assert.deepEqual([msg.requestContext.eventType, msg.requestContext.connectionId, msg.body], ['MESSAGE', id, '{"t":"ping","id":1}']);
  assert.match(msg.requestContext.messageId!, /./);
  const info = await mgmt.send(new GetConnectionCommand({ ConnectionId: id }));
  assert.ok(info.ConnectedAt instanceof Date);
  await mgmt.send(new DeleteConnectionCommand({ ConnectionId: id }));
  assert.equal((await c.closed).code, 1000);
  await assert.rejects(mgmt.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') })), (e: Error) => e.name === 'GoneException');
  await until('$disconnect', () => events.some((e) => e.requestContext.routeKey === '$disconnect' && e.requestContext.connectionId === id));
  assert.deepEqual([gw.stats.connects, gw.stats.refused, gw.stats.messagesIn, gw.stats.messagesOut], [1, 1, 1, 1]);
});

test('apigw harness: binary frames close with 1003, frames over the limit with 1009, posts over the message limit are 413', async () => {
  const { gw, mgmt, events } = await gateway({ frameBytes: 1024, messageBytes: 2048 });
  const a = await connect(gw.wsUrl);
  a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  assert.equal((await a.closed).code, 1003);
  const b = await connect(gw.wsUrl);
  b.ws.send('x'.repeat(1025));
  assert.equal((await b.closed).code, 1009);
  const c = await connect(gw.wsUrl);
  const id = events.filter((e) => e.requestContext.routeKey === '$connect').at(-1)!.requestContext.connectionId;
  await assert.rejects(mgmt.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(2049, 0x61) })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 413);
  await mgmt.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.alloc(2048, 0x61) }));
  await until('the post', () => c.got.length === 1);
  c.ws.close();
});

test('apigw harness: an idle connection is closed after idleMs, a busy one at lifetimeMs; $disconnect can be withheld', async () => {
  const { gw, events } = await gateway({ idleMs: 300, lifetimeMs: 1200 }, true);
  const idle = await connect(gw.wsUrl);
  const busy = await connect(gw.wsUrl);
  const t0 = Date.now();
  const timer = setInterval(() => busy.ws.send('{"t":"ping"}'), 100);
  const i = await idle.closed;
  assert.equal(i.code, 1001);
  assert.match(i.reason, /idle/);
  assert.ok(Date.now() - t0 < 1000, 'idle one closed first');
  const b = await busy.closed;
  clearInterval(timer);
  assert.equal(b.code, 1001);
  assert.match(b.reason, /duration/);
  assert.ok(Date.now() - t0 >= 1100, `busy one lived ${Date.now() - t0} ms`);
  assert.equal(events.filter((e) => e.requestContext.routeKey === '$disconnect').length, 0, 'disconnect events withheld');
  assert.deepEqual(gw.open(), []);
});
