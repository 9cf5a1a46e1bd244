import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from './codec.ts';
import { MAX_FENCE, MAX_TIME_MS } from './bounds.ts';
import { cloudToRelay, relayToCloud } from './messages.ts';

const out = (ts: unknown) => JSON.stringify({ v: 1, t: 'out', c: 'web01', o: 0, ts, d: 'aGk=' });
const info = (over: Record<string, unknown>) => ({ name: 'web01', type: 'serial', state: 'up', since: 1, ...over });
const hello = (over: Record<string, unknown>) => JSON.stringify({ v: 1, t: 'hello', relay: 'edge1', boot: 'b', consoles: [info(over)] });

test('live output times are dates up to 9999-12-31, as in segments: anything else is a bad frame naming the value', () => {
  for (const ts of [0, 1, Date.now(), MAX_TIME_MS]) assert.ok(decode(relayToCloud, out(ts)).ok, `ts ${ts}`);
  for (const [ts, shown] of [[1e300, '1e+300'], [MAX_TIME_MS + 1, String(MAX_TIME_MS + 1)], [-1, '-1'], ['1', '"1"'], [null, 'null']] as const) {
    const r = decode(relayToCloud, out(ts));
    assert.equal(r.ok, false, `accepted ts ${ts}`);
    if (!r.ok) {
      assert.equal(r.code, 'CC_ERR_BAD_FRAME');
      assert.match(r.message, /^bad 'out' message: ts: must be a time in ms since the epoch from 0 to 253402300799999 \(9999-12-31\), got /);
      assert.ok(r.message.endsWith(`got ${shown}`), r.message);
    }
  }
});

test('a console\'s `since` follows the same rule (hello and console messages)', () => {
  assert.ok(decode(relayToCloud, hello({ since: MAX_TIME_MS })).ok);
  for (const frame of [hello({ since: 1e300 }), JSON.stringify({ v: 1, t: 'console', info: info({ since: -5 }) })]) {
    const r = decode(relayToCloud, frame);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.message, /since: must be a time in ms since the epoch/);
  }
});

test('fences are whole numbers up to 2^48, far below 2^53 where +1 stops counting', () => {
  assert.equal(MAX_FENCE, 2 ** 48);
  assert.ok(decode(relayToCloud, hello({ fence: MAX_FENCE })).ok);
  for (const fence of [MAX_FENCE + 1, Number.MAX_SAFE_INTEGER, 1.5, -1]) {
    const r = decode(relayToCloud, hello({ fence }));
    assert.equal(r.ok, false, `accepted fence ${fence}`);
    if (!r.ok) assert.match(r.message, /consoles\.0\.fence: must be a whole number from 0 to 281474976710656 \(2\^48\), got /);
  }
  const rejected = { t: 'rejected', c: 'web01', session: 's', what: 'in', reason: 'x' };
  assert.equal(decode(relayToCloud, encode({ ...rejected, fence: Number.MAX_SAFE_INTEGER })).ok, false);
  assert.equal(decode(cloudToRelay, encode({ t: 'fence', c: 'web01', fence: MAX_FENCE + 1 })).ok, false);
});
