// README "Deploy to AWS": the shell lines that write the first admin token into a deployed stack's
// table (the CLI cannot: it creates tokens through the API, which needs an admin token, or in an
// embedded data directory). They run here as written, with `aws` replaced by a shell function that
// records its arguments; the recorded put-item goes to dynalite, and the token must then verify as
// an admin through DynamoTokenStore, as the deployed functions verify it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoTokenStore } from '../cloud/adapters/aws/dynamo-token-store.ts';
import { closeAwsPeers, freshStateTable } from '../test/aws-peers.ts';
import { ROOT } from './stack.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-admintok-'));
after(async () => { fs.rmSync(tmp, { recursive: true, force: true }); await closeAwsPeers(); });

function readmeBlock(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('**The first admin token.**');
  assert.ok(at >= 0, 'README has the first-admin-token recipe');
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'a sh block follows');
  return m[1]!;
}

test('README recipe for the first admin token writes an item DynamoTokenStore verifies as an admin', async () => {
  const { client, table } = await freshStateTable();
  const args = path.join(tmp, 'args');
  const stub = 'aws() { if [ "$1" = cloudformation ]; then printf \'%s\\n\' "$CC_TEST_TABLE"; else printf \'%s\\0\' "$@" > "$CC_TEST_ARGS"; fi; }\n';
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', stub + readmeBlock()], { env: { ...process.env, CC_TEST_TABLE: table, CC_TEST_ARGS: args }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const token = r.stdout.trim().split('\n').at(-1)!;
  assert.match(token, /^ccu_[A-Za-z0-9_-]{20,100}$/);

  const argv = fs.readFileSync(args, 'utf8').split('\0').slice(0, -1);
  assert.deepEqual(argv.slice(0, 2), ['dynamodb', 'put-item']);
  const opt = (name: string) => { const i = argv.indexOf(name); assert.ok(i > 0, `${name} given`); return argv[i + 1]!; };
  assert.equal(opt('--table-name'), table, 'the table from the stack output');
  await client.send(new PutItemCommand({ TableName: table, Item: JSON.parse(opt('--item')) as Record<string, AttributeValue>, ConditionExpression: opt('--condition-expression') }));

  const who = await new DynamoTokenStore(client, table).verify(token);
  assert.deepEqual(who && { kind: who.kind, name: who.name, admin: who.admin }, { kind: 'user', name: 'admin', admin: true });
  assert.equal(await new DynamoTokenStore(client, table).verify(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`), undefined, 'only that token');
});
