// The AWS shape end to end, locally: a real relay process (no AWS credentials) dials the API
// Gateway harness, whose routes run the WebSocket Lambda handler on DynamoDB (dynalite) and S3
// (s3rver); the HTTP API (the same hono app the HTTP Lambda wraps) serves uploads and replay. The
// relay uploads sealed segments straight to S3 by presigned PUT and moves to a fresh connection
// before the harness's (shortened) connection lifetime; it streams live output only while a spy
// watches. The spy's view and the stored log equal what the device sent, byte for byte.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { serve } from '@hono/node-server';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ApiGatewaySender, DynamoConnections } from '../../cloud/adapters/aws/apigw-connections.ts';
import { S3SegmentStore } from '../../cloud/adapters/aws/s3-segment-store.ts';
import { CloudCore, type RelayView } from '../../cloud/core/core.ts';
import pkg from '../../package.json' with { type: 'json' };
import { createHttpApp } from '../../cloud/core/http-app.ts';
import type { ConnectionSender } from '../../cloud/core/ports.ts';
import { awsPorts } from '../../cloud/lambda/aws-ports.ts';
import { createWsHandler } from '../../cloud/lambda/ws-handler.ts';
import { startApiGateway, type ApiGateway } from '../apigw-harness.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../aws-peers.ts';
import { cleanup, cloudcons, openPtyPeer, paceEmitter, PtyPair, spyViewer, Terminal, tmpDir, until } from '../helpers.ts';

const closers: (() => Promise<void> | void)[] = [];
after(async () => { for (const c of closers.reverse()) await c(); await closeAwsPeers(); await cleanup(); });

test('relay process -> API Gateway harness -> Lambda handlers on dynalite + s3rver: presigned segment uploads, re-dial before the lifetime, byte-exact log', { timeout: 120_000 }, async (t) => {
  const { client: s3 } = await startS3rver(['segs']);
  const { client: db, table } = await freshStateTable();
  let sender: ConnectionSender | undefined;
  const ports = awsPorts({ db, table, s3, bucket: 'segs', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  const relayTok = (await ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const userTok = (await ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const logs: string[] = [];
  // Connection lifetime 10 s (API Gateway: 2 h): the relay moves every 2.5 s, well before it (a
  // relay cut off by the harness logs "disconnected from cloud", asserted absent below); the spy,
  // which does not re-dial, needs its connection for the ~3 s the watched half takes (more on a
  // loaded machine: at 4 s it was cut off mid-stream).
  const gw: ApiGateway = await startApiGateway({ handler: createWsHandler({ ports, connections: new DynamoConnections(db, table), log: (l) => logs.push(l) }), limits: { lifetimeMs: 10_000 }, log: (l) => logs.push(l) });
  closers.push(() => gw.close());
  sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));
  const app = createHttpApp(new CloudCore(ports), ports);
  const http = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => http.once('listening', r));
  closers.push(() => new Promise<void>((r) => http.close(() => r())));
  const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const dir = tmpDir('awsstack');
  const pair = await PtyPair.create(dir);
  // No name in its config: the relay takes its token's (edge1) from the welcome.
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `consoles:\n  ser1: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', httpUrl, '--ws-url', gw.wsUrl,
    '--token', relayTok, '--segment-bytes', '16384', '--segment-ms', '1000', '--max-connection-ms', '2500'], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
  await relay.waitFor(/console ser1 up/);
  await until('the console registered up', async () => ((await ports.consoles.get('ser1'))?.state === 'up' ? true : undefined), 15_000);

  // Live output only while watched (the Lambda's mode): a spy watches the first half through the
  // API Gateway harness and sees it live, in order, with nothing missing; after it leaves, the
  // relay stops streaming and the rest reaches the cloud only by segment upload.
  const spy = spyViewer(gw.wsUrl, userTok, 'ser1');
  await until('the spy attached', () => spy.attached(), 10_000);
  const stream = Buffer.from(randomBytes(11_520 * 6).toString('base64').slice(0, 11_520 * 6));
  const peer = openPtyPeer(pair.peer);
  const dev = paceEmitter(peer, stream, 11_520);
  dev.run(true);
  await until('half the stream emitted', () => (dev.pos >= stream.length / 2 ? true : undefined), 30_000, 50);
  const half = dev.pos;
  await until('the spy saw it live', () => (spy.end >= half ? true : undefined), 10_000).catch(() => assert.fail(`the spy has ${spy.end} of ${half} bytes; waiting for a hole to fill: ${JSON.stringify(spy.waiting)}; its connection: ${spy.status}`));
  assert.ok(spy.bytes.equals(stream.subarray(0, spy.end)), 'the spy saw the stream in order, each byte once');
  const watchedMsgs = gw.stats.messagesIn;
  spy.close();
  await until('the spy gone', async () => ((await ports.sessions.byConsole('ser1')).length ? undefined : true), 5000);
  const unwatched0 = gw.stats.messagesIn;
  await until('the stream emitted', () => (dev.pos >= stream.length ? true : undefined), 30_000, 100);
  dev.stop();
  const unwatchedMsgs = gw.stats.messagesIn - unwatched0;
  t.diagnostic(`API Gateway messages in: ${watchedMsgs} while ${half} bytes were watched, ${unwatchedMsgs} while ${stream.length - half} bytes were not`);
  assert.ok(watchedMsgs > 2, `live output while watched (gathered up to 2 s: nobody types): ${watchedMsgs} messages`);
  assert.ok(unwatchedMsgs <= 8, `no live output while unwatched (only hellos of re-dials and heartbeats): ${unwatchedMsgs} messages`);

  const bucket = new S3SegmentStore({ client: s3, bucket: 'segs' });
  const ends = async () => Math.max(0, ...(await bucket.list('logs/ser1/')).filter((o) => o.key.endsWith('.seg')).map((o) => Number(/-(\d{16})_/.exec(o.key)?.[1] ?? 0)));
  await until('all of it in S3 segments', async () => ((await ends()) >= stream.length ? true : undefined), 30_000, 250);
  // Replay through the HTTP API until it has it all: the last segment is in the bucket (the relay's
  // presigned PUT) a moment before its commit makes the cloud take it in, and the unwatched half
  // is nowhere else. Waiting tells that from a loss; a loss still fails here, with where it is.
  const replay = async () => Buffer.from(await (await fetch(`${httpUrl}/v1/consoles/ser1/replay?from=0&format=raw`, { headers: { authorization: `Bearer ${userTok}` } })).arrayBuffer());
  let got = Buffer.alloc(0);
  const short: number[] = [];
  let runsWhenShort = '';
  const t0 = Date.now();
  await until('the replay to have it all', async () => {
    got = await replay();
    if (got.length < stream.length && !short.length) runsWhenShort = JSON.stringify(await ports.hot.runs('ser1'));
    if (got.length < stream.length) short.push(got.length);
    return got.length >= stream.length ? true : undefined;
  }, 20_000, 250).catch(async () => {
    let i = 0;
    while (i < got.length && got[i] === stream[i]) i++;
    const segs = (await bucket.list('logs/ser1/')).map((o) => o.key.split('/').pop()).join('\n');
    assert.fail(`replay has ${got.length} of ${stream.length} bytes, first difference at ${i}; hot runs ${JSON.stringify(await ports.hot.runs('ser1'))}; segments:\n${segs}`);
  });
  if (short.length) t.diagnostic(`replay was short ${short.length} times (${short.join(', ')} bytes) before it had all ${stream.length}, after ${Date.now() - t0} ms; hot-tail runs then: ${runsWhenShort}`);
  assert.equal(got.length, stream.length, 'nothing lost or doubled');
  assert.ok(got.equals(stream), 'byte for byte');
  assert.match(relay.err, /segment uploads go straight to the cloud's segment store \(presigned PUT\)/);
  assert.ok((relay.err.match(/moved to the new connection/g) ?? []).length >= 1, relay.err);
  assert.doesNotMatch(relay.err, /disconnected from cloud|UPLOAD REFUSED/);
  assert.match(relay.err, /live output only of consoles someone watches/);
  assert.ok(!logs.some((l) => /error handling|handler failed/.test(l)), logs.join('\n'));
  // The relay record on DynamoDB, as the HTTP API lists it: what the relay runs, its connection
  // (kept across its moves), backlog and last upload.
  assert.match(relay.err, /this relay is edge1: the name its token was made for/);
  const rel = await until('edge1 in the relay list', async () => {
    const r = ((await (await fetch(`${httpUrl}/v1/relays`, { headers: { authorization: `Bearer ${userTok}` } })).json()) as { relays: RelayView[] }).relays[0];
    return r?.spool && r.lastUpload ? r : undefined;
  }, 15_000);
  assert.deepEqual([rel.name, rel.version, rel.protocol, rel.arch, rel.connected, rel.consoles], ['edge1', pkg.version, 1, process.arch, true, ['ser1']]);
  assert.ok(rel.connectedSince! <= t0, 'connected since before the stream, across its moves to new connections');

  // The CLI as an operator runs it against this shape: `cloudcons attach` through the WebSocket
  // API (CLOUDCONS_WS_URL) as the writer, typing reaches the device and its answer the terminal
  // at once; `cloudcons audit` through the HTTP API shows the input under the user.
  const env = { CLOUDCONS_URL: httpUrl, CLOUDCONS_TOKEN: userTok, CLOUDCONS_WS_URL: gw.wsUrl, HOME: tmpDir('awshome') };
  const term = new Terminal(['attach', 'ser1'], env);
  await term.waitFor(/attached to ser1: read-write/, 15_000);
  const before = peer.received().length;
  term.write('uptime\r');
  await until('the keystrokes at the device', () => (peer.received().subarray(before).toString().includes('uptime\r') ? true : undefined), 10_000)
    .catch((e: Error) => assert.fail(`${e.message}; the terminal shows: ${JSON.stringify(term.screen.slice(-500))}; relay log: ${relay.err.slice(-1500)}; handler log: ${logs.slice(-20).join('\n')}`));
  peer.write(' 12:00:00 up 42 days\r\n');
  await term.waitFor('up 42 days', 10_000);
  term.write('\x05c.');
  await until('the CLI detached', async () => ((await ports.sessions.byConsole('ser1')).length ? undefined : true), 10_000);
  const audit = cloudcons(['audit', 'ser1'], env);
  await until('audit printed', () => (audit.exited ? true : undefined), 15_000);
  assert.match(audit.out, /alice .*input.*uptime\^M/, audit.out + audit.err);
  await relay.kill();
});
