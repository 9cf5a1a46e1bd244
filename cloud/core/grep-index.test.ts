import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { encodeSegment, type Chunk } from '../../protocol/segment.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { LogStore } from './log-store.ts';
import { grepLog, grepPattern } from './replay.ts';

after(cleanup);

test('requiredLiterals finds only what every match must contain', () => {
  const lit = (p: string, i = false) => grepPattern(p, i).literals.map((b) => b.toString('latin1'));
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
  assert.deepEqual(lit('Link UP', true), ['link up'], '-i: lowercase, as the index and the pre-check fold');
  // Escapes are the characters they stand for, not the letters they are written with.
  assert.deepEqual(lit('\\x41BC\\u0044'), ['ABCD']);
  assert.deepEqual(lit('\\cJabc'), ['\nabc']);
  assert.deepEqual(lit('caf\\xe9 au lait'), ['caf\xc3\xa9 au lait'], 'a non-ASCII character as its UTF-8 bytes');
  // Groups: an alternation or an optional group ends a run; a group repeated at least once joins it once.
  assert.deepEqual(lit('(a|b)xyz'), ['xyz']);
  assert.deepEqual(lit('ab(cd)+efg'), ['abcd', 'efg']);
  assert.deepEqual(lit('ab(?:cd)?efg'), ['efg']);
});

test('grep finds a line whose pattern is written with escapes (the literals the pre-check looks for are its bytes)', async () => {
  const lines = Buffer.from('xx ABC yy\nno match\nline\nabc\n');
  for (const p of ['\\x41BC', '\\u0041\\u0042C', '\\x41\\x42\\x43', 'line\\n?']) {
    const hits = [];
    for await (const h of grepLog((async function* () { yield { kind: 'data' as const, offset: 0, ts: 1, data: lines }; })(), 'c', grepPattern(p, false))) hits.push(h.line);
    assert.deepEqual(hits, p.startsWith('line') ? ['line'] : ['xx ABC yy'], p);
  }
});

test('grep with its literal pre-check finds the lines JavaScript regexes find, on random patterns of literal runs', async () => {
  // Differential through grepLog: whatever requiredLiterals takes from a pattern, no matching line is skipped.
  let seed = 4242;
  const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
  const pick = <T>(xs: readonly T[]) => xs[rnd(xs.length)];
  const atoms = ['a', 'b', 'c', 'ab', 'abc', 'B', '\\x61', '\\u0062', '\\x43', '.', '[ab]', '\\d', '1', ' ', '\\.', '\\b', '^', '$'];
  const gen = (d: number): string => {
    const r = rnd(8);
    if (d > 2 || r < 3) return pick(atoms);
    if (r < 5) return gen(d + 1) + gen(d + 1) + gen(d + 1);
    if (r < 6) return `(${gen(d + 1)}|${gen(d + 1)})`;
    if (r < 7) return `(?:${gen(d + 1)})${pick(['*', '+', '?', '{2}', '{0,2}', '{1,}'])}`;
    return pick(atoms) + pick(['*', '+', '?', '{1,3}']);
  };
  const alphabet = 'abcABC1 .';
  let checked = 0, pruned = 0;
  for (let k = 0; k < 1500; k++) {
    const p = gen(0) + gen(1);
    const i = rnd(2) === 1;
    const lines = Array.from({ length: 12 }, () => Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join(''));
    let re: RegExp;
    try { re = new RegExp(p, i ? 'i' : ''); } catch { continue; } // `^*` and the like
    const pat = grepPattern(p, i);
    checked++;
    if (pat.literals.length) pruned++;
    const got: string[] = [];
    for await (const h of grepLog((async function* () { yield { kind: 'data' as const, offset: 0, ts: 1, data: Buffer.from(lines.join('\n') + '\n') }; })(), 'c', pat)) got.push(h.line);
    assert.deepEqual(got, lines.filter((l) => re.test(l)), `${JSON.stringify(p)}${i ? ' -i' : ''} (literals ${JSON.stringify(pat.literals.map(String))}) on ${JSON.stringify(lines)}`);
  }
  assert.ok(checked > 1000 && pruned > 200, `${checked} patterns checked, ${pruned} of them with literals`);
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
