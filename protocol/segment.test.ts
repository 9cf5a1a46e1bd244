import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import {
  bufferSource, encodeGapSegment, encodeSegment, parseSegmentKey, readBlock, readFooter, segmentKey, shiftSegment,
  sliceSegment, verifySegment, SegmentFormatError, type Chunk,
} from './segment.ts';
import { MAX_TIME_MS } from './bounds.ts';

function chunksOf(data: Buffer, start: number, t0: number, sizes: number[]): Chunk[] {
  const out: Chunk[] = [];
  let p = 0, i = 0;
  while (p < data.length) {
    const n = Math.min(sizes[i++ % sizes.length], data.length - p);
    out.push({ offset: start + p, ts: t0 + i, data: data.subarray(p, p + n) });
    p += n;
  }
  return out;
}

test('a segment round-trips bytes, offsets and chunk times exactly', async () => {
  const data = randomBytes(300_000); // not UTF-8, not compressible
  const chunks = chunksOf(data, 5000, 1_700_000_000_000, [1, 17, 4096, 333, 70_000]);
  const seg = await encodeSegment('web01', chunks, { blockBytes: 16 * 1024 });
  const f = await verifySegment(seg);
  assert.equal(f.start, 5000);
  assert.equal(f.end, 5000 + data.length);
  assert.equal(f.sha256, createHash('sha256').update(data).digest('hex'));
  assert.ok(f.blocks.length >= 8, `blocks: ${f.blocks.length}`);
  const back: Chunk[] = [];
  for (let i = 0; i < f.blocks.length; i++) back.push(...(await readBlock(bufferSource(seg), f, i)));
  assert.deepEqual(back.map((c) => [c.offset, c.ts, c.data.length]), chunks.map((c) => [c.offset, c.ts, c.data.length]));
  assert.ok(Buffer.concat(back.map((c) => c.data)).equals(data));
  assert.equal(f.t0, chunks[0].ts);
  assert.equal(f.t1, chunks.at(-1)!.ts);
});

test('text compresses, and one block is enough to reach a time', async () => {
  const line = (i: number) => Buffer.from(`[ ${i.toString().padStart(8)} ] kernel: eth0: link up 1000Mbps full duplex\r\n`);
  const chunks: Chunk[] = [];
  let off = 0;
  for (let i = 0; i < 20_000; i++) { const d = line(i); chunks.push({ offset: off, ts: 1000 + i, data: d }); off += d.length; }
  const seg = await encodeSegment('c', chunks);
  assert.ok(seg.length < off / 4, `compressed ${seg.length} of ${off}`);
  const f = await readFooter(bufferSource(seg));
  const i = f.blocks.findIndex((b) => b.t1 >= 15_000);
  const got = (await readBlock(bufferSource(seg), f, i)).find((c) => c.ts >= 15_000)!;
  assert.equal(got.data.toString(), line(14_000).toString());
});

test('gap segments and key naming', async () => {
  const g = encodeGapSegment('web01', { offset: 100, bytes: 50, t0: Date.UTC(2026, 10, 25, 23, 59), t1: Date.UTC(2026, 10, 26), reason: 'spool full' });
  const f = await verifySegment(g);
  assert.equal(f.gap!.bytes, 50);
  assert.equal(f.end, 150);
  const key = segmentKey(f);
  assert.equal(key, `logs/web01/2026/11/25/0000000000000100-0000000000000150_${f.t0}-${f.t1}.gap.seg`);
  assert.deepEqual(parseSegmentKey(key), { key, console: 'web01', start: 100, end: 150, t0: f.t0, t1: f.t1, gap: true });
  assert.equal(parseSegmentKey('logs/web01/2026/11/25/junk.seg'), undefined);
  // A console name that is not one never makes a key, nor is read from one.
  assert.throws(() => segmentKey({ ...f, console: '../../x' }), (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER' && /console "\.\.\/\.\.\/x": must be 1 to 128 letters/.test(e.message));
  assert.equal(parseSegmentKey(key.replace('logs/web01/', 'logs/../')), undefined);
});

test('shiftSegment moves offsets and keeps the data', async () => {
  const data = Buffer.from('hello\nworld\n');
  const seg = await encodeSegment('c', [{ offset: 0, ts: 1, data }]);
  const moved = await shiftSegment(seg, 1000);
  const f = await verifySegment(moved);
  assert.equal(f.start, 1000);
  const [c] = await readBlock(bufferSource(moved), f, 0);
  assert.equal(c.offset, 1000);
  assert.ok(c.data.equals(data));
});

test('corrupt, truncated and foreign segments are refused with a reason', async () => {
  const seg = await encodeSegment('c', chunksOf(Buffer.from('x'.repeat(10_000)), 0, 1, [100]));
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /too short/],
    ['truncated', seg.subarray(0, seg.length - 5), /end marker/],
    ['foreign', Buffer.from('GIF89a' + 'x'.repeat(100)), /end marker/],
  ];
  const flipped = Buffer.from(seg); flipped[12] ^= 0xff; cases.push(['flipped data byte', flipped, /block|sha256/]);
  const badMagic = Buffer.from(seg); badMagic[0] = 0; cases.push(['bad magic', badMagic, /bad magic/]);
  const badLen = Buffer.from(seg); badLen.writeUInt32LE(0xffffff, seg.length - 12); cases.push(['huge footer length', badLen, /does not fit/]);
  const json = Buffer.from(seg); const fp = seg.length - 12 - seg.readUInt32LE(seg.length - 12); json[fp] = 0x20; json[fp + 1] = 0x7b;
  cases.push(['mangled footer', json, /footer/]);
  for (const [what, buf, re] of cases) {
    await assert.rejects(verifySegment(buf), (e: Error) => e instanceof SegmentFormatError && re.test(e.message), what);
  }
  await assert.rejects(encodeSegment('c', [{ offset: 0, ts: 1, data: Buffer.from('ab') }, { offset: 5, ts: 2, data: Buffer.from('cd') }]), /not contiguous/);
});

test('times that are no date are refused: in the footer, a block, a gap or a chunk', async () => {
  // A relay's segment is untrusted: a time of 1e300 once reached `new Date(t).toISOString()`,
  // which throws. Footer times and chunk times must lie between 0 and 9999-12-31.
  for (const ts of [-1, 1e300, MAX_TIME_MS + 1]) {
    await assert.rejects(verifySegment(await encodeSegment('c', [{ offset: 0, ts, data: Buffer.from('ab') }])),
      (e: Error) => e instanceof SegmentFormatError && /not a date up to 9999-12-31|t0|t1/.test(e.message), `chunk time ${ts}`);
  }
  const ok = await verifySegment(await encodeSegment('c', [{ offset: 0, ts: MAX_TIME_MS, data: Buffer.from('ab') }]));
  assert.equal(ok.t1, MAX_TIME_MS);
  await assert.rejects(verifySegment(encodeGapSegment('c', { offset: 0, bytes: 10, t0: 5, t1: 1e300, reason: 'lost' })), SegmentFormatError);
  // A chunk time mangled inside a block whose index is sound (the block is re-compressed).
  const seg = await encodeSegment('c', [{ offset: 0, ts: 5, data: Buffer.from('abc') }], { level: 0 });
  const f = await readFooter(bufferSource(seg));
  const raw = zlib.inflateRawSync(seg.subarray(f.blocks[0].pos, f.blocks[0].pos + f.blocks[0].len));
  raw.writeDoubleLE(Number.NaN, 8);
  const block = zlib.deflateRawSync(raw);
  const footer = { ...f, blocks: [{ ...f.blocks[0], len: block.length }] };
  const json = Buffer.from(JSON.stringify(footer));
  const trailer = Buffer.alloc(12); trailer.writeUInt32LE(json.length, 0); seg.copy(trailer, 4, seg.length - 8);
  const bad = Buffer.concat([seg.subarray(0, f.blocks[0].pos), block, json, trailer]);
  await assert.rejects(verifySegment(bad), /block 0 chunk 0: time NaN is not a date/);
});

test('sliceSegment cuts a segment to [from, to) with every chunk time kept; a gap segment to a smaller gap', async () => {
  const data = randomBytes(50_000);
  const chunks = chunksOf(data, 1000, 1_700_000_000_000, [7, 3000, 1]);
  const seg = await encodeSegment('web01', chunks, { blockBytes: 4096 });
  const cut = (await sliceSegment(seg, 1000 + 2500, 1000 + 40_001))!;
  const f = await verifySegment(cut.body);
  assert.deepEqual([f.start, f.end, cut.footer.start], [3500, 41_001, 3500]);
  const got: Chunk[] = [];
  for (let i = 0; i < f.blocks.length; i++) got.push(...await readBlock(bufferSource(cut.body), f, i));
  assert.ok(Buffer.concat(got.map((c) => c.data)).equals(data.subarray(2500, 40_001)));
  // Each byte keeps the time of the chunk it was read in.
  const timeAt = (cs: Chunk[], off: number) => cs.find((c) => c.offset <= off && off < c.offset + c.data.length)!.ts;
  for (const off of [3500, 3507, 10_000, 41_000]) assert.equal(timeAt(got, off), timeAt(chunks, off), `time at ${off}`);
  assert.equal(await sliceSegment(seg, 0, 1000), undefined, 'nothing of it in range');
  assert.equal((await sliceSegment(seg, 0, 1e9))!.body, seg, 'all of it: the segment itself');
  const gap = (await sliceSegment(encodeGapSegment('web01', { offset: 100, bytes: 50, t0: 5, t1: 6, reason: 'spool full' }), 120, 200))!;
  assert.deepEqual({ ...gap.footer.gap }, { offset: 120, bytes: 30, t0: 5, t1: 6, reason: 'spool full' });
});
