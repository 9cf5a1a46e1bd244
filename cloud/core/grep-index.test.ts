import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { encodeSegment, type Chunk } from '../../protocol/segment.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { requiredLiterals } from './grep-index.ts';
import { LogStore } from './log-store.ts';
import { byteSource, grepLog, grepPattern } from './replay.ts';

after(cleanup);

test('requiredLiterals finds only what every match must contain', () => {
  const lit = (p: string, i = false) => requiredLiterals(byteSource(p, i), i).map((b) => b.toString('latin1'));
  assert.deepEqual(lit('NEVER_[0-9]+_MATCHES'), ['NEVER_', '_MATCHES']);
  assert.deepEqual(lit('kernel: eth0 up'), ['kernel: eth0 up']);
  assert.deepEqual(lit('colou?r error'), ['colo', 'r error']);
  assert.deepEqual(lit('abcd*e'), ['abc']);
  assert.deepEqual(lit('panic\\(\\) at'), ['panic() at']);
  assert.deepEqual(lit('a|bcdef'), [], 'alternation: nothing is required');
  assert.deepEqual(lit('(optional group)?xyz1'), ['xyz1']);
  assert.deepEqual(lit('\\d+ errors? found'), [' error', ' found']);
  assert.deepEqual(lit('ab.cd'), []);
  assert.deepEqual(lit('ÉTÉ', true), [], '-i with non-ASCII: no pruning');
  assert.deepEqual(lit('Link UP', true), ['Link UP']);
});

test('grep with the trigram index finds exactly what a full scan finds, also across block and segment seams', async () => {
  const dir = tmpDir('gidx');
  const log = new LogStore(new FsSegmentStore(dir), new FsHotTail(dir));
  // 3 segments of many 4 KiB blocks of filler; needles placed inside blocks, across a block seam
  // and across the seam between two segments.
  const filler = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => 'abcdefghij klmnopq\n'[(i * 7 + seed) % 19]).join(''));
  const text = Buffer.concat([filler(20_000, 1), Buffer.from('\nfirst NEEDLE-ONE here\n'), filler(20_000, 2)]);
  const seamAt = 4096 * 3 - 5; // "NEEDLE-TWO" straddles the seam between blocks 2 and 3
  text.write('\nNEEDLE-TWO\n', seamAt - 1, 'latin1');
  const segs = [text, Buffer.concat([filler(8190, 3), Buffer.from('x NEED')]), Buffer.concat([Buffer.from('LE-THREE y\n'), filler(9000, 4), Buffer.from('\nlink up NEEDLE-FOUR\n')])];
  let off = 0, ts = 1000;
  for (const data of segs) {
    const chunks: Chunk[] = [];
    for (let p = 0; p < data.length; p += 500) chunks.push({ offset: off + p, ts: ts++, data: data.subarray(p, p + 500) });
    await log.putSegment('c', await encodeSegment('c', chunks, { blockBytes: 4096 }));
    off += data.length;
  }
  const run = async (pattern: string, i: boolean, pruned: boolean) => {
    const pat = grepPattern(pattern, i);
    if (!pruned) pat.literals = [];
    const hits = [];
    for await (const h of grepLog(log.items('c', 0, off, { literals: pat.literals }), 'c', pat)) hits.push(`${h.offset}:${h.line}`);
    return hits;
  };
  for (const [p, i] of [['NEEDLE-[A-Z]+', false], ['needle-t', true], ['NEEDLE-TWO', false], ['NEEDLE-THREE', false], ['LINK UP needle', true], ['NOT THERE AT ALL', false]] as const) {
    const full = await run(p, i, false);
    assert.deepEqual(await run(p, i, true), full, p);
  }
  assert.equal((await run('NEEDLE-[A-Z]+', false, true)).length, 4);
  // ...and the index really skips blocks for a selective pattern.
  let skipped = 0;
  for await (const it of log.items('c', 0, off, { literals: grepPattern('NOT THERE AT ALL', false).literals })) if (it.kind === 'pending') skipped += it.bytes;
  assert.ok(skipped > off / 2, `skipped ${skipped} of ${off} bytes`);
});
