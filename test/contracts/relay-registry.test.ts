import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FsRelayRegistry } from '../../cloud/adapters/fs/relay-registry.ts';
import { DynamoRelayRegistry } from '../../cloud/adapters/aws/dynamo-relay-registry.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { relayRegistryContract } from './relay-registry.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

relayRegistryContract('fs relay registry', async () => new FsRelayRegistry(tmpDir('relays'), 0));

relayRegistryContract('dynamodb relay registry (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoRelayRegistry(client, table);
});

test('fs relay registry: kept across a restart, without the connection', async () => {
  const dir = tmpDir('relays-restart');
  const a = new FsRelayRegistry(dir, 0);
  await a.connected('edge1', 'c1', { version: '0.1.0', protocol: 1, boot: 'b' }, 1000);
  await a.status('edge1', { bytes: 7, oldestAt: 900 }, 1100, 0);
  a.close();
  const b = new FsRelayRegistry(dir, 0);
  assert.deepEqual(await b.get('edge1'), { name: 'edge1', version: '0.1.0', protocol: 1, boot: 'b', connectedSince: 1000, lastSeen: 1100, spool: { bytes: 7, oldestAt: 900, at: 1100 } });
});
