import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FsKeyStore } from '../../cloud/adapters/fs/key-store.ts';
import { DynamoKeyStore } from '../../cloud/adapters/aws/dynamo-key-store.ts';
import { closeAwsPeers, freshStateTable } from '../aws-peers.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { keyStoreContract } from './key-store.contract.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

keyStoreContract('fs key store', async () => new FsKeyStore(tmpDir('keys')));

keyStoreContract('dynamodb key store (dynalite)', async () => {
  const { client, table } = await freshStateTable();
  return new DynamoKeyStore(client, table);
});

test('fs key store: kept across a restart, in a file only its owner reads', async () => {
  const fs = await import('node:fs');
  const dir = tmpDir('keys-restart');
  const a = new FsKeyStore(dir);
  const k = { type: 'ssh-ed25519', blob: 'AAAA', fingerprint: 'SHA256:x', addedAt: 5, addedBy: 'root', comment: 'c' };
  await a.put('alice', [k], 0);
  assert.equal(fs.statSync(`${dir}/ssh-keys.json`).mode & 0o777, 0o600);
  assert.deepEqual(await new FsKeyStore(dir).get('alice'), { keys: [k], version: 1 });
});
