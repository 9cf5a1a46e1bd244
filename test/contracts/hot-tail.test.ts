import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { FsHotTail } from '../../cloud/adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../../cloud/adapters/fs/segment-store.ts';
import { LogStore } from '../../cloud/core/log-store.ts';
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

test('out-of-order live output (API Gateway runs a connection\'s messages in concurrent Lambdas): LogStore over the DynamoDB hot tail fills the holes, each byte reaches viewers once', async () => {
  const { client, table } = await freshStateTable();
  const log = new LogStore(new FsSegmentStore(tmpDir('ooo')), new DynamoHotTail(client, table));
  const stream = Buffer.from(Array.from({ length: 4000 }, (_, i) => 33 + ((i * 7) % 90)));
  const msgs = Array.from({ length: 40 }, (_, i) => [i * 100, stream.subarray(i * 100, (i + 1) * 100)] as const);
  // A shuffled delivery, four at a time, plus a resend of a few.
  const order = [...msgs, msgs[3], msgs[17]].map((m, i) => ({ m, k: (i * 2654435761) % 97 })).sort((a, b) => a.k - b.k).map((x) => x.m);
  assert.notDeepEqual(order.slice(0, 5).map((m) => m[0]), [0, 100, 200, 300, 400], 'the delivery is out of order');
  const shown = Buffer.alloc(stream.length);
  let shownBytes = 0;
  for (let i = 0; i < order.length; i += 4) {
    await Promise.all(order.slice(i, i + 4).map(async ([o, d]) => {
      for (const f of (await log.append('c', o, 1000 + o, d)).fresh) { f.data.copy(shown, f.offset); shownBytes += f.data.length; }
    }));
  }
  assert.equal(shownBytes, stream.length, 'each byte went to viewers exactly once');
  assert.ok(shown.equals(stream));
  assert.ok((await log.read('c', 0, 4000)).equals(stream), 'the hot tail has no hole');
  assert.deepEqual(await new DynamoHotTail(client, table).runs('c'), [{ start: 0, end: 4000 }]);
});

test('two Lambda containers (two LogStores over one table and one segment store): a segment one commits (trimming the hot tail) is read by the other, whose listing was cached before', async () => {
  const { client, table } = await freshStateTable();
  const segs = new FsSegmentStore(tmpDir('twoc'));
  const lists = { a: 0, b: 0 };
  const counted = (who: 'a' | 'b') => new Proxy(segs, { get: (t, k) => (k === 'list' ? (p: string) => { lists[who]++; return t.list(p); } : (t as never)[k]) });
  const a = new LogStore(counted('a'), new DynamoHotTail(client, table)), b = new LogStore(counted('b'), new DynamoHotTail(client, table));
  const text = (n: number) => Buffer.from(`line ${n}\n`.repeat(50));
  let at = 0;
  const chunks: { offset: number; ts: number; data: Buffer }[] = [];
  for (let i = 0; i < 4; i++) { const d = text(i); chunks.push({ offset: at, ts: 1000 + i, data: d }); at += d.length; }
  await a.append('c', 0, 1000, chunks[0].data);
  assert.equal(await b.end('c'), chunks[0].data.length, 'b listed (no segments) and cached');
  assert.equal((await b.read('c', 0, at)).length, chunks[0].data.length);
  // a commits a segment of chunks 0-2 (the hot tail is trimmed below its end) ...
  const { encodeSegment } = await import('../../protocol/segment.ts');
  await a.putSegment('c', await encodeSegment('c', chunks.slice(0, 3)));
  await a.append('c', chunks[3].offset, 1003, chunks[3].data);
  // ... and b, which has not stored anything since, sees the segment and the tail after it.
  assert.equal(await b.end('c'), at);
  assert.ok((await b.read('c', 0, at)).equals(Buffer.concat(chunks.map((c) => c.data))), 'b reads every byte');
  assert.equal((await b.lineStart('c', 200, at)), 0);
  // The index version moved once; a, whose change it was, kept its listing (no LIST for its next
  // commit); b listed again once, and not again while nothing changes.
  assert.equal(await new DynamoHotTail(client, table).indexVersion('c'), 1);
  const before = { ...lists };
  await a.end('c'); await b.end('c'); await b.read('c', 0, at);
  assert.deepEqual(lists, before, `no listing when nothing changed: ${JSON.stringify(lists)}`);
  assert.equal(lists.a, 1, 'a listed once, before its commit');
});

test('the race between a reader\'s listing and its reading of the hot tail: a segment committed (and the tail trimmed) in between is found on a second look, not reported pending', async () => {
  const { client, table } = await freshStateTable();
  const segs = new FsSegmentStore(tmpDir('race'));
  const writer = new LogStore(segs, new DynamoHotTail(client, table));
  const data = Buffer.from('boot line\n'.repeat(300));
  await writer.append('c', 0, 1000, data);
  let commitInside: (() => Promise<void>) | undefined;
  const hot = new DynamoHotTail(client, table);
  const runs = hot.runs.bind(hot);
  hot.runs = async (c) => { const f = commitInside; commitInside = undefined; if (f) await f(); return runs(c); };
  const reader = new LogStore(segs, hot);
  assert.equal(await reader.end('c'), data.length, 'the reader listed (nothing sealed yet) and cached');
  const { encodeSegment } = await import('../../protocol/segment.ts');
  commitInside = async () => { await writer.putSegment('c', await encodeSegment('c', [{ offset: 0, ts: 1000, data }])); };
  const items: string[] = [];
  for await (const it of reader.items('c', 0, data.length)) items.push(it.kind);
  assert.ok(!items.includes('pending'), `nothing reported pending: ${items}`);
  assert.ok((await reader.read('c', 0, data.length)).equals(data));
});
