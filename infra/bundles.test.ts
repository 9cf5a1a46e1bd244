// The Lambda bundles the stack deploys (dist/lambda/<name>/index.mjs, built by scripts/build.mjs),
// loaded as Lambda loads them (ESM, configuration from the environment, clients at module scope)
// and run against dynalite, s3rver and the API Gateway harness: a bundling mistake (a CommonJS
// package's dynamic require, a missing export, env parsing) shows here rather than in CloudWatch.
// The streaming handler runs under a stand-in for the runtime's `awslambda` global with the
// contract Lambda documents: streamifyResponse(fn) is the handler, HttpResponseStream.from(stream,
// { statusCode, headers }) sends the status and headers ahead of the body.
import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoAuditStore } from '../cloud/adapters/aws/dynamo-audit-store.ts';
import { S3SegmentStore } from '../cloud/adapters/aws/s3-segment-store.ts';
import { LogStore } from '../cloud/core/log-store.ts';
import { encodeSegment } from '../protocol/segment.ts';
import { DynamoHotTail } from '../cloud/adapters/aws/dynamo-hot-tail.ts';
import { DynamoTokenStore } from '../cloud/adapters/aws/dynamo-token-store.ts';
import { DynamoConsoleRegistry } from '../cloud/adapters/aws/dynamo-console-registry.ts';
import { connectionsEndpointOf, entryConfig } from '../cloud/lambda/entry-shared.ts';
import { startApiGateway, type ApiGateway, type WsEvent } from '../test/apigw-harness.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../test/aws-peers.ts';
import { cleanup } from '../test/helpers.ts';
import { ROOT } from './stack.ts';

type WsBundle = { handler: (e: WsEvent) => Promise<{ statusCode: number; body?: string }> };
type ArchiveBundle = { handler: () => Promise<{ consoles: number; objects: number; records: number; segmentsMerged: number; segmentsInto: number }> };
type HttpBundle = { handler: (e: unknown, c: unknown) => Promise<{ statusCode: number; body: string }>; streamingHandler: (e: unknown, s: NodeJS.WritableStream, c: unknown) => Promise<void> };

let gw: ApiGateway;
let ws: WsBundle;
let http: HttpBundle;
let archive: ArchiveBundle;
let auditTable: DynamoAuditStore;
let s3client: S3Client;
let tokens: DynamoTokenStore;
let hot: DynamoHotTail;
let consoles: DynamoConsoleRegistry;
const streamed: { statusCode?: number; headers?: Record<string, string> }[] = [];

before(async () => {
  const { client: db, table } = await freshStateTable();
  const s3 = await startS3rver(['segs', 'audit']);
  s3client = s3.client;
  gw = await startApiGateway({ handler: (e) => ws.handler(e) });
  tokens = new DynamoTokenStore(db, table);
  hot = new DynamoHotTail(db, table);
  consoles = new DynamoConsoleRegistry(db, table);
  auditTable = new DynamoAuditStore(db, table);
  const dynamoEndpoint = await db.config.endpoint!();
  Object.assign(process.env, {
    CLOUDCONS_TABLE: table, CLOUDCONS_SEGMENTS_BUCKET: 'segs', CLOUDCONS_SEGMENTS_PREFIX: 'site1/', CLOUDCONS_CONNECTIONS_ENDPOINT: gw.endpoint,
    CLOUDCONS_AUDIT_BUCKET: 'audit', CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS: '600000',
    AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_DYNAMODB: `${dynamoEndpoint.protocol}//${dynamoEndpoint.hostname}:${dynamoEndpoint.port}`, AWS_ENDPOINT_URL_S3: s3.endpoint,
  });
  (globalThis as { awslambda?: unknown }).awslambda = {
    streamifyResponse: (fn: unknown) => fn,
    HttpResponseStream: { from: (stream: NodeJS.WritableStream, meta: { statusCode: number; headers: Record<string, string> }) => { streamed.push(meta); return stream; } },
  };
  ws = await import(path.join(ROOT, 'dist/lambda/ws/index.mjs')) as WsBundle;
  http = await import(path.join(ROOT, 'dist/lambda/http/index.mjs')) as HttpBundle;
  archive = await import(path.join(ROOT, 'dist/lambda/archive/index.mjs')) as ArchiveBundle;
});
after(async () => { await gw?.close(); await closeAwsPeers(); await cleanup(); });

function connect(token?: string): Promise<{ sock: WebSocket; messages: unknown[] } | { status: number }> {
  return new Promise((resolve) => {
    const sock = new WebSocket(gw.wsUrl, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const messages: unknown[] = [];
    sock.on('message', (d) => messages.push(JSON.parse(d.toString())));
    sock.once('open', () => resolve({ sock, messages }));
    sock.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
  });
}

const httpEvent = (method: string, rawPath: string, token: string, rawQueryString = '') => ({
  version: '2.0', routeKey: '$default', rawPath, rawQueryString, headers: { host: 'x.lambda-url.us-east-1.on.aws', authorization: `Bearer ${token}` },
  requestContext: { domainName: 'x.lambda-url.us-east-1.on.aws', http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' } },
  isBase64Encoded: false,
});

test('ws bundle: $connect checks the token in the table; a bad frame is answered through @connections (CLOUDCONS_CONNECTIONS_ENDPOINT)', async () => {
  const refused = await connect();
  assert.deepEqual(refused, { status: 401 });
  assert.deepEqual(await connect('ccu_notarealtokennotarealtoken'), { status: 401 });
  const alice = (await tokens.create({ kind: 'user', name: 'alice' })).token;
  const c = await connect(alice);
  assert.ok('sock' in c, `connected: ${JSON.stringify(c)}`);
  c.sock.send('not json');
  const deadline = Date.now() + 10_000;
  while (!c.messages.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal((c.messages[0] as { t: string }).t, 'error', JSON.stringify(c.messages));
  c.sock.close();
});

test('http bundle: buffered handler answers with the table\'s principal; presigned uploads go to the configured bucket and prefix', async () => {
  const alice = (await tokens.create({ kind: 'user', name: 'alice' })).token;
  const who = await http.handler(httpEvent('GET', '/v1/whoami', alice), {});
  assert.equal(who.statusCode, 200, who.body);
  assert.equal(JSON.parse(who.body).name, 'alice');
  const edge = (await tokens.create({ kind: 'relay', name: 'edge1' })).token;
  await consoles.put({ name: 'web01', type: 'serial', state: 'up', since: 1, relay: 'edge1', relayConn: 'r1' });
  const key = 'logs/web01/2026/11/25/0000000000000000-0000000000000010_1764028800000-1764028800001.seg';
  const ev = { ...httpEvent('POST', '/v1/consoles/web01/segments/upload-url', edge), body: JSON.stringify({ key, size: 10 }) };
  const up = await http.handler(ev, {});
  assert.equal(up.statusCode, 200, up.body);
  const url = new URL(JSON.parse(up.body).url);
  assert.equal(url.origin, process.env.AWS_ENDPOINT_URL_S3, 'AWS_ENDPOINT_URL_S3 reached the S3 client');
  assert.equal(decodeURIComponent(url.pathname), `/segs/site1/${key}`, 'path-style, bucket and prefix from the environment');
});

test('http bundle: streamingHandler streams a replay larger than one chunk, byte-exact, status and headers first', async () => {
  const alice = (await tokens.create({ kind: 'user', name: 'alice' })).token;
  await consoles.put({ name: 'big', type: 'serial', state: 'up', since: 1, relay: 'edge1', relayConn: 'r1' });
  // Chunks as relays send them (at most 22 KiB of raw bytes a message), ~880 KB in all: more than
  // one HOT_STEP of the log store, so the replay is read and written in several pieces.
  const chunk = Buffer.alloc(22 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;
  const want: Buffer[] = [];
  for (let i = 0, off = 0; i < 40; i++, off += chunk.length) {
    const b = Buffer.from(chunk.map((x) => x ^ i));
    await hot.append('big', off, Date.now(), b);
    want.push(b);
  }
  const out = new PassThrough();
  const got: Buffer[] = [];
  out.on('data', (d: Buffer) => got.push(d));
  streamed.length = 0;
  await http.streamingHandler(httpEvent('GET', '/v1/consoles/big/replay', alice, 'from=0&format=raw'), out, {});
  assert.equal(streamed.length, 1);
  assert.equal(streamed[0]!.statusCode, 200, Buffer.concat(got).toString().slice(0, 300));
  assert.match(streamed[0]!.headers!['content-type'] ?? '', /octet-stream/);
  assert.ok(got.length > 1, `streamed in more than one write (${got.length})`);
  const all = Buffer.concat(got), exp = Buffer.concat(want);
  assert.equal(all.length, exp.length, 'length');
  assert.ok(all.equals(exp), 'byte-exact');
});

test('archive bundle: moves audit records older than CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS to the audit bucket; the http bundle lists them with the newer ones', async () => {
  const alice = (await tokens.create({ kind: 'user', name: 'alice' })).token;
  await consoles.put({ name: 'arch1', type: 'serial', state: 'up', since: 1, relay: 'edge1', relayConn: 'r1' });
  const now = Date.now();
  const times = [now - 3 * 3600_000, now - 2 * 3600_000, now - 700_000, now - 1000];
  for (const [i, time] of times.entries()) await auditTable.append({ time, console: 'arch1', type: 'input', user: 'alice', session: 's', fence: 1, data: Buffer.from(`cmd${i}\r`).toString('base64') });
  const r = await archive.handler();
  assert.equal(r.records, 3, JSON.stringify(r));
  assert.ok(r.consoles >= 1);
  assert.deepEqual((await auditTable.list('arch1')).map((x) => x.time), [times[3]], 'the table keeps the last 10 minutes');
  const res = await http.handler(httpEvent('GET', '/v1/consoles/arch1/audit', alice, 'format=json'), {});
  assert.equal(res.statusCode, 200, res.body);
  const listed = JSON.stringify(JSON.parse(res.body));
  for (let i = 0; i < 4; i++) assert.ok(listed.includes(Buffer.from(`cmd${i}\r`).toString('base64')) || listed.includes(`cmd${i}`), `record ${i} listed: ${listed.slice(0, 400)}`);
  assert.deepEqual(await archive.handler().then((x) => x.records), 0, 'nothing left to move');
});

test('archive bundle: merges a past day\'s segments into one object (under the configured prefix); the http bundle replays it byte-exact', async () => {
  const alice = (await tokens.create({ kind: 'user', name: 'alice' })).token;
  await consoles.put({ name: 'comp1', type: 'serial', state: 'up', since: 1, relay: 'edge1', relayConn: 'r1' });
  const store = new S3SegmentStore({ client: s3client, bucket: 'segs', prefix: 'site1/' });
  const log = new LogStore(store, hot);
  const day = Date.UTC(2026, 10, 30, 8);
  const want: Buffer[] = [];
  for (let i = 0, at = 0; i < 6; i++) {
    const data = Buffer.from(`segment ${i} `.repeat(300));
    await log.putSegment('comp1', await encodeSegment('comp1', [{ offset: at, ts: day + i * 300_000, data }]));
    want.push(data);
    at += data.length;
  }
  const segs = async () => (await store.list('logs/comp1/')).filter((o) => o.key.endsWith('.seg'));
  assert.equal((await segs()).length, 6);
  const r = await archive.handler();
  assert.ok(r.segmentsMerged >= 6 && r.segmentsInto >= 1, JSON.stringify(r));
  assert.equal((await segs()).length, 1, 'one object for the day');
  const res = await http.handler(httpEvent('GET', '/v1/consoles/comp1/replay', alice, 'from=0&format=raw'), {});
  assert.equal(res.statusCode, 200, res.body);
  assert.ok(Buffer.from(res.body, 'base64').equals(Buffer.concat(want)), 'byte-exact from the merged segment');
});

test('entry configuration: required variables named when missing; @connections endpoint from the event', () => {
  assert.throws(() => entryConfig({ CLOUDCONS_SEGMENTS_BUCKET: 'b' }), /CLOUDCONS_TABLE is not set/);
  assert.throws(() => entryConfig({ CLOUDCONS_TABLE: 't' }), /CLOUDCONS_SEGMENTS_BUCKET is not set/);
  assert.throws(() => entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_LEASE_MS: '10s' }), /CLOUDCONS_LEASE_MS/);
  assert.deepEqual(entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_LEASE_MS: '20000' }), { table: 't', bucket: 'b', prefix: undefined, auditBucket: undefined, connectionsEndpoint: undefined, core: { leaseMs: 20000 },
    maxBodyBytes: undefined, maxConnsPerRelay: undefined, maxConnsPerUser: undefined });
  const lim = entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_MAX_CONNS_PER_USER: '8', CLOUDCONS_MAX_CONNS_PER_RELAY: '2', CLOUDCONS_MAX_BODY_BYTES: '4096', CLOUDCONS_MAX_SESSIONS_PER_CONSOLE: '16' });
  assert.deepEqual([lim.maxConnsPerUser, lim.maxConnsPerRelay, lim.maxBodyBytes, lim.core.maxSessionsPerConsole], [8, 2, 4096, 16]);
  assert.throws(() => entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_MAX_CONNS_PER_USER: 'lots' }), /CLOUDCONS_MAX_CONNS_PER_USER must be a positive integer/);
  assert.deepEqual(entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_QUIET_BATCH_MS: '500' }).core, { quietBatchMs: 500 });
  assert.throws(() => entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_QUIET_BATCH_MS: 'soon' }), /CLOUDCONS_QUIET_BATCH_MS/);
  assert.deepEqual(entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_REDACT_PASSWORDS: 'false', CLOUDCONS_SECRET_PROMPT: 'code:$' }).core,
    { redactSecrets: false, secretPrompt: /code:$/i });
  assert.throws(() => entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_REDACT_PASSWORDS: 'no' }), /CLOUDCONS_REDACT_PASSWORDS must be true or false/);
  assert.deepEqual(entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_AUDIT_TEXT_MAX: '256' }).core, { auditTextMax: 256 });
  assert.throws(() => entryConfig({ CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b', CLOUDCONS_AUDIT_TEXT_MAX: '1k' }), /CLOUDCONS_AUDIT_TEXT_MAX must be a positive integer, got '1k'/);
  assert.equal(connectionsEndpointOf({ domainName: 'abc.execute-api.eu-west-1.amazonaws.com', stage: 'prod' }), 'https://abc.execute-api.eu-west-1.amazonaws.com/prod');
  assert.equal(connectionsEndpointOf({}), undefined);
});
