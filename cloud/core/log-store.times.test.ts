// Time lookups when a relay's clock steps back: times need not grow with offsets, and `since` /
// `until` still find everything stamped in the range (offsetAt: the first output stamped at or
// after a time; offsetBefore: the end of the last one stamped before it; both in offset order).
// Real fs stores, byte comparisons.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { encodeSegment, type Chunk } from '../../protocol/segment.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { LogStore } from './log-store.ts';

after(cleanup);

const HOUR = 3_600_000;
const T = Date.UTC(2026, 10, 25, 12); // before the step; after it the clock reads an hour less

function open(dir = tmpDir('times')) {
  const hot = new FsHotTail(dir, 4096);
  return { dir, hot, segs: new FsSegmentStore(dir), log: new LogStore(new FsSegmentStore(dir), hot) };
}
/** `n` chunks of 100 bytes from `offset`, stamped `t`, `t + 1000`, ... */
function run(offset: number, n: number, t: number, tag: string): Chunk[] {
  return Array.from({ length: n }, (_, i) => ({ offset: offset + i * 100, ts: t + i * 1000, data: Buffer.from(`${tag}${String(i).padStart(4, '0')}`.padEnd(99, '.') + '\n') }));
}
const bytes = (cs: Chunk[]) => Buffer.concat(cs.map((c) => c.data));

test('segments whose times step back an hour: since finds the first output stamped at or after it, in offset order; the data is there', async () => {
  const { log } = open();
  const a = run(0, 20, T, 'a'), b = run(2000, 20, T + 20_000 - HOUR, 'b'), c = run(4000, 20, T + 40_000 - HOUR, 'c');
  for (const cs of [a, b, c]) await log.putSegment('c', await encodeSegment('c', cs, { blockBytes: 500 }));
  const all = bytes([...a, ...b, ...c]);
  // The last minute by the real clock: `a` (stamped now) and everything after it.
  assert.equal(await log.offsetAt('c', T - 1000), 0);
  assert.ok((await log.read('c', await log.offsetAt('c', T - 1000), await log.end('c'))).equals(all));
  // A time inside `a`: from there on (b and c follow in offset order).
  assert.equal(await log.offsetAt('c', T + 5000), 500);
  // A time only `c` (and `a`) have stamps after: `a` comes first in offset order.
  assert.equal(await log.offsetAt('c', T + 50_000 - HOUR), 0);
  // Later than anything: the stored end.
  assert.equal(await log.offsetAt('c', T + HOUR), 6000);
  // until: the end of the last output stamped before it.
  assert.equal(await log.offsetBefore('c', T + 45_000 - HOUR), 4500, 'c0000..c0004 are stamped before it');
  assert.equal(await log.offsetBefore('c', T + HOUR), 6000);
  assert.equal(await log.offsetBefore('c', T - 2 * HOUR), 0, 'nothing stamped before: an empty range');
  assert.equal(await log.offsetBefore('c', T + 10_000 - HOUR), 0, 'before b began: nothing (a is later)');
  assert.equal(await log.offsetBefore('c', T + 25_000 - HOUR), 2500, 'b0000..b0004');
});

test('a step back inside one segment, and a time only the middle of a block has: found (the .times sidecar)', async () => {
  const { log, segs, dir } = open();
  // One block: stamps T, T+1h (a clock that jumped ahead), T+1000: first and last are both below
  // T+30 min, the middle is not.
  const odd: Chunk[] = [
    { offset: 0, ts: T, data: Buffer.from('first\n') },
    { offset: 6, ts: T + HOUR, data: Buffer.from('ahead\n') },
    { offset: 12, ts: T + 1000, data: Buffer.from('back\n') },
  ];
  const steps = [...run(17, 10, T + 2000, 'x'), ...run(1017, 10, T + 12_000 - HOUR, 'y')];
  await log.putSegment('c', await encodeSegment('c', [...odd, ...steps], { blockBytes: 300 }));
  const listed = (await segs.list('logs/c/')).map((o) => o.key);
  assert.ok(listed.some((k) => k.endsWith('.seg.times')), `a time sidecar: ${listed}`);
  assert.equal(await log.offsetAt('c', T + HOUR / 2), 6, 'the chunk in the middle of the block');
  assert.equal(await log.offsetAt('c', T + 15_000 - HOUR), 0, '"first" is stamped after it, and first in offset order');
  assert.equal(await log.offsetBefore('c', T + 15_000 - HOUR), 1017 + 300, 'the end of y2 (y0..y2 stamped before)');
  // A fresh LogStore (another process) learns of the sidecar from the listing.
  const again = new LogStore(new FsSegmentStore(dir), new FsHotTail(dir, 4096));
  assert.equal(await again.offsetAt('c', T + HOUR / 2), 6);
  // Compaction keeps the sidecar for the merged segment.
  await log.putSegment('c', await encodeSegment('c', run(2017, 5, T + 30_000 - HOUR, 'z')));
  const r = await log.compact('c', T + 2 * HOUR);
  assert.equal(r.merged, 2);
  assert.equal((await segs.list('logs/c/')).filter((o) => o.key.endsWith('.seg.times')).length, 1);
  assert.equal(await new LogStore(new FsSegmentStore(dir), new FsHotTail(dir, 4096)).offsetAt('c', T + HOUR / 2), 6);
});

test('the fs hot tail: a file whose last chunk is older than an earlier one is still searched (also after a restart)', async () => {
  const { log, dir } = open();
  await log.append('c', 0, T, Buffer.from('before the step\n'));
  await log.append('c', 16, T - HOUR, Buffer.from('after the step\n'));
  assert.equal(await log.offsetAt('c', T - 1000), 0);
  const again = new LogStore(new FsSegmentStore(dir), new FsHotTail(dir, 4096));
  assert.equal(await again.offsetAt('c', T - 1000), 0, 'reopened: the file\'s latest time is read back');
  assert.equal(await again.offsetBefore('c', T - 1000), 31, 'until: the hot tail read back from its end');
  assert.equal((await again.read('c', 0, 31)).toString(), 'before the step\nafter the step\n');
});
