import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunks, closeReason, decode, encode, PROTOCOL_LIMITS } from './codec.ts';
import { clientToCloud, cloudToRelay, MAX_OUT_OFFSET, relayToCloud } from './messages.ts';
import { MAX_STREAM_OFFSET } from './bounds.ts';

test('round-trips a valid output message', () => {
  const d = Buffer.from([0, 1, 255, 10]).toString('base64');
  const r = decode(relayToCloud, encode({ t: 'out', c: 'web01', o: 5, ts: 1, d }));
  assert.deepEqual(r, { ok: true, msg: { v: 1, t: 'out', c: 'web01', o: 5, ts: 1, d } });
});

test('rejects malformed, truncated, binary, oversized and unknown frames with a reason', () => {
  const good = encode({ t: 'in', d: 'aGk=' });
  const cases: [unknown, RegExp][] = [
    [Buffer.from(good), /binary frames are not accepted/],
    ['not json', /not valid JSON/],
    [good.slice(0, good.length - 3), /not valid JSON/],
    ['[1,2]', /must be a JSON object/],
    ['null', /must be a JSON object/],
    [JSON.stringify({ v: 2, t: 'in', d: '' }), /unsupported protocol version 2/],
    [JSON.stringify({ t: 'in', d: '' }), /unsupported protocol version undefined/],
    [JSON.stringify({ v: 1, t: 'launch-missiles' }), /bad 'launch-missiles' message/],
    [JSON.stringify({ v: 1, t: 'in', d: 'not base64!' }), /d: must be base64/],
    [JSON.stringify({ v: 1, t: 'attach', c: '../etc', mode: 'rw' }), /c: console names/],
    [JSON.stringify({ v: 1, t: 'attach', c: 'x', mode: 'admin' }), /mode/],
    [JSON.stringify({ v: 1, t: 'resize', cols: -1, rows: 1e9 }), /cols/],
    ['x'.repeat(PROTOCOL_LIMITS.maxFrameBytes + 1), /exceeds the limit of 32768/],
  ];
  for (const [frame, re] of cases) {
    const r = decode(clientToCloud, frame);
    assert.equal(r.ok, false, `accepted ${String(frame).slice(0, 60)}`);
    if (!r.ok) assert.match(r.message, re);
  }
});

test('a frame exactly at the limit is accepted, one byte more is not', () => {
  const base = encode({ t: 'in', d: '' });
  const pad = PROTOCOL_LIMITS.maxFrameBytes - base.length;
  const atLimit = encode({ t: 'in', d: 'A'.repeat(pad - (pad % 4)) });
  assert.ok(decode(clientToCloud, atLimit).ok);
  assert.equal(decode(clientToCloud, atLimit, atLimit.length - 1).ok, false);
});

test('a full raw chunk fits in one frame', () => {
  const raw = Buffer.alloc(PROTOCOL_LIMITS.maxRawChunk, 0xff);
  const frame = encode({ t: 'out', c: 'a'.repeat(128), o: MAX_OUT_OFFSET, ts: Date.now(), d: raw.toString('base64') });
  assert.ok(Buffer.byteLength(frame) <= PROTOCOL_LIMITS.maxFrameBytes);
  assert.ok(decode(relayToCloud, frame).ok);
  assert.equal(decode(relayToCloud, frame.replace(`"o":${MAX_OUT_OFFSET}`, `"o":${MAX_OUT_OFFSET + 1}`)).ok, false, 'an end past the stream bound');
});

test('chunks splits at the payload limit without losing bytes', () => {
  const buf = Buffer.alloc(50_000, 7);
  const parts = [...chunks(buf)];
  assert.deepEqual(parts.map((p) => p.length), [22528, 22528, 4944]);
  assert.deepEqual(Buffer.concat(parts), buf);
});

test('encode gives the same JSON as JSON.stringify, small or large payload', () => {
  for (const d of ['', 'eA==', Buffer.alloc(22 * 1024, 0xab).toString('base64')]) {
    const msg = { t: 'out', c: 'web01', o: 7, ts: 1.5, d };
    assert.deepEqual(JSON.parse(encode(msg)), { v: 1, ...msg });
    assert.equal(encode(msg), JSON.stringify({ v: 1, ...msg }));
  }
});

test('closeReason keeps a reason within 123 bytes of UTF-8 and never splits a character', () => {
  assert.equal(closeReason('short'), 'short');
  assert.equal(closeReason('x'.repeat(123)), 'x'.repeat(123));
  const ascii = closeReason('x'.repeat(124));
  assert.equal(ascii, `${'x'.repeat(120)}...`);
  for (const ch of ['é', '€', '😀']) {
    for (let pad = 0; pad < 4; pad++) {
      const r = closeReason('a'.repeat(pad) + ch.repeat(100));
      assert.ok(Buffer.byteLength(r) <= 123, `${Buffer.byteLength(r)} bytes`);
      assert.ok(r.endsWith('...'));
      assert.equal(Buffer.from(r).toString(), r, 'valid UTF-8: no half character');
      assert.ok(!r.includes('\ufffd'));
    }
  }
});

const EVIL = '\x1b[2K\x1b[1A\x1b]0;pwned\x07\r\u202e\u200b';
const SHOWN = '^[[2K^[[1A^[]0;pwned^G^M\\u202e\\u200b';

test('a relay\'s reasons, details, break names and console type arrive with control, bidi and zero-width characters shown escaped', () => {
  const info = { name: 'c1', type: `serial${EVIL}`, state: 'down', since: 1, reason: `gone${EVIL}\nline 2`, breaks: [{ id: '1', text: `reboot${EVIL}` }] };
  const hello = decode(relayToCloud, encode({ t: 'hello', relay: 'r1', boot: 'b', consoles: [info] }));
  assert.ok(hello.ok && hello.msg.t === 'hello');
  const c = hello.msg.consoles[0]!;
  assert.equal(c.type, `serial${SHOWN}`);
  assert.equal(c.reason, `gone${SHOWN}^Jline 2`);
  assert.equal(c.breaks![0]!.text, `reboot${SHOWN}`);
  const rej = decode(relayToCloud, encode({ t: 'rejected', c: 'c1', fence: 1, session: 's', what: 'in', reason: EVIL }));
  assert.ok(rej.ok && rej.msg.t === 'rejected' && rej.msg.reason === SHOWN);
  const ev = decode(relayToCloud, encode({ t: 'event', c: 'c1', what: 'idle', detail: EVIL }));
  assert.ok(ev.ok && ev.msg.t === 'event' && ev.msg.detail === SHOWN);
});

test('an attach whose client name is not printable ASCII is refused; cli, web and replay --follow are fine', () => {
  for (const client of ['cli', 'web', 'replay --follow']) assert.ok(decode(clientToCloud, encode({ t: 'attach', c: 'c1', mode: 'spy', client })).ok, client);
  for (const client of [EVIL, 'cli\r', 'cli\u202e', 'c\u200bli', 'caf\u00e9']) {
    const r = decode(clientToCloud, encode({ t: 'attach', c: 'c1', mode: 'spy', client }));
    assert.ok(!r.ok && /client: a client name is printable ASCII/.test(r.message), JSON.stringify(client));
  }
});

test('a welcome may not move a stream past the highest offset there is (2^50): a relay continuing there would soon count offsets past 2^53', () => {
  const welcome = (end: number) => decode(cloudToRelay, JSON.stringify({ v: 1, t: 'welcome', ends: { web01: end } }));
  assert.ok(welcome(MAX_STREAM_OFFSET).ok);
  for (const end of [MAX_STREAM_OFFSET + 1, 2 ** 53 - 1]) assert.equal(welcome(end).ok, false, String(end));
});
