import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteItemCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { FsAuditStore } from '../../cloud/adapters/fs/audit-store.ts';
import { DynamoAuditStore, seqSk } from '../../cloud/adapters/aws/dynamo-audit-store.ts';
import { N, S } from '../../cloud/adapters/aws/dynamo-table.ts';
import { ArchivedAuditStore } from '../../cloud/adapters/aws/s3-audit-archive.ts';
import { S3SegmentStore } from '../../cloud/adapters/aws/s3-segment-store.ts';
import type { ChainOptions } from '../../cloud/core/audit-chain.ts';
import type { AuditRecord } from '../../cloud/core/ports.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { auditChainContract, auditNameContract, auditStoreContract, type StoredRecords } from './audit-store.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

auditStoreContract('fs audit store', async () => new FsAuditStore(tmpDir('audit')));

auditStoreContract('dynamodb audit store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoAuditStore(client, table);
});

// DynamoDB for recent records, S3 objects for archived ones: every 5th append archives what is
// older than it, so each listing crosses both stores (and batches of 3 make several objects).
auditStoreContract('dynamodb + S3 archive audit store (dynalite + s3rver)', async () => (await archivedRig({})).store);

auditNameContract('fs audit store', async () => new FsAuditStore(tmpDir('audit')));
auditNameContract('dynamodb audit store (dynalite)', async () => { const { client, table } = await freshStateTable(); return new DynamoAuditStore(client, table); });
auditNameContract('dynamodb + S3 archive audit store (dynalite + s3rver)', async () => (await archivedRig({})).store);

// ------------------------------------------------------------------------------------ the chain
auditChainContract('fs audit store', async (opts) => {
  const root = tmpDir('audit');
  const store = new FsAuditStore(root, opts);
  const file = (c: string) => path.join(root, 'audit', `${c}.jsonl`);
  const lines = (c: string) => fs.readFileSync(file(c), 'utf8').split('\n').filter(Boolean);
  const save = (c: string, ls: string[]) => fs.writeFileSync(file(c), ls.map((l) => l + '\n').join(''));
  const raw: StoredRecords = {
    async locate(c, seq) {
      const i = lines(c).findIndex((l) => { try { return JSON.parse(l).seq === seq; } catch { return false; } });
      if (i < 0) throw new Error(`no record with seq ${seq} in ${file(c)}`);
      return {
        read: async () => lines(c)[i],
        write: async (json) => { const ls = lines(c); ls[i] = json; save(c, ls); },
        delete: async () => { const ls = lines(c); ls.splice(i, 1); save(c, ls); },
      };
    },
    legacy: async (recs) => { fs.appendFileSync(file(recs[0].console), recs.map((r) => JSON.stringify(r) + '\n').join('')); },
    add: async (rec) => { fs.appendFileSync(file(rec.console), JSON.stringify(rec) + '\n'); },
    head: (c) => {
      const f = path.join(root, 'audit-heads', `${c}.json`);
      return { remove: async () => { fs.rmSync(f); }, garble: async () => { fs.writeFileSync(f, '{"seq":14,"hash":"ab'); return `audit-heads/${c}.json`; } };
    },
  };
  return { store, twin: () => store, heads: store.heads, raw };
});

/** Records in the state table: the item at a chain position, and old-style items. */
function tableRecords(client: DynamoDBClient, table: string): StoredRecords {
  const key = (c: string, sk: string) => ({ pk: S(`audit#${c}`), sk: S(sk) });
  const headKey = (c: string) => ({ pk: S(`audithead#${c}`), sk: S('head') });
  return {
    add: async (rec) => { await client.send(new PutItemCommand({ TableName: table, Item: { ...key(rec.console, seqSk(rec.seq!)), rec: S(JSON.stringify(rec)), time: N(rec.time) } })); },
    head: (c) => ({
      remove: async () => { await client.send(new DeleteItemCommand({ TableName: table, Key: headKey(c) })); },
      garble: async () => {
        await client.send(new PutItemCommand({ TableName: table, Item: { ...headKey(c), seq: S('fourteen'), hash: S('ab'), time: N(1) } }));
        return `item audithead#${c} of table ${table}`;
      },
    }),
    async locate(c, seq) {
      const Key = key(c, seqSk(seq));
      if (!(await client.send(new GetItemCommand({ TableName: table, Key, ConsistentRead: true }))).Item) throw new Error(`no item ${seqSk(seq)}`);
      return {
        read: async () => (await client.send(new GetItemCommand({ TableName: table, Key, ConsistentRead: true }))).Item!.rec!.S!,
        write: async (json) => { await client.send(new PutItemCommand({ TableName: table, Item: { ...Key, rec: S(json), time: N(0) } })); },
        delete: async () => { await client.send(new DeleteItemCommand({ TableName: table, Key })); },
      };
    },
    async legacy(recs) {
      for (const [i, r] of recs.entries()) {
        await client.send(new PutItemCommand({ TableName: table, Item: { ...key(r.console, `${String(r.time).padStart(15, '0')}#${String(i).padStart(12, '0')}#0badc0de`), rec: S(JSON.stringify(r)), time: N(r.time) } }));
      }
    },
  };
}

auditChainContract('dynamodb audit store (dynalite)', async (opts) => {
  const { client, table } = await freshStateTable();
  const store = new DynamoAuditStore(client, table, opts);
  return { store, twin: () => new DynamoAuditStore(client, table, opts), heads: store.heads, raw: tableRecords(client, table) };
});

// Records archived to S3 objects are tampered with inside the objects (s3rver has no Object Lock).
auditChainContract('dynamodb + S3 archive audit store (dynalite + s3rver)', async (opts) => archivedRig(opts));

async function archivedRig(opts: Partial<ChainOptions>) {
  const { client, table } = await freshStateTable();
  const { client: s3 } = await (s3peer ??= startS3rver(['audit']));
  const bucket = new S3SegmentStore({ client: s3, bucket: 'audit', prefix: `t${Math.random().toString(36).slice(2)}/` });
  const hot = new DynamoAuditStore(client, table, opts);
  const archived = new ArchivedAuditStore(hot, bucket, { batchRecords: 3 });
  let n = 0;
  const store = {
    append: async (r: AuditRecord) => { await archived.append(r); if (++n % 5 === 0) await archived.archive(r.console, r.time); },
    list: (c: string, o?: { limit?: number; since?: number }) => archived.list(c, o),
    verify: (c: string) => archived.verify(c),
    reseal: (c: string, by: string, now: number) => archived.reseal(c, by, now),
    settle: () => archived.settle(),
  };
  const inTable = tableRecords(client, table);
  const raw: StoredRecords = {
    async locate(c, seq) {
      for (const o of await bucket.list(`audit/${c}/`)) {
        const i = (await bucket.get(o.key)).toString('utf8').split('\n').findIndex((l) => { try { return JSON.parse(l).rec.seq === seq; } catch { return false; } });
        if (i < 0) continue;
        const rewrite = async (f: (lines: string[]) => void) => {
          const lines = (await bucket.get(o.key)).toString('utf8').split('\n');
          f(lines);
          await bucket.delete(o.key);
          await bucket.put(o.key, Buffer.from(lines.join('\n')));
        };
        const sk = JSON.parse((await bucket.get(o.key)).toString('utf8').split('\n')[i]).sk as string;
        return {
          read: async () => JSON.stringify(JSON.parse((await bucket.get(o.key)).toString('utf8').split('\n')[i]).rec),
          write: (json: string) => rewrite((ls) => { ls[i] = `{"sk":${JSON.stringify(sk)},"rec":${json}}`; }),
          delete: () => rewrite((ls) => { ls.splice(i, 1); }),
        };
      }
      return inTable.locate(c, seq);
    },
    legacy: (recs) => inTable.legacy(recs),
    add: (rec) => inTable.add(rec),
    head: (c) => inTable.head(c),
  };
  return { store, twin: () => new DynamoAuditStore(client, table, opts), heads: hot.heads, raw };
}
let s3peer: ReturnType<typeof startS3rver> | undefined;

test('fs audit store: an unreadable head (a torn write) stops appends (fail closed) until a reseal, which says so in the chain', async () => {
  const dir = tmpDir('audit-torn');
  const store = new FsAuditStore(dir);
  for (let i = 0; i < 3; i++) await store.append({ time: 1000 + i, console: 'c1', type: 'input', user: 'u' });
  store.close();
  fs.writeFileSync(path.join(dir, 'audit-heads', 'c1.json'), '{"seq":3,"hash":"ab');
  const again = new FsAuditStore(dir);
  await assert.rejects(again.append({ time: 2000, console: 'c1', type: 'input', user: 'u' }), /the audit chain head audit-heads\/c1\.json is unreadable: not JSON/);
  const r = await again.reseal('c1', 'root', 3000);
  assert.match(r.record.detail!, /head moved from an unreadable head to seq 3 /);
  await again.append({ time: 4000, console: 'c1', type: 'input', user: 'u' });
  assert.deepEqual((await again.list('c1')).map((x) => [x.seq, x.type]), [[1, 'input'], [2, 'input'], [3, 'input'], [4, 'audit.reseal'], [5, 'input']]);
  assert.ok((await again.verify('c1')).ok);
  again.close();
});

test('fs audit store: a head of the older 192-byte format (no announcement) reads as before and takes the new size at its first change', async () => {
  const dir = tmpDir('audit-oldhead');
  const store = new FsAuditStore(dir);
  for (let i = 0; i < 3; i++) await store.append({ time: 1000 + i, console: 'c1', type: 'input', user: 'u' });
  store.close();
  const file = path.join(dir, 'audit-heads', 'c1.json');
  const head = JSON.parse(fs.readFileSync(file, 'utf8')) as { seq: number; hash: string; time: number };
  fs.writeFileSync(file, JSON.stringify({ seq: head.seq, hash: head.hash, time: head.time }).padEnd(191, ' ') + '\n');
  const again = new FsAuditStore(dir);
  assert.deepEqual(await again.heads.get('c1'), head);
  assert.ok((await again.verify('c1')).ok);
  await again.append({ time: 2000, console: 'c1', type: 'input', user: 'u' });
  assert.equal(fs.statSync(file).size, 512);
  assert.deepEqual((await again.list('c1')).map((r) => r.seq), [1, 2, 3, 4]);
  assert.ok((await again.verify('c1')).ok);
  again.close();
});
