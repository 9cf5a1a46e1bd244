// Contract suite for SegmentStore: every adapter (fs; S3 against s3rver) runs it.
// `make()` opens a store; `reopen()` opens another instance on the same data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SegmentStore } from '../../cloud/core/ports.ts';

/** `opts.raceSkip` / `opts.childrenSkip`: why the peer under test cannot show atomic create /
 *  one-level listing (said in the test output as a skip, never counted as a pass). */
export function segmentStoreContract(
  name: string, make: () => Promise<{ store: SegmentStore; reopen(): Promise<SegmentStore> }>,
  opts: { raceSkip?: string; childrenSkip?: string } = {},
): void {
  test(`${name}: put is create-only, get reads whole objects and byte ranges, data survives reopening`, async () => {
    const { store, reopen } = await make();
    const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    assert.equal(await store.put('logs/c/2026/11/25/a.seg', body), 'created');
    assert.equal(await store.put('logs/c/2026/11/25/a.seg', Buffer.from('other')), 'exists');
    const again = await reopen();
    assert.ok((await again.get('logs/c/2026/11/25/a.seg')).equals(body), 'the first body stays');
    assert.ok((await again.get('logs/c/2026/11/25/a.seg', { start: 10, end: 20 })).equals(body.subarray(10, 20)));
    assert.ok((await again.get('logs/c/2026/11/25/a.seg', { start: 990, end: 2000 })).equals(body.subarray(990)));
    await assert.rejects(again.get('logs/c/nope.seg'), (e: Error & { code?: string }) => e.code === 'CC_ERR_NOT_FOUND');
  });

  const keys = ['logs/b/2026/11/26/2.seg', 'logs/a/2026/11/25/1.seg', 'logs/b/2026/11/25/9.seg', 'logs/b/2026/11/25/10.seg', 'logs/bb/2026/01/01/x.seg'];
  test(`${name}: children lists the next path component, however deep the keys go`, { skip: opts.childrenSkip }, async () => {
    const { store } = await make();
    for (const k of keys) await store.put(k, Buffer.from(k));
    assert.deepEqual(await store.children('logs/'), ['a', 'b', 'bb']);
    assert.deepEqual(await store.children('logs/b/'), ['2026']);
    assert.deepEqual(await store.children('logs/b/2026/11/25/'), ['10.seg', '9.seg']);
    assert.deepEqual(await store.children('nothing/'), []);
  });

  test(`${name}: list by prefix is sorted with sizes; delete`, async () => {
    const { store } = await make();
    for (const k of keys) await store.put(k, Buffer.from(k));
    assert.deepEqual((await store.list('logs/b/')).map((o) => o.key), ['logs/b/2026/11/25/10.seg', 'logs/b/2026/11/25/9.seg', 'logs/b/2026/11/26/2.seg']);
    assert.deepEqual((await store.list('logs/b/2026/11/25/')).map((o) => o.size), ['logs/b/2026/11/25/10.seg'.length, 'logs/b/2026/11/25/9.seg'.length]);
    assert.deepEqual(await store.list('logs/zz/'), []);
    await store.delete('logs/b/2026/11/25/9.seg');
    await store.delete('logs/b/2026/11/25/9.seg');
    assert.equal((await store.list('logs/b/')).length, 2);
  });

  test(`${name}: concurrent creates of one key: exactly one is created`, { skip: opts.raceSkip }, async () => {
    const { store } = await make();
    const r = await Promise.all(Array.from({ length: 20 }, (_, i) => store.put('logs/race/k.seg', Buffer.from(`body ${i}`))));
    assert.equal(r.filter((x) => x === 'created').length, 1);
    assert.match((await store.get('logs/race/k.seg')).toString(), /^body \d+$/);
  });
}
