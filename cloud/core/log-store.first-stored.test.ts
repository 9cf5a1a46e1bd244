// Stored output stays what was stored first, byte for byte, whatever a relay uploads later: a
// segment over bytes the hot tail (or another segment) holds must have the same bytes, else it is
// refused and not one byte of it is read back; the live bytes it would have changed are sealed
// into a segment by the cloud. A segment over stored segments is refused with what is stored
// (the relay sends the rest). On the embedded adapters (segment PUT through the cloud) and on the
// AWS ones (DynamoDB hot tail, S3 segments committed after a presigned PUT).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { DynamoHotTail } from '../adapters/aws/dynamo-hot-tail.ts';
import { S3SegmentStore } from '../adapters/aws/s3-segment-store.ts';
import { createHash } from 'node:crypto';
import { encodeSegment, parseSegmentKey, readFooter, bufferSource, segmentKey, sliceSegment, type Chunk } from '../../protocol/segment.ts';
import { closeAwsPeers, freshStateTable, startS3rver } from '../../test/aws-peers.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { LogStore, OutputConflict } from './log-store.ts';
import type { HotTail, SegmentStore } from './ports.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

interface Variant {
  name: string;
  open(): Promise<{ segs: SegmentStore; hot: HotTail }>;
  /** How the relay's segment gets in: PUT through the cloud, or put in the store and committed. */
  store(log: LogStore, segs: SegmentStore, body: Buffer): Promise<unknown>;
}

const variants: Variant[] = [
  {
    name: 'fs (segment PUT through the cloud)',
    async open() { const dir = tmpDir('first'); return { segs: new FsSegmentStore(dir), hot: new FsHotTail(dir, 4096) }; },
    store: (log, _segs, body) => log.putSegment('c', body),
  },
  {
    name: 'DynamoDB hot tail + S3 (presigned PUT, then commit)',
    async open() {
      const { client, table } = await freshStateTable();
      const s3 = await startS3rver(['segs']);
      return { segs: new S3SegmentStore({ client: s3.client, bucket: 'segs' }), hot: new DynamoHotTail(client, table) };
    },
    async store(log, segs, body) {
      const key = segmentKey(await readFooter(bufferSource(body)));
      await segs.put(key, body); // what the relay's presigned PUT does
      return log.commitSegment('c', key);
    },
  },
];

const seg = (offset: number, text: string, ts = 1000) => encodeSegment('c', [{ offset, ts, data: Buffer.from(text) }]);
const conflict = (re: RegExp) => (e: unknown) => e instanceof OutputConflict && e.code === 'CC_ERR_CONFLICT' && re.test(e.message);

for (const v of variants) {
  test(`${v.name}: a segment with other bytes than those stored live is refused; what was stored stays; the same bytes are taken`, async () => {
    const { segs, hot } = await v.open();
    const log = new LogStore(segs, hot);
    await log.append('c', 0, 1000, Buffer.from('AAAAYY'));
    const forged = await seg(0, 'ZZZZZZ');
    await assert.rejects(v.store(log, segs, forged), conflict(/^segment 0-6 of c differs from the output stored live at 0-6 \(first at offset 0\): the output stored first is kept$/));
    assert.equal((await log.read('c', 0, 6)).toString(), 'AAAAYY');
    // Nothing of the forged segment is left: the one segment stored is the live bytes, sealed by the cloud.
    const kept = (await segs.list('logs/c/')).filter((o) => o.key.endsWith('.seg'));
    assert.equal(kept.length, 1);
    assert.equal((await readFooter(bufferSource(await segs.get(kept[0].key)))).sha256, createHash('sha256').update('AAAAYY').digest('hex'));
    // Same bytes, later bytes the live path never had: the 409 says what is stored, and the rest is taken.
    const later = await encodeSegment('c', [{ offset: 0, ts: 1000, data: Buffer.from('AAAAYY') }, { offset: 6, ts: 1001, data: Buffer.from('tail') }]);
    const o = await v.store(log, segs, later).then(() => undefined, (e: OutputConflict) => e.overlap);
    assert.deepEqual(o, { start: 0, end: 10, storedEnd: 6, stored: [{ start: 0, end: 6 }], same: true });
    await v.store(log, segs, (await sliceSegment(later, 6, 10))!.body);
    assert.equal((await log.read('c', 0, 10)).toString(), 'AAAAYYtail');
    assert.equal((await log.segmentList('c')).length, 2);
  });

  test(`${v.name}: a difference after the first byte is found and named; a segment over part of the live bytes is checked on that part`, async () => {
    const { segs, hot } = await v.open();
    const log = new LogStore(segs, hot);
    await log.append('c', 0, 1000, Buffer.from('login: root\r\n'));
    await assert.rejects(v.store(log, segs, await seg(0, 'login: evil\r\nPassword: ')), (e) => conflict(/differs from the output stored live at 0-13 \(first at offset 7\)/)(e)
      && (e as OutputConflict).overlap?.same === false && (e as OutputConflict).overlap?.at === 7);
    const honest = await seg(0, 'login: root\r\nPassword: ');
    await assert.rejects(v.store(log, segs, honest), conflict(/overlaps stored output with the same bytes at 0-13: send only the parts of it outside 0-13$/));
    await v.store(log, segs, (await sliceSegment(honest, 13, 23))!.body);
    assert.equal((await log.read('c', 0, 100)).toString(), 'login: root\r\nPassword: ');
  });

  test(`${v.name}: a segment already stored is not replaced by another with the same offsets`, async () => {
    const { segs, hot } = await v.open();
    const log = new LogStore(segs, hot);
    await v.store(log, segs, await seg(0, 'AAAAYY', 5));
    const other = await seg(0, 'ZZZZZZ', 5); // the same key: offsets and times
    assert.equal(parseSegmentKey(segmentKey(await readFooter(bufferSource(other))))?.start, 0);
    if (v.name.startsWith('fs')) {
      await assert.rejects(v.store(log, segs, other), conflict(/is not the segment already stored under logs\/c\//));
    } else {
      // S3 creates a key once: the relay's PUT changes nothing, and the commit finds the first one.
      await segs.put(segmentKey(await readFooter(bufferSource(other))), other).catch(() => undefined);
    }
    assert.equal((await log.read('c', 0, 6)).toString(), 'AAAAYY');
    await assert.rejects(v.store(log, segs, await seg(2, 'QQ', 6)), conflict(/^segment 2-4 of c differs from the stored segment 0-6 \(first at offset 2\)/));
    await assert.rejects(v.store(log, segs, await seg(4, 'YYxx', 6)), (e) => conflict(/^segment 4-8 of c overlaps stored output with the same bytes at 4-6/)(e)
      && JSON.stringify((e as OutputConflict).overlap) === JSON.stringify({ start: 4, end: 8, storedEnd: 6, stored: [{ start: 4, end: 6 }], same: true }));
    await assert.rejects(v.store(log, segs, await seg(4, 'Yzxx', 6)), (e) => conflict(/^segment 4-8 of c differs from the output stored at 4-6 \(first at offset 5\)/)(e)
      && (e as OutputConflict).overlap?.same === false);
    assert.equal((await log.read('c', 0, 100)).toString(), 'AAAAYY');
  });
}

test('fs: live output that arrives while a segment is being stored is compared too: the segment is taken back', async () => {
  const dir = tmpDir('race');
  const inner = new FsSegmentStore(dir);
  let during: (() => Promise<void>) | undefined;
  const segs: SegmentStore = Object.assign(Object.create(inner) as SegmentStore, {
    async put(key: string, body: Buffer) { const r = await inner.put(key, body); await during?.(); during = undefined; return r; },
  });
  const log = new LogStore(segs, new FsHotTail(dir, 4096));
  during = async () => { await log.append('c', 0, 1000, Buffer.from('shown live')); };
  const chunks: Chunk[] = [{ offset: 0, ts: 1000, data: Buffer.from('stored later') }];
  await assert.rejects(log.putSegment('c', await encodeSegment('c', chunks)), conflict(/differs from the output stored live at 0-10/));
  assert.equal((await log.read('c', 0, 100)).toString(), 'shown live');
  assert.deepEqual(await inner.list('logs/c/'), []);
});
