import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimited } from '../../protocol/errors.ts';
import { QuerySlots, UploadSlots } from './slots.ts';

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

test('queries are bounded per user and in the process, each refusal naming its limit; running() counts them', () => {
  const s = new QuerySlots(1, 2);
  const a = s.take('alice');
  assert.throws(() => s.take('alice'), (e: Error) => e instanceof RateLimited && e.message === 'user alice has 1 replay, export, grep or history requests running, the limit (maxQueriesPerUser 1): wait for one to end');
  s.take('bob');
  assert.throws(() => s.take('carol'), (e: Error) => e instanceof RateLimited && e.message === 'this cloud has 2 replay, export, grep or history requests running, its limit (maxQueries 2): try again in a moment');
  assert.deepEqual([s.running(), s.running('alice'), s.running('carol')], [2, 1, 0]);
  a();
  assert.deepEqual([s.running(), s.running('alice')], [1, 0]);
});
