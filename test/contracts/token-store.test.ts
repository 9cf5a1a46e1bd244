import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
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

test('dynamodb token store: info (asked at every input of an open session) is one GetItem; ids stored before that still answer', async () => {
  const { client, table } = await freshStateTable();
  const s = new DynamoTokenStore(client, table);
  const t = await s.create({ kind: 'user', name: 'dana' });
  const sent: string[] = [];
  const send = client.send.bind(client);
  client.send = ((cmd: { constructor: { name: string } }, ...rest: unknown[]) => { sent.push(cmd.constructor.name); return (send as (...a: unknown[]) => unknown)(cmd, ...rest); }) as typeof client.send;
  try {
    assert.equal((await s.info(t.id))?.name, 'dana');
    assert.deepEqual(sent, ['GetItemCommand']);
    await s.revoke(t.id, 'root', 5000);
    sent.length = 0;
    assert.deepEqual((await s.info(t.id))?.revoked, { at: 5000, by: 'root' });
    assert.deepEqual(sent, ['GetItemCommand']);
  } finally { client.send = send; }
  // An id item as the store wrote it before (the hash only): info reads the token item too.
  const old = await s.create({ kind: 'relay', name: 'edge9' });
  const hash = (await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: `tokenid#${old.id}` }, sk: { S: 'tokenid' } } }))).Item!.hash!.S!;
  await client.send(new PutItemCommand({ TableName: table, Item: { pk: { S: `tokenid#${old.id}` }, sk: { S: 'tokenid' }, hash: { S: hash } } }));
  assert.equal((await s.info(old.id))?.name, 'edge9');
  assert.deepEqual((await s.revoke(old.id, 'root', 6000))?.revoked, { at: 6000, by: 'root' });
  assert.deepEqual((await s.info(old.id))?.revoked, { at: 6000, by: 'root' });
});
