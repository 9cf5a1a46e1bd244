// The DynamoDB lock store against dynalite (real HTTP, the real AWS SDK), through the same
// contract as the memory store, including its race: 50 acquirers, exactly one wins; 50 forcing,
// fences strictly increase.
import { after } from 'node:test';
import { DynamoLockStore } from '../../cloud/adapters/aws/dynamo-lock-store.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { lockStoreContract } from './lock-store.contract.ts';

after(closeAwsPeers);

lockStoreContract('dynamodb lock store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoLockStore({ client, table });
});
