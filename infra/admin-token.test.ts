// README "Deploy to AWS": the two shell blocks that write the first admin token into a deployed
// stack's table (the API needs an admin token to make one): `cloudcons token create
// --dynamodb-table`, and the same item with the AWS CLI alone. They run here as written, with `aws`
// replaced by a shell function that answers the stack output and records put-item's arguments;
// the CLI writes to dynalite (AWS_ENDPOINT_URL_DYNAMODB), the recorded put-item is sent there, and
// the token must then verify as an admin through DynamoTokenStore, as the deployed functions do.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
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

function readmeBlock(n: number): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('**The first admin token.**');
  assert.ok(at >= 0, 'README has the first-admin-token recipe');
  const m = [...readme.slice(at).matchAll(/```sh\n([\s\S]*?)```/g)][n];
  assert.ok(m, `sh block ${n} follows`);
  return m[1]!;
}

test('README: `cloudcons token create --dynamodb-table` writes the first admin token with the caller\'s AWS credentials', async () => {
  const { client, table } = await freshStateTable();
  const ep = await client.config.endpoint!();
  const stub = 'aws() { printf \'%s\\n\' "$CC_TEST_TABLE"; }\n';
  // Asynchronously: dynalite answers from this process.
  const run = (tbl: string) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn('bash', ['-euo', 'pipefail', '-c', stub + readmeBlock(0)], {
      cwd: ROOT, env: { ...process.env, CC_TEST_TABLE: tbl, AWS_ENDPOINT_URL_DYNAMODB: `${ep.protocol}//${ep.hostname}:${ep.port}`, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', HOME: tmp },
    });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  const r = await run(table);
  assert.equal(r.status, 0, r.stderr);
  const token = r.stdout.trim().split('\n').at(-1)!;
  assert.match(r.stderr, /created user token .* for admin \(expires 20\d\d-.*\); it is shown only once/);
  const who = await new DynamoTokenStore(client, table).verify(token);
  assert.deepEqual(who && { kind: who.kind, name: who.name, admin: who.admin }, { kind: 'user', name: 'admin', admin: true });
  // A table that is not there: the error names it and says where credentials come from.
  const bad = await run('no-such-table');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /could not write the token to DynamoDB table no-such-table: .*AWS credentials and region/);
});

test('README recipe for the first admin token writes an item DynamoTokenStore verifies as an admin', async () => {
  const { client, table } = await freshStateTable();
  const args = path.join(tmp, 'args');
  const stub = 'aws() { if [ "$1" = cloudformation ]; then printf \'%s\\n\' "$CC_TEST_TABLE"; else printf \'%s\\0\' "$@" > "$CC_TEST_ARGS"; fi; }\n';
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', stub + readmeBlock(1)], { env: { ...process.env, CC_TEST_TABLE: table, CC_TEST_ARGS: args }, encoding: 'utf8' });
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
