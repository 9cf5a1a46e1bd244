// A gap segment (bytes a relay could not keep: its spool overflowed or its disk was full) over
// output the cloud already has: the data wins. Stored segments in its range stay, output that
// reached the cloud live is sealed into data segments by the cloud (the relay has no copy to
// send), and only the rest is recorded lost; the hot tail is then trimmed as usual. Sent again,
// the gap changes nothing. Through the cloud and as a presigned object committed. Real fs stores.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { bufferSource, encodeGapSegment, encodeSegment, readFooter, segmentKey } from '../../protocol/segment.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { LogStore, OutputConflict } from './log-store.ts';

after(cleanup);

const text = (n: number, c: string) => Buffer.from(c.repeat(n));

for (const via of ['put', 'commit'] as const) {
  test(`${via === 'put' ? 'through the cloud' : 'presigned, then committed'}: a gap over a stored segment and live output keeps both; only the rest is lost; idempotent`, async () => {
    const dir = tmpDir('gaps');
    const segs = new FsSegmentStore(dir), hot = new FsHotTail(dir, 4096);
    const log = new LogStore(segs, hot);
    const store = async (body: Buffer) => {
      if (via === 'put') return log.putSegment('c', body);
      const key = segmentKey(await readFooter(bufferSource(body)));
      await segs.put(key, body);
      return log.commitSegment('c', key);
    };
    const seg = text(100, 'S'), live = text(50, 'L');
    await store(await encodeSegment('c', [{ offset: 0, ts: 1000, data: seg }]));
    await log.append('c', 100, 1100, live); // reached the cloud live; the relay's spool was full
    const gap = encodeGapSegment('c', { offset: 50, bytes: 250, t0: 1050, t1: 1300, reason: 'relay spool disk full' });
    const r = await store(gap);
    assert.equal(r.created, true);
    assert.equal(r.lost, 150);
    assert.equal(r.lostAt, 150);
    assert.deepEqual((await log.segmentList('c')).map((s) => [s.start, s.end, s.gap]), [[0, 100, false], [100, 150, false], [150, 300, true]]);
    const items = [];
    for await (const it of log.items('c', 0, 300)) items.push([it.kind, it.offset, it.kind === 'data' ? it.data.toString() : it.bytes]);
    assert.deepEqual(items, [['data', 0, seg.toString()], ['data', 100, live.toString()], ['gap', 150, 150]]);
    assert.deepEqual(await hot.runs('c'), [], 'the live bytes are in a segment now: the hot tail is trimmed');
    const keys = (await segs.list('logs/c/')).map((o) => o.key);
    assert.ok(!keys.includes(segmentKey(await readFooter(bufferSource(gap)))), `the gap as sent is not stored: ${keys}`);
    // Sent again (the relay missed the answer): nothing changes.
    const again = await store(gap);
    assert.equal(again.created, false);
    assert.equal(again.lost, 0);
    assert.equal((await log.segmentList('c')).length, 3);
    // Data over a recorded loss is a conflict the relay is told of (same: false, the gap named).
    const late = await encodeSegment('c', [{ offset: 200, ts: 1400, data: text(200, 'D') }]);
    const o = await store(late).then(() => undefined, (e: OutputConflict) => e.overlap);
    assert.deepEqual(o, { start: 200, end: 400, storedEnd: 300, stored: [{ start: 200, end: 300, gap: true }], same: false, at: 200 });
    // And a gap where nothing is stored is stored as sent.
    const clean = encodeGapSegment('c', { offset: 300, bytes: 20, t0: 1400, t1: 1401, reason: 'relay spool disk full' });
    assert.equal((await store(clean)).lost, 20);
    const cleanKey = segmentKey(await readFooter(bufferSource(clean)));
    assert.ok((await segs.list('logs/c/')).some((x) => x.key === cleanKey));
  });
}

