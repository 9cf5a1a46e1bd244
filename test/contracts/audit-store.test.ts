import { after } from 'node:test';
import { FsAuditStore } from '../../cloud/adapters/fs/audit-store.ts';
import { DynamoAuditStore } from '../../cloud/adapters/aws/dynamo-audit-store.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { auditStoreContract } from './audit-store.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

auditStoreContract('fs audit store', async () => new FsAuditStore(tmpDir('audit')));

auditStoreContract('dynamodb audit store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoAuditStore(client, table);
});
