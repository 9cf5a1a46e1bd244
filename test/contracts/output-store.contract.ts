// Contract suite for OutputStore: every adapter (fs now, S3 segments later) runs it.
// `make(dir)` opens a store on durable location `dir` (opening it twice must see the same data).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OutputStore } from '../../cloud/core/ports.ts';
import { tmpDir } from '../helpers.ts';

type Closable = OutputStore & { close(): void };

export function outputStoreContract(name: string, make: (dir: string) => Closable): void {

  test(`${name}: appends are de-duplicated by offset and a jump is recorded as a gap`, async () => {
    const s = make(tmpDir('out'));
    assert.deepEqual(await s.append('c', 0, 1, Buffer.from('hello ')), { end: 6, gap: undefined });
    assert.equal((await s.append('c', 3, 2, Buffer.from('lo world'))).end, 11);
    assert.equal((await s.append('c', 0, 3, Buffer.from('hello'))).end, 11);
    assert.deepEqual((await s.append('c', 15, 4, Buffer.from('!'))).gap, { offset: 11, bytes: 4 });
    assert.equal(await s.end('c'), 16);
    assert.equal((await s.read('c', 0, 16)).toString(), 'hello world!');
    s.close();
  });

  test(`${name}: readAt skips a gap, says where the data starts, and stops before the next gap`, async () => {
    const s = make(tmpDir('out'));
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

  test(`${name}: tail returns whole last lines, and everything survives reopening the store`, async () => {
    const dir = tmpDir('out');
    let s = make(dir);
    await s.append('c', 0, 1, Buffer.from('one\ntwo\nthree\n'));
    await s.gap('c', 14, 10, 2, 'lost');
    await s.append('c', 24, 3, Buffer.from('four'));
    s.close();
    s = make(dir);
    assert.equal(await s.end('c'), 28);
    assert.equal((await s.tail('c', 1)).toString(), 'four');
    assert.equal((await s.tail('c', 2)).toString(), 'three\nfour');
    assert.equal((await s.tail('c', 99)).toString(), 'one\ntwo\nthree\nfour');
    assert.deepEqual(await s.consoles(), ['c']);
    assert.equal(await s.end('unknown'), 0);
    s.close();
  });
}
