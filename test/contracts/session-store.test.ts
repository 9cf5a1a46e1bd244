import { after } from 'node:test';
import { MemorySessionStore } from '../../cloud/adapters/memory/session-store.ts';
import { DynamoSessionStore } from '../../cloud/adapters/aws/dynamo-session-store.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { sessionStoreContract } from './session-store.contract.ts';

after(closeAwsPeers);

sessionStoreContract('memory session store', async () => new MemorySessionStore());

sessionStoreContract('dynamodb session store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoSessionStore(client, table);
});
