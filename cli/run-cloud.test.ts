// The first admin token: never in the store without being in DIR/admin-token.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootstrapAdmin } from './run-cloud.ts';
import { FsTokenStore } from '../cloud/adapters/fs/token-store.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bootstrap-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('an admin-token write that fails leaves no admin token nobody knows: the next start makes one and writes it', async () => {
  const data = path.join(root, 'data');
  fs.mkdirSync(path.join(data, 'admin-token'), { recursive: true }); // the write fails (a folder in the way)
  await assert.rejects(bootstrapAdmin(data));
  assert.ok(!fs.existsSync(path.join(data, 'tokens.json')), 'no token stored that was not handed out');
  fs.rmdirSync(path.join(data, 'admin-token'));
  const file = await bootstrapAdmin(data);
  assert.equal(file, path.join(data, 'admin-token'));
  const who = await new FsTokenStore(data).verify(fs.readFileSync(file!, 'utf8').trim());
  assert.ok(who && who.admin, 'the token in admin-token is the store\'s admin');
  assert.equal(fs.statSync(file!).mode & 0o777, 0o600);
  assert.equal(await bootstrapAdmin(data), undefined, 'made once');
});
