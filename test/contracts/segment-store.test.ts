import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FsSegmentStore } from '../../cloud/adapters/fs/segment-store.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { segmentStoreContract } from './segment-store.contract.ts';

after(cleanup);
segmentStoreContract('fs segment store', async () => {
  const dir = tmpDir('segs');
  return { store: new FsSegmentStore(dir), reopen: async () => new FsSegmentStore(dir) };
});

test('fs segment store: keys and listing prefixes that would leave its folder are refused (BadParameter), nothing read or written outside', async () => {
  const dir = tmpDir('segs');
  const store = new FsSegmentStore(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'outside.seg'), 'secret');
  const refused = (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER' && /bad object key/.test(e.message);
  for (const bad of ['../outside.seg', '../../outside.seg', 'logs/../../../outside.seg', '/etc/passwd']) {
    await assert.rejects(store.get(bad), refused, bad);
    await assert.rejects(store.put(bad, Buffer.from('x')), refused, bad);
  }
  for (const bad of ['../', '../../', 'logs/../../', 'logs//', '/']) {
    await assert.rejects(store.list(bad), refused, bad);
    await assert.rejects(store.children(bad), refused, bad);
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), ['data', 'outside.seg']);
  assert.equal(fs.readFileSync(path.join(dir, 'outside.seg'), 'utf8'), 'secret');
});
