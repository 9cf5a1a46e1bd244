import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FsOutputStore } from './output-store.ts';
import { cleanup, tmpDir } from '../../../test/helpers.ts';

after(cleanup);

test('appends are de-duplicated by offset and a jump is recorded as a gap', async () => {
  const s = new FsOutputStore(tmpDir('out'));
  assert.deepEqual(await s.append('c', 0, 1, Buffer.from('hello ')), { end: 6, gap: undefined });
  assert.equal((await s.append('c', 3, 2, Buffer.from('lo world'))).end, 11);
  assert.equal((await s.append('c', 0, 3, Buffer.from('hello'))).end, 11);
  assert.deepEqual((await s.append('c', 15, 4, Buffer.from('!'))).gap, { offset: 11, bytes: 4 });
  assert.equal(await s.end('c'), 16);
  assert.equal((await s.read('c', 0, 16)).toString(), 'hello world!');
  s.close();
});

test('readAt skips a gap, says where the data starts, and stops before the next gap', async () => {
  const s = new FsOutputStore(tmpDir('out'));
  await s.append('c', 0, 1, Buffer.from('aaaa'));
  await s.gap('c', 4, 3, 2, 'relay buffer full');
  await s.append('c', 7, 3, Buffer.from('bbbb'));
  await s.gap('c', 11, 2, 4, 'x');
  await s.append('c', 13, 5, Buffer.from('cc'));
  assert.deepEqual(await s.readAt('c', 2, 100), { offset: 2, data: Buffer.from('aa') });
  assert.deepEqual(await s.readAt('c', 5, 100), { offset: 7, data: Buffer.from('bbbb') });
  assert.deepEqual(await s.readAt('c', 8, 2), { offset: 8, data: Buffer.from('bb') });
  assert.deepEqual(await s.readAt('c', 11, 100), { offset: 13, data: Buffer.from('cc') });
  assert.deepEqual(await s.readAt('c', 15, 100), { offset: 15, data: Buffer.alloc(0) });
  s.close();
});

test('tail returns whole last lines, and everything survives reopening the store', async () => {
  const dir = tmpDir('out');
  let s = new FsOutputStore(dir);
  await s.append('c', 0, 1, Buffer.from('one\ntwo\nthree\n'));
  await s.gap('c', 14, 10, 2, 'lost');
  await s.append('c', 24, 3, Buffer.from('four'));
  s.close();
  s = new FsOutputStore(dir);
  assert.equal(await s.end('c'), 28);
  assert.equal((await s.tail('c', 1)).toString(), 'four');
  assert.equal((await s.tail('c', 2)).toString(), 'three\nfour');
  assert.equal((await s.tail('c', 99)).toString(), 'one\ntwo\nthree\nfour');
  assert.deepEqual(await s.consoles(), ['c']);
  assert.equal(await s.end('unknown'), 0);
  s.close();
});
