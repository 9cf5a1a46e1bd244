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
