import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimited } from '../../protocol/errors.ts';
import { UploadSlots } from './upload-slots.ts';

test('uploads are bounded per relay and in total; a slot given back is free again, once', () => {
  const s = new UploadSlots(2, 3);
  const a1 = s.take('a'), a2 = s.take('a');
  assert.throws(() => s.take('a'), (e: Error) => e instanceof RateLimited && e.message === 'relay a has 2 segment uploads in progress, its limit (maxUploadsPerRelay 2): retry when one is done');
  s.take('b');
  assert.throws(() => s.take('c'), (e: Error) => e instanceof RateLimited && /^3 segment uploads are in progress, this cloud's limit \(maxUploads 3\)/.test(e.message));
  a1();
  a1(); // twice counts once
  s.take('c');
  assert.throws(() => s.take('a'), RateLimited, 'the total is full again');
  a2();
  s.take('a');
});
