// Single sign-on on the AWS shape: the ws Lambda handler behind the API Gateway harness and the
// http handler, on the AWS ports (dynalite, s3rver) with the OIDC verifier the Lambda entries build
// from CLOUDCONS_OIDC_* (entry-shared.ts), against an issuer this test runs.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ApiGatewaySender, DynamoConnections } from '../../cloud/adapters/aws/apigw-connections.ts';
import { OidcVerifier } from '../../cloud/adapters/oidc.ts';
import type { CloudPorts, ConnectionSender } from '../../cloud/core/ports.ts';
import { awsPorts } from '../../cloud/lambda/aws-ports.ts';
import { entryConfig } from '../../cloud/lambda/entry-shared.ts';
import { createHttpHandler } from '../../cloud/lambda/http-handler.ts';
import { createWsHandler } from '../../cloud/lambda/ws-handler.ts';
import { startApiGateway, type ApiGateway } from '../apigw-harness.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../aws-peers.ts';
import { cleanup } from '../helpers.ts';
import { startTestIssuer } from '../oidc-issuer.ts';

let gw: ApiGateway | undefined;
const idp = await startTestIssuer();
after(async () => { await gw?.close(); await idp.stop(); await closeAwsPeers(); await cleanup(); });

test('lambda: ID tokens open a session WebSocket ($connect) and call the HTTP API; a bad one is refused with the reason', async () => {
  const { client: s3 } = await startS3rver(['segs-oidc']);
  const { client: db, table } = await freshStateTable();
  let sender: ConnectionSender | undefined;
  const ports: CloudPorts = awsPorts({ db, table, s3, bucket: 'segs-oidc', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  const config = entryConfig({ CLOUDCONS_TABLE: table, CLOUDCONS_SEGMENTS_BUCKET: 'segs-oidc', CLOUDCONS_OIDC_ISSUER: idp.url, CLOUDCONS_OIDC_AUDIENCE: idp.clientId, CLOUDCONS_OIDC_ADMIN_GROUPS: 'console-admins' });
  ports.identity = new OidcVerifier(config.oidc!);
  const connections = new DynamoConnections(db, table);
  gw = await startApiGateway({ handler: createWsHandler({ ports, connections, log: () => {} }), log: () => {} });
  sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));

  const jwt = await idp.sign();
  // Header (CLI) and subprotocol (browser) both work; the principal stored for the connection is the SSO user.
  // (Each socket's listeners go on at once: the second may open before the first.)
  const opened = [new WebSocket(gw.wsUrl, { headers: { authorization: `Bearer ${jwt}` } }), new WebSocket(gw.wsUrl, ['cloudcons.v1', `cloudcons.token.${jwt}`])]
    .map((ws) => new Promise<WebSocket>((r, j) => { ws.once('open', () => r(ws)); ws.once('error', j); }));
  for (const ws of await Promise.all(opened)) ws.close();
  const refused = await new Promise<{ status: number; body: string }>((resolve) => {
    const ws = new WebSocket(gw!.wsUrl, { headers: { authorization: `Bearer ${jwt.slice(0, -6)}AAAAAA` } });
    ws.on('unexpected-response', (_q, res) => { let b = ''; res.on('data', (d: Buffer) => { b += d; }); res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b })); });
    ws.on('error', () => { /* after unexpected-response */ });
  });
  assert.equal(refused.status, 401);
  assert.match(refused.body, /signature does not verify/);
  const relayTry = await new Promise<number>((resolve) => {
    const ws = new WebSocket(gw!.wsUrl, { headers: { authorization: `Bearer ${jwt}` } });
    ws.on('open', () => { ws.send(JSON.stringify({ v: 1, t: 'hello', relay: 'edge1', boot: 'b', consoles: [] })); });
    ws.on('message', (d) => { const m = JSON.parse(d.toString()); if (m.t === 'error') { resolve(0); ws.close(); } });
    ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => {});
  });
  assert.equal(relayTry, 0, 'an ID token is a user: a relay hello on it gets an error');

  const { handler } = createHttpHandler({ ports });
  const call = async (path: string, token?: string) => await handler({
    version: '2.0', routeKey: '$default', rawPath: path, rawQueryString: '', headers: { host: 'api.example', ...(token ? { authorization: `Bearer ${token}` } : {}) }, cookies: [],
    requestContext: { accountId: '1', apiId: 'api', domainName: 'api.example', domainPrefix: 'api', requestId: 'r', routeKey: '$default', stage: '$default', time: new Date().toISOString(), timeEpoch: Date.now(),
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' } },
    isBase64Encoded: false,
  } as never, {} as never) as { statusCode: number; body: string };
  const who = await call('/v1/whoami', jwt);
  assert.equal(who.statusCode, 200, who.body);
  const exp = (JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { exp: number }).exp;
  assert.deepEqual(JSON.parse(who.body), { kind: 'user', name: 'sso:sso-alice', admin: true, tokenId: `oidc:${idp.url}#u-1001`, groups: ['ops', 'console-admins'], via: 'oidc', expires: exp * 1000 });
  const expired = await call('/v1/whoami', await idp.sign({ exp: Math.floor(Date.now() / 1000) - 600 }));
  assert.equal(expired.statusCode, 401);
  assert.match(JSON.parse(expired.body).error.message, /^token expired at/);
  const cfg = await call('/v1/auth/config');
  assert.equal(cfg.statusCode, 200);
  assert.equal(JSON.parse(cfg.body).oidc.tokenEndpoint, `${idp.url}/token`);
});
