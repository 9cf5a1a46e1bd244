import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { FsHotTail } from '../../cloud/adapters/fs/hot-tail.ts';
import { DynamoHotTail } from '../../cloud/adapters/aws/dynamo-hot-tail.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { hotTailContract } from './hot-tail.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });
// Small files, so trimming whole files is exercised.
hotTailContract('fs hot tail', (dir) => new FsHotTail(dir, 1000), () => tmpDir('hot'));

let db: DynamoDBClient | undefined;
hotTailContract('dynamodb hot tail (dynalite)', (table) => new DynamoHotTail(db!, table), async () => {
  const t = await freshStateTable();
  db = t.client;
  return t.table;
});

test('dynamodb hot tail: two writers storing the same stream at once, cut differently, read back each byte once', async () => {
  const { client, table } = await freshStateTable();
  const a = new DynamoHotTail(client, table), b = new DynamoHotTail(client, table);
  const stream = Buffer.from(Array.from({ length: 3000 }, (_, i) => 33 + (i % 90)));
  const cuts = (size: number) => Array.from({ length: Math.ceil(stream.length / size) }, (_, i) => [i * size, stream.subarray(i * size, (i + 1) * size)] as const);
  await Promise.all([
    (async () => { for (const [o, d] of cuts(100)) await a.append('c', o, 1000 + o, d); })(),
    (async () => { for (const [o, d] of cuts(70)) await b.append('c', o, 1000 + o, d); })(),
  ]);
  const got = await a.read('c', 0, 3000);
  assert.ok(Buffer.concat(got.map((x) => x.data)).equals(stream), 'each byte once, in order');
  assert.deepEqual(await b.runs('c'), [{ start: 0, end: 3000 }]);
  assert.equal(await b.end('c'), 3000);
});
