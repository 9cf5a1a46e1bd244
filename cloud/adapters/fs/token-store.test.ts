import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FsTokenStore } from './token-store.ts';
import { cleanup, tmpDir } from '../../../test/helpers.ts';

after(cleanup);

test('tokens.json holds only hashes, mode 0600 (the rest of the contract: test/contracts/token-store.test.ts)', async () => {
  const dir = tmpDir('tok');
  const s = new FsTokenStore(dir);
  const alice = await s.create({ kind: 'user', name: 'alice', admin: true });
  const file = fs.readFileSync(path.join(dir, 'tokens.json'), 'utf8');
  assert.ok(!file.includes(alice.token) && !file.includes(alice.token.slice(4)), 'no secret at rest');
  assert.equal(fs.statSync(path.join(dir, 'tokens.json')).mode & 0o777, 0o600);
});

test('a token created by another process on the same directory is seen without a restart', async () => {
  const dir = tmpDir('tok');
  const server = new FsTokenStore(dir);
  await server.create({ kind: 'user', name: 'admin', admin: true });
  const bob = await new FsTokenStore(dir).create({ kind: 'user', name: 'bob' });
  await new Promise((r) => setTimeout(r, 20)); // a distinct mtime
  assert.equal((await server.verify(bob.token))?.name, 'bob');
});

test('tokens stored before names were checked: capitals sign in lowercase; a name that is no user\'s signs in as nobody', async () => {
  const dir = tmpDir('tok');
  const s = new FsTokenStore(dir);
  const names = ['Alice', 'relay:edge1', '@sre', 'sso:bob', '\u0430dmin', 'ad\u202emin'];
  const made: { token: string; id: string }[] = [];
  for (let i = 0; i < names.length; i++) made.push(await s.create({ kind: 'user', name: `u${i}` }));
  // What an older `token create --data` could write: the names as given.
  const file = path.join(dir, 'tokens.json');
  const entries = JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string }[];
  for (const e of entries) e.name = names[Number(e.name.slice(1))]!;
  fs.writeFileSync(file, JSON.stringify(entries));
  const old = new FsTokenStore(dir);
  assert.equal((await old.verify(made[0]!.token))?.name, 'alice');
  for (let i = 1; i < names.length; i++) {
    await assert.rejects(old.verify(made[i]!.token), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CC_ERR_UNAUTHORIZED');
      assert.match(e.message, new RegExp(`^token ${made[i]!.id} \\(user ".*"\\) cannot sign in: its name ".*" (holds|starts)`));
      assert.ok(/^[\x20-\x7e]*$/.test(e.message), `escaped: ${e.message}`);
      return true;
    }, names[i]);
  }
});
