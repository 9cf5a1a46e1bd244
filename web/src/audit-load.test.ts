import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAudits, shareOf } from './audit-load.ts';

test('thousands of consoles load a few requests at a time, each its share of a bounded budget', async () => {
  const names = Array.from({ length: 2000 }, (_, i) => `junk${i}`);
  let inFlight = 0, most = 0;
  const limits = new Set<number>();
  const progress: number[] = [];
  const r = await loadAudits(names, async (name, limit) => {
    limits.add(limit);
    most = Math.max(most, ++inFlight);
    await new Promise((res) => setTimeout(res, 1));
    inFlight--;
    if (name === 'junk7') throw new Error('403 not yours');
    return Array.from({ length: name === 'junk1' ? limit : 1 }, (_, k) => ({ name, k }));
  }, { progress: (done) => progress.push(done) });
  assert.ok(most <= 6, `${most} requests at once`);
  assert.deepEqual([...limits], [20], 'a share of 20000 over 2000 consoles is 10: at least 20 each');
  assert.equal(r.records.length, 1998 + 20);
  assert.deepEqual(r.cut, ['junk1']);
  assert.deepEqual(r.failed, [{ name: 'junk7', error: '403 not yours' }]);
  assert.equal(progress.at(-1), 2000);
});

test('a few consoles get up to 5000 records each; leaving the page stops the loading', async () => {
  assert.equal(shareOf(1), 5000);
  assert.equal(shareOf(10), 2000);
  assert.equal(shareOf(0), 5000);
  let calls = 0;
  let stop = false;
  await loadAudits(Array.from({ length: 100 }, (_, i) => `c${i}`), async () => { if (++calls === 10) stop = true; return []; }, { stopped: () => stop, concurrency: 2 });
  assert.ok(calls <= 11, `${calls} requests after the page was left`);
});
