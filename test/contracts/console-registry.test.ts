import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
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

test('dynamodb console registry: a record stored before the owner was kept beside it belongs to the relay its JSON names', async () => {
  const { client, table } = await freshStateTable();
  const r = new DynamoConsoleRegistry(client, table);
  const old = { name: 'web01', type: 'serial', state: 'down' as const, since: 1, relay: 'edge1' };
  const legacy = () => client.send(new PutItemCommand({ TableName: table, Item: { pk: { S: 'consoles' }, sk: { S: 'web01' }, rec: { S: JSON.stringify(old) } } }));
  await legacy();
  assert.equal(await r.putIf({ ...old, relay: 'evil' }, 'evil'), false);
  assert.equal(await r.putIf({ ...old, relay: 'evil' }, null), false);
  assert.equal(await r.remove('web01', 'evil'), false);
  assert.equal(await r.putIf({ ...old, state: 'up', relayConn: 'c1' }, 'edge1'), true);
  assert.equal((await r.get('web01'))?.state, 'up');
  await legacy();
  assert.equal(await r.remove('web01', 'edge1'), true);
  assert.equal(await r.get('web01'), undefined);
});
