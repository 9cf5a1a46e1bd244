import { after } from 'node:test';
import { FsAccessStore } from '../../cloud/adapters/fs/access-store.ts';
import { FsTokenStore } from '../../cloud/adapters/fs/token-store.ts';
import { DynamoAccessStore } from '../../cloud/adapters/aws/dynamo-access-store.ts';
import { DynamoTokenStore } from '../../cloud/adapters/aws/dynamo-token-store.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { accessStoreContract, tokenStoreContract } from './token-store.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

tokenStoreContract('fs token store', async () => new FsTokenStore(tmpDir('tokens')));
tokenStoreContract('dynamodb token store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoTokenStore(client, table);
});
accessStoreContract('fs access store', async () => new FsAccessStore(tmpDir('access')));
accessStoreContract('dynamodb access store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoAccessStore(client, table);
});
