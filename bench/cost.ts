// Cost model of the AWS shape, counted rather than assumed: a real relay process dials the API
// Gateway harness (test/apigw-harness.ts), whose routes run the WebSocket Lambda handler on
// dynalite + s3rver; the HTTP API (the hono app the HTTP Lambda wraps) takes segment uploads. For
// each scenario (a fresh stack each), it counts what AWS bills: API Gateway messages in and out (32
// KB units) and connection-minutes, Lambda invocations and their duration, DynamoDB write and read
// units, S3 requests by kind, bytes stored. Then it turns the counts into $ per console-month at
// list prices (../shared/reference/aws-constraints-and-cost.md, us-east-1).
//
//   npx tsx bench/cost.ts                       # ~5 min; COST_SECONDS=120 per scenario
//   COST_SECONDS=60 COST_SEGMENT_MS=15000 npx tsx bench/cost.ts
//
// Scenarios: an idle console; a console printing 200 B/s (an 80-byte line every 0.4 s) that nobody
// watches; the same watched by a spy; and watched by a writer typing 2 keys/s (the device echoes
// them). The target mix: 200 B/s with a viewer attached 2 % of the time. Segments are sealed every
// COST_SEGMENT_MS (default 20 s, so a short run sees several); what one segment costs is then
// projected to the relay's real segment time (60 s default, and 300 s, the stack's suggestion).
// Counts per relay (heartbeats, connection-minutes) are split from counts per console, and spread
// over CONSOLES_PER_RELAY (16) consoles, as the reference's model does.
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import WebSocket from 'ws';
import { ApiGatewaySender, DynamoConnections } from '../cloud/adapters/aws/apigw-connections.ts';
import { CloudCore } from '../cloud/core/core.ts';
import { createHttpApp } from '../cloud/core/http-app.ts';
import type { ConnectionSender } from '../cloud/core/ports.ts';
import { awsPorts } from '../cloud/lambda/aws-ports.ts';
import { createWsHandler } from '../cloud/lambda/ws-handler.ts';
import { startApiGateway } from '../test/apigw-harness.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../test/aws-peers.ts';
import { cleanup, cloudcons, openPtyPeer, PtyPair, tmpDir, until } from '../test/helpers.ts';

const SECONDS = Number(process.env.COST_SECONDS ?? 120);
const SEGMENT_MS = Number(process.env.COST_SEGMENT_MS ?? 20_000);
const HEARTBEAT_MS = Number(process.env.COST_HEARTBEAT_MS ?? 240_000);
const CONSOLES_PER_RELAY = 16;
const RATE = 200; // bytes/s of console output
const KEYS_PER_S = 2;
const LAMBDA_GB = 0.25; // 256 MB, arm64
const VIEWED = 0.02; // share of the time someone watches (the target mix)

// us-east-1 list prices (the reference's section 1-4).
const PRICE = {
  apigwMessage: 1.0 / 1e6, connMinute: 0.25 / 1e6,
  lambdaRequest: 0.2 / 1e6, lambdaGbS: 0.0000133334,
  wru: 0.625 / 1e6, rru: 0.125 / 1e6,
  s3Put: 0.005 / 1000, s3Get: 0.0004 / 1000, s3GbMonth: 0.023,
};
const HOURS_PER_MONTH = 730;

type Kind = 'ws' | 'http';
interface Counts {
  msgIn: number; msgOut: number; connMs: number;
  invocations: Record<Kind, number>; lambdaMs: Record<Kind, number>;
  wru: Record<Kind, number>; rru: Record<Kind, number>;
  s3: { put: number; get: number; list: number; head: number; del: number };
  segments: number; storedBytes: number;
  /** Messages of the relay's heartbeat (ping in, pong out): per relay, not per console. */
  heartbeat: number;
  /** WebSocket invocations by message type; DynamoDB calls by command and Lambda. */
  byType: Record<string, number>;
  byCommand: Record<string, number>;
}
const zero = (): Counts => ({
  msgIn: 0, msgOut: 0, connMs: 0, invocations: { ws: 0, http: 0 }, lambdaMs: { ws: 0, http: 0 },
  wru: { ws: 0, http: 0 }, rru: { ws: 0, http: 0 }, s3: { put: 0, get: 0, list: 0, head: 0, del: 0 }, segments: 0, storedBytes: 0, heartbeat: 0, byType: {}, byCommand: {},
});

/** Which Lambda a DynamoDB or S3 call belongs to. */
const inLambda = new AsyncLocalStorage<Kind>();

const GSI_KEYS = /\bgsi[12]pk\b/;
function itemBytes(item: Record<string, Record<string, unknown>>): number {
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += k.length;
    const [t, x] = Object.entries(v)[0]!;
    n += t === 'B' ? (x as Uint8Array).length : t === 'N' ? String(x).length / 2 + 1 : t === 'S' ? Buffer.byteLength(String(x)) : JSON.stringify(x).length;
  }
  return n;
}

async function scenario(name: string, o: { output: boolean; watched: boolean; typed: boolean }): Promise<Counts> {
  /** What the closures below count into: the measured window's counts only while it lasts. */
  let c = zero();
  const s3 = await startS3rver(['segs'], {
    onRequest: (method, p, query) => {
      const keyed = p.split('/').filter(Boolean).length > 1;
      if (method === 'PUT') c.s3.put++;
      else if (method === 'HEAD') c.s3.head++;
      else if (method === 'DELETE') c.s3.del++;
      else if (method === 'GET' && !keyed) c.s3.list++;
      else if (method === 'GET') c.s3.get++;
      else if (method === 'POST' && /delete/.test(query)) c.s3.del++;
    },
  });
  const { client: db, table } = await freshStateTable();
  // DynamoDB units: the table's from dynalite's capacity figures (it sizes items as AWS does), plus
  // one write per global secondary index whose key a Put/Update sets (dynalite counts no index);
  // a failed conditional write costs a unit as on AWS.
  db.middlewareStack.add((next, context) => async (args) => {
    const cmd = context.commandName ?? '';
    const input = args.input as Record<string, unknown>;
    const write = /^(Put|Update|Delete)Item|BatchWriteItem/.test(cmd);
    const read = /^(Get|Query|Scan|BatchGet)/.test(cmd);
    if (write || read) input.ReturnConsumedCapacity = 'TOTAL';
    const kind = inLambda.getStore() ?? 'ws';
    c.byCommand[`${kind} ${cmd.replace('Command', '')}`] = (c.byCommand[`${kind} ${cmd.replace('Command', '')}`] ?? 0) + 1;
    let r;
    try { r = await next(args); } catch (e) { if (write && (e as Error).name === 'ConditionalCheckFailedException') c.wru[kind] += 1; throw e; }
    const cc = (r.output as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] }).ConsumedCapacity;
    const units = Array.isArray(cc) ? cc.reduce((n, x) => n + (x.CapacityUnits ?? 0), 0) : cc?.CapacityUnits ?? (write ? 1 : 0);
    if (write) {
      c.wru[kind] += units;
      const item = input.Item as Record<string, Record<string, unknown>> | undefined;
      if (item) for (const k of ['gsi1pk', 'gsi2pk']) if (item[k]) c.wru[kind] += Math.ceil(itemBytes(item) / 1024);
      if (typeof input.UpdateExpression === 'string' && GSI_KEYS.test(input.UpdateExpression)) c.wru[kind] += (input.UpdateExpression.match(/gsi[12]pk/g) ?? []).length;
    } else if (read) c.rru[kind] += units;
    return r;
  }, { step: 'initialize', name: 'costCounter' });

  let sender: ConnectionSender | undefined;
  const ports = awsPorts({ db, table, s3: s3.client, bucket: 'segs', sender: { send: (...a) => sender!.send(...a), close: (...a) => sender!.close(...a) } });
  const relayTok = (await ports.tokens.create({ kind: 'relay', name: 'edge1' })).token;
  const userTok = (await ports.tokens.create({ kind: 'user', name: 'alice' })).token;
  const ws = createWsHandler({ ports, connections: new DynamoConnections(db, table), log: () => {} });
  const gw = await startApiGateway({
    handler: async (ev) => {
      const t0 = performance.now();
      try {
        return await inLambda.run('ws', () => ws(ev));
      } finally {
        c.invocations.ws++;
        c.lambdaMs.ws += Math.max(1, Math.ceil(performance.now() - t0));
        if (ev.requestContext.routeKey === '$default' && /"t":"p[io]ng"/.test(ev.body ?? '')) c.heartbeat += 2; // the message and its answer
        const t = ev.requestContext.routeKey === '$default' ? /"t":"([a-z-]+)"/.exec(ev.body ?? '')?.[1] ?? '?' : ev.requestContext.routeKey;
        c.byType[t] = (c.byType[t] ?? 0) + 1;
      }
    },
  });
  sender = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: gw.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } }));
  const app = createHttpApp(new CloudCore(ports, { live: 'watched' }), ports);
  const http = serve({
    port: 0, hostname: '127.0.0.1',
    fetch: async (req) => {
      const t0 = performance.now();
      try { return await inLambda.run('http', () => app.fetch(req)); } finally { c.invocations.http++; c.lambdaMs.http += Math.max(1, Math.ceil(performance.now() - t0)); }
    },
  });
  await new Promise((r) => http.once('listening', r));
  const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const dir = tmpDir(`cost-${name}`);
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  ser1: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', httpUrl, '--ws-url', gw.wsUrl,
    '--token', relayTok, '--segment-ms', String(SEGMENT_MS), '--heartbeat-ms', String(HEARTBEAT_MS)]);
  await relay.waitFor(/console ser1 up/);
  await until('registered', async () => ((await ports.consoles.get('ser1'))?.state === 'up' ? true : undefined), 15_000);
  const dev = openPtyPeer(pair.peer);

  // Start counting from here: the set-up (connect, hello, welcome) is not part of the steady state.
  await new Promise((r) => setTimeout(r, 1000));
  const base = { in: gw.stats.messagesIn, out: gw.stats.messagesOut };
  const counted = c = zero();
  const t0 = Date.now();
  const text = Buffer.from(Array.from({ length: 4000 }, (_, i) => `${new Date(1_700_000_000_000 + i * 1000).toISOString()} kernel: [${i}.000000] eth0: link is up, 1000 Mbps full duplex\r\n`).join(''));
  // 200 B/s as a console prints it: a ~80-byte line every 0.4 s.
  const lines = text.toString().split('\r\n').map((l) => `${l.slice(0, 78)}\r\n`);
  let li = 0;
  const emitter = o.output ? setInterval(() => dev.write(lines[li++ % lines.length]!), 1000 * 80 / RATE) : undefined;
  let user: WebSocket | undefined;
  const timers: NodeJS.Timeout[] = [];
  if (o.watched) {
    user = new WebSocket(gw.wsUrl, { headers: { authorization: `Bearer ${userTok}` } });
    await new Promise((r) => user!.once('open', r));
    user.send(JSON.stringify({ v: 1, t: 'attach', c: 'ser1', mode: o.typed ? 'rw' : 'spy', tail: 20, client: 'cli' }));
    let id = 0;
    if (o.typed) timers.push(setInterval(() => user!.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from('x').toString('base64') })), 1000 / KEYS_PER_S));
    timers.push(setInterval(() => user!.send(JSON.stringify({ v: 1, t: 'ping', id: ++id })), 10_000)); // the CLI's heartbeat
    let echoed = 0; // the device echoes what is typed
    timers.push(setInterval(() => { const r = dev.received(); if (r.length > echoed) { dev.write(r.subarray(echoed)); echoed = r.length; } }, 20));
  }
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  for (const t of timers) clearInterval(t);
  clearInterval(emitter);
  const elapsed = (Date.now() - t0) / 1000;
  c = zero();
  counted.msgIn = gw.stats.messagesIn - base.in;
  counted.msgOut = gw.stats.messagesOut - base.out;
  counted.connMs = elapsed * 1000 * (o.watched ? 2 : 1); // the relay's connection (and the viewer's)
  const objs = (await ports.segments.list('logs/ser1/')).filter((x) => x.key.endsWith('.seg'));
  counted.segments = objs.length;
  counted.storedBytes = objs.reduce((n, x) => n + x.size, 0);
  user?.close();
  await relay.kill();
  await gw.close();
  await new Promise<void>((r) => http.close(() => r()));
  await closeAwsPeers();
  (counted as Counts & { seconds: number }).seconds = elapsed;
  return counted;
}

interface Row { line: string; perHour: number; price: number }
/** $ per console-hour, line by line, for a scenario's counts with segments every `segMs`. */
function model(c: Counts & { seconds: number }, segMs: number): Row[] {
  const h = 3600 / c.seconds;
  // Segments: what one cost here, at the rate the real segment time gives (sealed at 75-100 % of it).
  const segPerHour = c.segments ? 3600 / (segMs / 1000 * 0.875) : 0;
  const perSeg = (x: number) => (c.segments ? x / c.segments : 0) * segPerHour;
  const relayShare = 1 / CONSOLES_PER_RELAY;
  const consoleMsgs = c.msgIn + c.msgOut - c.heartbeat;
  return [
    { line: 'API Gateway messages (console)', perHour: consoleMsgs * h, price: PRICE.apigwMessage },
    { line: 'API Gateway messages (relay heartbeat, /16)', perHour: c.heartbeat * h * relayShare, price: PRICE.apigwMessage },
    { line: 'connection-minutes (relay /16, + viewer)', perHour: (c.connMs / 60_000) * h * (c.connMs > c.seconds * 1000 ? 1 : relayShare), price: PRICE.connMinute },
    { line: 'Lambda invocations, WebSocket', perHour: c.invocations.ws * h, price: PRICE.lambdaRequest },
    { line: 'Lambda GB-s, WebSocket', perHour: (c.lambdaMs.ws / 1000) * LAMBDA_GB * h, price: PRICE.lambdaGbS },
    { line: 'Lambda invocations, HTTP (segment upload-url + commit)', perHour: perSeg(c.invocations.http), price: PRICE.lambdaRequest },
    { line: 'Lambda GB-s, HTTP', perHour: perSeg((c.lambdaMs.http / 1000) * LAMBDA_GB), price: PRICE.lambdaGbS },
    { line: 'DynamoDB WRU (live path)', perHour: c.wru.ws * h, price: PRICE.wru },
    { line: 'DynamoDB RRU (live path)', perHour: c.rru.ws * h, price: PRICE.rru },
    { line: 'DynamoDB WRU (segments)', perHour: perSeg(c.wru.http), price: PRICE.wru },
    { line: 'DynamoDB RRU (segments)', perHour: perSeg(c.rru.http), price: PRICE.rru },
    { line: 'S3 PUT + LIST', perHour: perSeg(c.s3.put + c.s3.list), price: PRICE.s3Put },
    { line: 'S3 GET + HEAD', perHour: perSeg(c.s3.get + c.s3.head), price: PRICE.s3Get },
    { line: 'S3 storage (per month of output kept)', perHour: (c.storedBytes / 1e9) * h / HOURS_PER_MONTH, price: PRICE.s3GbMonth },
  ];
}

const fmt = (n: number, d = 4) => n.toFixed(d);
const results: Record<string, Counts & { seconds: number }> = {};
try {
  console.log(`cost bench: ${SECONDS} s per scenario, segments every ${SEGMENT_MS / 1000} s here, relay heartbeat ${HEARTBEAT_MS / 1000} s`);
  for (const [name, o] of [
    ['idle', { output: false, watched: false, typed: false }], ['unwatched', { output: true, watched: false, typed: false }],
    ['watched', { output: true, watched: true, typed: false }], ['typed', { output: true, watched: true, typed: true }]] as const) {
    results[name] = await scenario(name, o) as Counts & { seconds: number };
    const c = results[name];
    console.log(`\n${name}: ${fmt(c.seconds, 0)} s: API GW in ${c.msgIn} out ${c.msgOut} (heartbeat ${c.heartbeat}); Lambda ws ${c.invocations.ws} (${c.lambdaMs.ws} ms) http ${c.invocations.http} (${c.lambdaMs.http} ms); ` +
      `WRU ws ${c.wru.ws} http ${c.wru.http}; RRU ws ${c.rru.ws} http ${c.rru.http}; S3 put ${c.s3.put} list ${c.s3.list} get ${c.s3.get} head ${c.s3.head} del ${c.s3.del}; segments ${c.segments} (${c.storedBytes} B)`);
    console.log(`  WebSocket invocations by type: ${JSON.stringify(c.byType)}\n  DynamoDB calls: ${JSON.stringify(c.byCommand)}`);
  }
  const summary: Record<string, unknown> = {};
  for (const segMs of [60_000, 300_000]) {
    console.log(`\n=== per console-hour and console-month, relays sealing every ${segMs / 1000} s ===`);
    const month: Record<string, number> = {};
    for (const [name, c] of Object.entries(results)) {
      const rows = model(c, segMs);
      const hour = rows.reduce((n, r) => n + r.perHour * r.price, 0);
      month[name] = hour * HOURS_PER_MONTH;
      console.log(`\n${name}: $${fmt(month[name])} per console-month`);
      for (const r of rows) if (r.perHour) console.log(`  ${r.line.padEnd(52)} ${fmt(r.perHour, 2).padStart(10)}/h  $${fmt(r.perHour * r.price * HOURS_PER_MONTH)}/month`);
    }
    const mix = (1 - VIEWED) * month.unwatched + VIEWED * month.watched;
    console.log(`\nmix (200 B/s, a viewer attached ${VIEWED * 100} % of the time): $${fmt(mix)} per console-month; 1000 consoles: $${fmt(mix * 1000, 0)}/month (target $0.20 per console-month)`);
    summary[`segment_${segMs / 1000}s`] = { ...month, mix };
  }
  const out = process.env.COST_JSON ?? '/tmp/cc-bench-cost.json';
  fs.writeFileSync(out, JSON.stringify({ seconds: SECONDS, segmentMsHere: SEGMENT_MS, heartbeatMs: HEARTBEAT_MS, counts: results, summary }, null, 2) + '\n');
  console.log(`\ncounts and totals: ${out}`);
} finally {
  await closeAwsPeers();
  await cleanup();
}
