// The DynamoDB lock store against dynalite (real HTTP, the real AWS SDK), through the same
// contract as the memory store, including its race: 50 acquirers, exactly one wins; 50 forcing,
// fences strictly increase.
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import { createLockTable, DynamoLockStore } from '../../cloud/adapters/aws/dynamo-lock-store.ts';
import { closeAwsPeers, startDynalite } from '../aws-peers.ts';
import { lockStoreContract } from './lock-store.contract.ts';

after(closeAwsPeers);

let peer: Awaited<ReturnType<typeof startDynalite>> | undefined;
lockStoreContract('dynamodb lock store (dynalite)', async () => {
  peer ??= await startDynalite();
  const table = `locks-${randomBytes(4).toString('hex')}`; // a fresh table per test
  await createLockTable(peer.client, table);
  return new DynamoLockStore({ client: peer.client, table });
});
