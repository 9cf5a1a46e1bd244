import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputBuffer } from './output-buffer.ts';

test('offsets continue from the base the cloud announces', () => {
  const b = new OutputBuffer(1024);
  b.push(Buffer.from('hello'), 1);
  b.base = 1000;
  assert.equal(b.startAbs, 1000);
  assert.equal(b.endAbs, 1005);
  assert.deepEqual(b.read(1002, 100), { ts: 1, data: Buffer.from('llo') });
});

test('read joins consecutive chunks up to max and keeps the first timestamp', () => {
  const b = new OutputBuffer(1024);
  b.base = 0;
  b.push(Buffer.from('abc'), 1);
  b.push(Buffer.from('def'), 2);
  b.push(Buffer.from('ghi'), 3);
  assert.deepEqual(b.read(1, 5), { ts: 1, data: Buffer.from('bcdef') });
  assert.deepEqual(b.read(4, 100), { ts: 2, data: Buffer.from('efghi') });
  assert.equal(b.read(9, 10), undefined);
});

test('ack forgets whole chunks below the stored offset only', () => {
  const b = new OutputBuffer(1024);
  b.base = 10;
  b.push(Buffer.from('abc'), 1);
  b.push(Buffer.from('def'), 2);
  b.ack(14); // inside the second chunk: the first goes, the second stays
  assert.equal(b.startAbs, 13);
  assert.deepEqual(b.read(14, 10)?.data, Buffer.from('ef'));
  assert.equal(b.read(12, 10), undefined, 'acknowledged bytes are gone');
});

test('a full buffer drops the oldest bytes and counts them, so the sender can report a gap', () => {
  const b = new OutputBuffer(10);
  b.base = 0;
  for (let i = 0; i < 5; i++) b.push(Buffer.from('abcd'), i);
  assert.equal(b.endAbs, 20);
  assert.ok(b.endAbs - b.startAbs <= 10);
  assert.equal(b.dropped, b.startAbs);
  assert.equal(Buffer.concat([b.read(b.startAbs, 100)!.data]).length, b.endAbs - b.startAbs);
});

test('many small chunks stay cheap: the held array is compacted', () => {
  const b = new OutputBuffer(1 << 20);
  b.base = 0;
  for (let i = 0; i < 100_000; i++) { b.push(Buffer.from('x'), i); b.ack(i); }
  assert.equal(b.endAbs - b.startAbs, 1);
  assert.equal((b as unknown as { chunks: unknown[] }).chunks.length < 3000, true);
});
