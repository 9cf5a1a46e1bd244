// The audit archive on dynalite + s3rver: records older than a time move from DynamoDB to
// create-only S3 objects (Content-MD5 sent, as Object Lock buckets require), a crash between the
// PUT and the delete loses and doubles nothing, and listing reads across both stores.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeAwsPeers, freshStateTable, startS3rver } from '../../../test/aws-peers.ts';
import { cleanup } from '../../../test/helpers.ts';
import { plain } from '../../../test/contracts/audit-store.contract.ts';
import type { AuditRecord } from '../../core/ports.ts';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoAuditStore } from './dynamo-audit-store.ts';
import { N, S } from './dynamo-table.ts';
import { ArchivedAuditStore, auditObjectKey } from './s3-audit-archive.ts';
import { S3SegmentStore } from './s3-segment-store.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

const puts: { path: string; md5?: string }[] = [];
const peer = startS3rver(['audit'], { onRequest: (method, path, _q, headers) => { if (method === 'PUT') puts.push({ path, md5: headers['content-md5'] as string | undefined }); } });
const T0 = Date.UTC(2026, 11, 3, 23, 59, 0);
const rec = (i: number, over: Partial<AuditRecord> = {}): AuditRecord => ({ time: T0 + i * 1000, console: 'web01', type: 'input', user: 'alice', session: 's1', fence: 1, data: Buffer.from(`key ${i}`).toString('base64'), ...over });

async function setup(opts: { batchRecords?: number; maxObjectBytes?: number } = {}) {
  const { client, table } = await freshStateTable();
  const bucket = new S3SegmentStore({ client: (await peer).client, bucket: 'audit', prefix: `${table}/` });
  const hot = new DynamoAuditStore(client, table);
  return { hot, bucket, client, table, store: new ArchivedAuditStore(hot, bucket, opts) };
}

test('records older than the cut move to S3 objects (per console and day, Content-MD5 sent, named for their seq range and end hash); the rest stay in DynamoDB; listing gives them all once, in order', async () => {
  const { hot, bucket, store } = await setup({ batchRecords: 40 });
  const all: AuditRecord[] = [];
  for (let i = 0; i < 100; i++) { const r = rec(i); all.push(r); await store.append(r); }
  await store.append(rec(5, { console: 'db01', user: 'bob' }));
  puts.length = 0;
  const r = await store.archive('web01', T0 + 90_000);
  assert.deepEqual(r, { objects: 3, records: 90, created: 3 });
  const keys = (await bucket.list('audit/')).map((o) => o.key);
  assert.equal(keys.length, 3);
  // 23:59:00 .. 00:00:29 start on the 3rd; the later batches on the 4th.
  assert.match(keys.join('\n'), /^audit\/web01\/2026\/12\/03\/\d{15}-\d{15}_[0-9a-f]{16}_0{14}1-0{13}40_[0-9a-f]{64}\.jsonl$/m, 'each object names its seq range and end hash');
  assert.match(keys.join('\n'), /^audit\/web01\/2026\/12\/04\//m);
  assert.equal(puts.length, 3);
  assert.ok(puts.every((p) => p.md5 && p.md5.length === 24), `Content-MD5 on every PUT: ${JSON.stringify(puts)}`);
  assert.deepEqual((await hot.list('web01')).map((x) => x.time), all.slice(90).map((x) => x.time), 'DynamoDB keeps only the newer records');
  assert.equal((await hot.list('db01')).length, 1, 'other consoles untouched');
  assert.deepEqual((await store.list('web01')).map(plain), all);
  assert.deepEqual((await store.list('web01')).map((x) => x.seq), all.map((_, i) => i + 1));
  assert.ok((await store.verify('web01')).ok, 'the chain across objects and table verifies');
  assert.deepEqual((await store.list('web01', { limit: 15 })).map((x) => x.time), all.slice(85).map((x) => x.time));
  assert.deepEqual((await store.list('web01', { since: T0 + 50_000, limit: 3 })).map((x) => x.time), all.slice(97).map((x) => x.time));
  assert.deepEqual((await store.list('web01', { since: T0 + 50_000 })).map((x) => x.time), all.slice(50).map((x) => x.time));
  assert.deepEqual((await store.archive('web01', T0 + 90_000)), { objects: 0, records: 0, created: 0 }, 'nothing left to move');
});

test('a crash after the PUT and before the delete: the next run finds the same object and deletes; nothing is listed twice', async () => {
  const { hot, bucket, store } = await setup();
  for (let i = 0; i < 10; i++) await store.append(rec(i));
  const remove = hot.remove.bind(hot);
  hot.remove = async () => { throw new Error('Lambda timed out'); };
  await assert.rejects(store.archive('web01', T0 + 5000), /timed out/);
  assert.equal((await bucket.list('audit/')).length, 1);
  assert.equal((await store.list('web01')).length, 10, 'archived and still in DynamoDB: listed once');
  hot.remove = remove;
  assert.deepEqual(await store.archive('web01', T0 + 5000), { objects: 1, records: 5, created: 0 });
  assert.equal((await bucket.list('audit/')).length, 1, 'the same object, not a second');
  assert.equal((await hot.list('web01')).length, 5);
  assert.deepEqual((await store.list('web01')).map((x) => x.time), Array.from({ length: 10 }, (_, i) => T0 + i * 1000));
  // A late record (a writer whose clock lags) is archived in chain order: once the records before
  // it are old enough, in the same object as they.
  await store.append(rec(2, { detail: 'late' }));
  await store.append(rec(10));
  assert.equal((await store.archive('web01', T0 + 5000)).records, 0, 'the records before it are newer than the cut');
  assert.deepEqual(await store.archive('web01', T0 + 11_000), { objects: 1, records: 6, created: 1 }, 'seq 6..11; never the newest (12)');
  assert.deepEqual((await hot.list('web01')).map((x) => x.seq), [12]);
  const got = await store.list('web01');
  assert.equal(got.length, 12);
  assert.deepEqual(got.filter((x) => x.time === T0 + 2000).map((x) => x.detail ?? ''), ['', 'late']);
  assert.equal(got[10].detail, 'late');
  assert.ok((await store.verify('web01')).ok);
});

test('objects stay under maxObjectBytes; an unreadable object is named in the error', async () => {
  const { bucket, store } = await setup({ maxObjectBytes: 4000 });
  for (let i = 0; i < 20; i++) await store.append(rec(i, { data: Buffer.alloc(600, i).toString('base64') }));
  const r = await store.archive('web01', T0 + 100_000);
  const sizes = (await bucket.list('audit/')).map((o) => o.size);
  assert.equal(r.records, 19, 'all but the newest');
  assert.ok(sizes.length >= 4 && sizes.every((s) => s <= 4000), `sizes ${sizes}`);
  assert.equal((await store.list('web01')).length, 20);
  const body = Buffer.from('not json\n');
  await bucket.put(auditObjectKey('web01', T0 + 200_000, T0 + 200_000, body), body);
  await assert.rejects(store.list('web01'), /audit\/web01\/2026\/12\/03\/.*\.jsonl|JSON/);
});

test('archiveAll goes on past a console that fails, and says which', async () => {
  const { hot, store } = await setup();
  for (const c of ['a1', 'b2', 'c3']) for (const i of [0, 1]) await store.append(rec(i, { console: c }));
  const entries = hot.entries.bind(hot);
  hot.entries = async (c, o) => { if (c === 'b2') throw new Error('ProvisionedThroughputExceeded'); return entries(c, o); };
  const log: string[] = [];
  const r = await store.archiveAll(['a1', 'b2', 'c3'], T0 + 5000, (l) => log.push(l));
  assert.deepEqual(r, { objects: 2, records: 2, failed: ['b2'] });
  assert.match(log.join('\n'), /audit of b2: archiving failed, its records stay in DynamoDB for the next run: ProvisionedThroughputExceeded/);
});

test('verify walks the chain across objects and table: an object named for another end, and a table copy that differs from its archived twin, are reported', async () => {
  const { hot, bucket, client, table, store } = await setup({ batchRecords: 4 });
  for (let i = 0; i < 12; i++) await store.append(rec(i));
  const remove = hot.remove.bind(hot);
  hot.remove = async () => { throw new Error('Lambda timed out'); };
  await assert.rejects(store.archive('web01', T0 + 8000), /timed out/);
  hot.remove = remove;
  assert.equal((await store.verify('web01')).ok, true, 'seq 1..4 in an object and still in the table: walked once');
  // The table's copy of seq 2 edited: its archived twin (Object Lock) tells.
  const two = (await hot.entries('web01')).find((e) => e.rec.seq === 2)!;
  await client.send(new PutItemCommand({
    TableName: table, Item: { pk: S('audit#web01'), sk: S(two.sk), rec: S(JSON.stringify({ ...two.rec, user: 'mallory' })), time: N(two.rec.time) },
  }));
  const v = await store.verify('web01');
  assert.deepEqual({ ok: v.ok, seq: v.broken?.seq, problem: v.broken?.problem }, { ok: false, seq: 2, problem: 'copies differ' }, JSON.stringify(v));
  await store.archive('web01', T0 + 8000);
  assert.equal((await store.verify('web01')).ok, true, 'the table copies deleted: the archived ones count');
  // An object put back under a name that claims another end hash.
  const [obj] = (await bucket.list('audit/')).map((o) => o.key);
  const body = await bucket.get(obj);
  await bucket.delete(obj);
  await bucket.put(obj.replace(/_[0-9a-f]{64}\.jsonl$/, `_${'ab'.repeat(32)}.jsonl`), body);
  const w = await store.verify('web01');
  assert.equal(w.broken?.problem, 'hash mismatch', JSON.stringify(w));
  assert.match(w.broken!.detail, /archive object .* is named for seq 1\.\.4 ending at hash abababababab, but holds seq 1\.\.4/);
});
