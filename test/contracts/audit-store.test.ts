import { after } from 'node:test';
import { FsAuditStore } from '../../cloud/adapters/fs/audit-store.ts';
import { DynamoAuditStore } from '../../cloud/adapters/aws/dynamo-audit-store.ts';
import { ArchivedAuditStore } from '../../cloud/adapters/aws/s3-audit-archive.ts';
import { S3SegmentStore } from '../../cloud/adapters/aws/s3-segment-store.ts';
import type { AuditRecord } from '../../cloud/core/ports.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { auditStoreContract } from './audit-store.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

auditStoreContract('fs audit store', async () => new FsAuditStore(tmpDir('audit')));

auditStoreContract('dynamodb audit store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoAuditStore(client, table);
});

// DynamoDB for recent records, S3 objects for archived ones: every 5th append archives what is
// older than it, so each listing crosses both stores (and batches of 3 make several objects).
auditStoreContract('dynamodb + S3 archive audit store (dynalite + s3rver)', async () => {
  const { client, table } = await freshStateTable();
  const { client: s3 } = await (s3peer ??= startS3rver(['audit']));
  const prefix = `t${Math.random().toString(36).slice(2)}/`;
  const store = new ArchivedAuditStore(new DynamoAuditStore(client, table), new S3SegmentStore({ client: s3, bucket: 'audit', prefix }), { batchRecords: 3 });
  let n = 0;
  return {
    append: async (r: AuditRecord) => { await store.append(r); if (++n % 5 === 0) await store.archive(r.console, r.time); },
    list: (c: string, o?: { limit?: number; since?: number }) => store.list(c, o),
  };
});
let s3peer: ReturnType<typeof startS3rver> | undefined;
