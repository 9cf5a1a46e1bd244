import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { encodeGapSegment, encodeSegment, type Chunk } from '../../protocol/segment.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { LogStore } from './log-store.ts';

after(cleanup);

function open(dir = tmpDir('log')) {
  const hot = new FsHotTail(dir, 4096);
  return { dir, hot, log: new LogStore(new FsSegmentStore(dir), hot) };
}
const lines = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `line ${from + i}\n`).join(''));

test('segments + hot tail read as one stream; live resends are de-duplicated; hot files covered by segments go', async () => {
  const { log, hot } = open();
  const a = lines(0, 1000), b = lines(1000, 1000);
  // Live output arrives first (hot tail), in chunks.
  for (let o = 0; o < a.length + b.length; o += 700) {
    const all = Buffer.concat([a, b]);
    await log.append('c', o, 1000 + o, all.subarray(o, o + 700));
  }
  assert.equal((await log.append('c', 0, 5, a.subarray(0, 100))).end, a.length + b.length, 'a resend changes nothing');
  // Then the relay's segment for the first part.
  const chunks: Chunk[] = [];
  for (let o = 0; o < a.length; o += 700) chunks.push({ offset: o, ts: 1000 + o, data: a.subarray(o, Math.min(a.length, o + 700)) });
  const r = await log.putSegment('c', await encodeSegment('c', chunks, { blockBytes: 2048 }));
  assert.ok(r.created);
  assert.equal((await log.putSegment('c', await encodeSegment('c', chunks, { blockBytes: 2048 }))).created, false, 'idempotent re-upload');
  assert.ok((await hot.runs('c'))[0].start > 0, 'hot files under the segment were dropped');
  const all = Buffer.concat([a, b]);
  assert.ok((await log.read('c', 0, all.length)).equals(all));
  assert.ok((await log.read('c', 5000, 20000)).equals(all.subarray(5000, 20000)));
  assert.equal((await log.tail('c', 2)).toString(), 'line 1998\nline 1999\n');
  assert.equal(await log.lineStart('c', 1000, all.length), a.length, 'the last 1000 lines start where segment ends');
  // Times: chunk at offset o arrived at 1000 + o.
  assert.equal(await log.offsetAt('c', 1000 + 7000), 7000);
  assert.equal(await log.offsetAt('c', 1000 + a.length + 1400), Math.ceil((a.length + 1400) / 700) * 700);
  assert.equal(await log.offsetAt('c', 1e15), all.length);
  assert.deepEqual(await log.consoles(), ['c']);
});

test('gaps and pending ranges: readAt skips them, items reports them, conflicts are refused', async () => {
  const { log } = open();
  await log.putSegment('c', await encodeSegment('c', [{ offset: 0, ts: 1, data: Buffer.from('aaaa') }]));
  await log.putSegment('c', encodeGapSegment('c', { offset: 4, bytes: 6, t0: 2, t1: 3, reason: 'spool full' }));
  await log.putSegment('c', await encodeSegment('c', [{ offset: 10, ts: 4, data: Buffer.from('bbbb') }]));
  await log.append('c', 20, 5, Buffer.from('cccc')); // 14-20 still on its way from the relay
  assert.equal(await log.end('c'), 24);
  assert.deepEqual(await log.readAt('c', 2, 100), { offset: 2, data: Buffer.from('aa') });
  assert.deepEqual(await log.readAt('c', 5, 100), { offset: 10, data: Buffer.from('bbbb') });
  assert.deepEqual(await log.readAt('c', 14, 100), { offset: 20, data: Buffer.from('cccc') });
  assert.deepEqual(await log.readAt('c', 24, 100), { offset: 24, data: Buffer.alloc(0) });
  const kinds = [];
  for await (const it of log.items('c', 0, 24)) kinds.push([it.kind, it.offset, it.kind === 'data' ? it.data.toString() : it.bytes]);
  assert.deepEqual(kinds, [['data', 0, 'aaaa'], ['gap', 4, 6], ['data', 10, 'bbbb'], ['pending', 14, 6], ['data', 20, 'cccc']]);
  assert.equal(await log.offsetAt('c', 2.5), 4, 'a time inside a loss finds the gap');
  await assert.rejects(log.putSegment('c', await encodeSegment('c', [{ offset: 12, ts: 9, data: Buffer.from('zzzz') }])), (e: Error & { code?: string }) => e.code === 'CC_ERR_CONFLICT');
  await assert.rejects(log.putSegment('d', await encodeSegment('c', [{ offset: 0, ts: 9, data: Buffer.from('z') }])), /for console c, uploaded to d/);
  await assert.rejects(log.putSegment('c', randomBytes(100)), (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER');
  // The missing range arrives: reads are whole again and the hot tail is trimmed.
  await log.putSegment('c', await encodeSegment('c', [{ offset: 14, ts: 4.5, data: Buffer.from('PPPPPP') }, { offset: 20, ts: 5, data: Buffer.from('cccc') }]));
  assert.equal((await log.read('c', 0, 24)).toString(), 'aaaabbbbPPPPPPcccc');
});

test('a new LogStore over the same data (a restart, or another Lambda) sees everything', async () => {
  const { dir, log, hot } = open();
  await log.putSegment('c', await encodeSegment('c', [{ offset: 0, ts: 1, data: lines(0, 50) }]));
  await log.append('c', lines(0, 50).length, 2, Buffer.from('tail\n'));
  hot.close();
  const again = open(dir).log;
  assert.equal((await again.tail('c', 2)).toString(), 'line 49\ntail\n');
  assert.equal(await again.expire('c', 2), 1);
  assert.equal((await again.tail('c', 5)).toString(), 'tail\n');
});

test('bytes a gap segment drops that already arrived live stay readable; only the rest is lost', async () => {
  const { log, hot } = open();
  await log.append('c', 0, 1, Buffer.from('live-live-')); // 0-10 went live before the relay's spool overflowed
  const r = await log.putSegment('c', encodeGapSegment('c', { offset: 0, bytes: 30, t0: 1, t1: 2, reason: 'spool full' }));
  assert.equal(r.lost, 20);
  await log.putSegment('c', await encodeSegment('c', [{ offset: 30, ts: 3, data: Buffer.from('after') }]));
  const items = [];
  for await (const it of log.items('c', 0, 35)) items.push([it.kind, it.offset, it.kind === 'data' ? it.data.toString() : it.bytes]);
  assert.deepEqual(items, [['data', 0, 'live-live-'], ['gap', 10, 20], ['data', 30, 'after']]);
  // The live bytes were sealed into a data segment by the cloud (the relay has no copy to send),
  // so the hot tail is trimmed past them as past any stored output.
  assert.deepEqual((await log.segmentList('c')).map((s) => [s.start, s.end, s.gap]), [[0, 10, false], [10, 30, true], [30, 35, false]]);
  assert.deepEqual(await hot.runs('c'), []);
});

test('the embedded cloud deletes segments past --retention and keeps newer ones', async () => {
  const { startCloudServer } = await import('../server/node-server.ts');
  const dir = tmpDir('ret');
  const srv = await startCloudServer({ dataDir: dir, log: () => {}, limits: { retentionMs: 60_000, retentionCheckMs: 50 } });
  try {
    const now = Date.now();
    await srv.core.log.putSegment('c', await encodeSegment('c', [{ offset: 0, ts: now - 120_000, data: Buffer.from('old\n') }]));
    await srv.core.log.putSegment('c', await encodeSegment('c', [{ offset: 4, ts: now, data: Buffer.from('new\n') }]));
    const { until } = await import('../../test/helpers.ts');
    await until('old segment deleted', async () => (await srv.core.log.segmentList('c')).length === 1);
    assert.equal((await srv.core.log.read('c', 0, 8)).toString(), 'new\n');
  } finally { await srv.close(); }
});

test('compaction merges a day\'s contiguous segments into one (not across days, gaps or the cut), reads stay byte-exact, and a re-upload of a merged one is "stored"', async () => {
  const { log, dir } = open();
  const segs = new FsSegmentStore(dir);
  const DAY1 = Date.UTC(2026, 11, 1, 22), DAY2 = Date.UTC(2026, 11, 2, 1), TODAY = Date.UTC(2026, 11, 4, 9);
  const bodies: Buffer[] = [];
  const all: Buffer[] = [];
  let at = 0;
  const add = async (t: number, n: number) => {
    const data = lines(at, n);
    const chunks: Chunk[] = [];
    for (let o = 0; o < data.length; o += 500) chunks.push({ offset: at + o, ts: t + o, data: data.subarray(o, o + 500) });
    const body = await encodeSegment('c', chunks, { blockBytes: 1024 });
    bodies.push(body);
    await log.putSegment('c', body);
    all.push(data);
    at += data.length;
  };
  for (let i = 0; i < 5; i++) await add(DAY1 + i * 60_000, 200);   // day 1: five segments
  await log.putSegment('c', encodeGapSegment('c', { offset: at, bytes: 100, t0: DAY1 + 400_000, t1: DAY1 + 400_000, reason: 'spool full' }));
  all.push(Buffer.alloc(0)); at += 100;
  for (let i = 0; i < 3; i++) await add(DAY1 + 500_000 + i * 60_000, 100); // day 1, after the gap: three
  for (let i = 0; i < 4; i++) await add(DAY2 + i * 60_000, 150);   // day 2: four
  await add(TODAY + 1000, 50);                                       // today: left alone
  const before = await log.read('c', 0, at);
  const n0 = (await log.segmentList('c')).length;
  assert.equal(n0, 14);

  const r = await log.compact('c', Date.UTC(2026, 11, 4));
  assert.deepEqual(r, { merged: 12, into: 3, deleted: 12 });
  const after = await log.segmentList('c');
  assert.deepEqual(after.map((s) => [new Date(s.t0).toISOString().slice(0, 10), s.gap]), [['2026-12-01', false], ['2026-12-01', true], ['2026-12-01', false], ['2026-12-02', false], ['2026-12-04', false]]);
  const fresh = new LogStore(new FsSegmentStore(dir), new FsHotTail(dir, 4096));
  assert.ok((await fresh.read('c', 0, at)).equals(before), 'byte-exact after compaction');
  assert.equal(await fresh.offsetAt('c', DAY2 + 60_000), Buffer.concat(all.slice(0, 10)).length + 100 - 0, 'times still index into the merged segment');
  assert.equal((await fresh.tail('c', 1)).toString(), all.at(-1)!.toString().split('\n').at(-2) + '\n');
  const keys = (await segs.list('logs/c/')).map((o) => o.key);
  assert.equal(keys.filter((k) => k.endsWith('.seg')).length, 5);
  assert.ok(keys.some((k) => k.endsWith('.seg.tri')), 'merged segments get a grep index');
  const hits: string[] = [];
  const needle = all[6].toString().split('\n')[7] + '\n'; // a line of day 1's merged run after the gap
  for await (const it of fresh.items('c', 0, at, { literals: [Buffer.from(needle)] })) if (it.kind === 'data' && it.data.includes(needle)) hits.push('hit');
  assert.equal(hits.length, 1, 'grep through the merged index finds the line');

  // A relay re-uploading a merged segment (it missed the answer) is told it is stored.
  assert.equal((await fresh.putSegment('c', bodies[1])).created, false);
  // A copy left by a crash between storing the merged segment and deleting the small ones (or a
  // presigned re-upload): hidden from readers, deleted by the next run. Nothing else to merge.
  await segs.put((await fresh.segmentList('c'))[0].key.replace(/\/[^/]+$/, '/') + 'x', Buffer.alloc(0)); // not a segment key: ignored
  const { segmentKey, readFooter, bufferSource } = await import('../../protocol/segment.ts');
  await segs.put(segmentKey(await readFooter(bufferSource(bodies[2]))), bodies[2]);
  const again = new LogStore(new FsSegmentStore(dir), new FsHotTail(dir, 4096));
  assert.ok((await again.read('c', 0, at)).equals(before), 'the leftover is not read twice');
  assert.deepEqual(await again.compact('c', Date.UTC(2026, 11, 4)), { merged: 0, into: 0, deleted: 1 });
  assert.equal((await segs.list('logs/c/')).filter((o) => o.key.endsWith('.seg')).length, 5);
});

test('compaction splits a day at maxBlocks (the footer limit) and maxBytes; a day already merged is left alone', async () => {
  const { log, dir } = open();
  const day = Date.UTC(2026, 10, 20, 3);
  let at = 0;
  for (let i = 0; i < 7; i++) {
    const data = lines(at, 40);
    await log.putSegment('c', await encodeSegment('c', [{ offset: at, ts: day + i * 1000, data }]));
    at += data.length;
  }
  assert.deepEqual(await log.compact('c', Date.UTC(2026, 10, 21), { maxBlocks: 3 }), { merged: 6, into: 2, deleted: 6 });
  assert.equal((await log.segmentList('c')).length, 3, '3 + 3 merged, the 7th alone');
  const fresh = new LogStore(new FsSegmentStore(dir), new FsHotTail(dir, 4096));
  assert.equal((await fresh.read('c', 0, at)).length, at);
  assert.deepEqual(await fresh.compact('c', Date.UTC(2026, 10, 21), { maxBlocks: 3 }), { merged: 0, into: 0, deleted: 0 }, 'nothing more within the limit');
  const size = (await fresh.segmentList('c')).reduce((n, s) => Math.max(n, s.size), 0);
  assert.deepEqual(await fresh.compact('c', Date.UTC(2026, 10, 21), { maxBytes: size * 2 + 1 }), { merged: 2, into: 1, deleted: 2 }, 'without the block limit: the two biggest that fit');
});
