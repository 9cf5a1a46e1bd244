import { after } from 'node:test';
import { FsConsoleRegistry } from '../../cloud/adapters/fs/console-registry.ts';
import { DynamoConsoleRegistry } from '../../cloud/adapters/aws/dynamo-console-registry.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { consoleRegistryContract } from './console-registry.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

consoleRegistryContract('fs console registry', async () => new FsConsoleRegistry(tmpDir('registry'), 0));

consoleRegistryContract('dynamodb console registry (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoConsoleRegistry(client, table);
});
