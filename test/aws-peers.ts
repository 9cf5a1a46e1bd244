// The AWS stand-ins the tests run on loopback: s3rver for S3 and dynalite for DynamoDB (npm
// packages, real HTTP servers speaking the AWS wire protocols, so the real AWS SDK clients talk to
// them). Each start returns what a client needs; closeAwsPeers() (call it from `after`) stops them.
import type { AddressInfo } from 'node:net';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { randomBytes } from 'node:crypto';
import { createStateTable } from '../cloud/adapters/aws/dynamo-table.ts';
import { segmentS3Client } from '../cloud/adapters/aws/s3-segment-store.ts';
import { tmpDir } from './helpers.ts';

const closers: (() => Promise<void>)[] = [];

/** Credentials s3rver accepts (it checks signatures); dynalite accepts any. */
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** An s3rver on 127.0.0.1 with `buckets` created, and an S3 client for it. `onRequest` sees every
 *  request (method, path, query), whoever sends it (the cost bench counts them). */
export async function startS3rver(buckets: string[] = ['segments'], o: { onRequest?: (method: string, path: string, query: string, headers: Record<string, string | string[] | undefined>) => void } = {}) {
  const server = new S3rver({
    port: 0, address: '127.0.0.1', silent: true, directory: tmpDir('s3rver'), resetOnClose: true,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const hook = o.onRequest;
  // s3rver is a Koa app: a middleware first in its chain sees each request.
  if (hook) (server as unknown as { middleware: ((ctx: { method: string; path: string; querystring: string; headers: Record<string, string | string[] | undefined> }, next: () => Promise<void>) => Promise<void>)[] }).middleware.unshift((ctx, next) => { hook(ctx.method, ctx.path, ctx.querystring, ctx.headers); return next(); });
  const addr = await server.run();
  closers.push(() => server.close());
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return { endpoint, client: segmentS3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials }) };
}

/** A dynalite (in memory, tables ready at once) on 127.0.0.1, and a DynamoDB client for it. */
export async function startDynalite() {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { endpoint, client: new DynamoDBClient({ endpoint, region: 'us-east-1', credentials }) };
}

let shared: ReturnType<typeof startDynalite> | undefined;
/** A fresh state table (dynamo-table.ts) on a dynalite shared by the test file. */
export async function freshStateTable(): Promise<{ client: DynamoDBClient; table: string }> {
  const { client } = await (shared ??= startDynalite());
  const table = `state-${randomBytes(4).toString('hex')}`;
  await createStateTable(client, table);
  // dynalite answers CreateTable before the table takes requests (ResourceNotFoundException under load).
  for (let i = 0; (await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== 'ACTIVE'; i++) {
    if (i > 200) throw new Error(`dynalite table ${table} not ACTIVE after 2 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { client, table };
}

export async function closeAwsPeers(): Promise<void> {
  shared = undefined;
  await Promise.all(closers.splice(0).map((c) => c().catch(() => {})));
}
