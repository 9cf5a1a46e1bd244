import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogItem } from './log-store.ts';
import { Formatter, grepLog, grepPattern, parseTime } from './replay.ts';

const H = 3600_000;
const T = Date.UTC(2026, 10, 25, 13, 59, 59);
const data = (offset: number, ts: number, s: string): LogItem => ({ kind: 'data', offset, ts, data: Buffer.from(s) });
const run = (f: Formatter, items: LogItem[]) => Buffer.concat([...items.map((i) => f.push(i)), f.end()]).toString();

test('text: MARK lines at interval boundaries, events at their offsets, timestamps per line, markers for lost output', () => {
  const f = new Formatter('text', {
    marks: true, timestamps: true, markMs: H,
    events: [
      { time: T + 500, console: 'c', type: 'session.attach', user: 'alice', offset: 3 }, // on the \r of a \r\n: shown after it
      { time: T + 600, console: 'c', type: 'input', user: 'alice', offset: 3 }, // input is not an event line
      { time: T + 2 * H, console: 'c', type: 'console.down', detail: 'device gone', offset: 20 },
    ],
  });
  const out = run(f, [
    data(0, T, 'one\r\ntw'),
    data(8, T + 1000, 'o\r\n'), // crosses 14:00: a MARK before it
    { kind: 'gap', offset: 11, bytes: 4, t0: T + 2000, t1: T + 3000, reason: 'relay spool full' },
    data(15, T + 4000, 'three'),
  ]);
  assert.equal(out, [
    '[2026-11-25 13:59:59.000Z] one',
    '[2026-11-25 13:59:59.500Z] [-- alice attached --]',
    '[2026-11-25 13:59:59.000Z] tw',
    '[-- MARK -- 2026-11-25 14:00:00.000Z --]',
    '[2026-11-25 14:00:00.000Z] o',
    '[-- cloudcons: 4 bytes of output lost (relay spool full) --]',
    '[2026-11-25 14:00:03.000Z] three',
    '[2026-11-25 15:59:59.000Z] [-- console down (device gone) --]',
    '',
  ].join('\r\n'));
});

test('text and asciicast: names, details and a relay\'s gap reason in markers cannot act on the terminal', () => {
  const evil = '\x1b[2K\x1b[1A\x1b]0;pwned\x07\r\u202e\u200b';
  const shown = '^[[2K^[[1A^[]0;pwned^G^M\\u202e\\u200b';
  const f = new Formatter('text', {
    marks: true,
    events: [
      { time: T, console: 'c', type: 'session.attach', user: `mallory${evil}`, offset: 0 },
      { time: T, console: 'c', type: 'break', user: 'alice', detail: `break 1${evil}`, offset: 0 },
      { time: T, console: 'c', type: 'console.down', detail: evil, offset: 2 },
    ],
  });
  const out = run(f, [data(0, T, 'ok'), { kind: 'gap', offset: 2, bytes: 4, t0: T, t1: T, reason: evil }]);
  assert.equal(out, `[-- mallory${shown} attached --]\r\n[-- alice sent a break 1${shown} --]\r\nok\r\n[-- cloudcons: 4 bytes of output lost (${shown}) --]\r\n[-- console down (${shown}) --]\r\n`);
  const cast = run(new Formatter('asciicast'), [data(0, T, 'ok'), { kind: 'gap', offset: 2, bytes: 4, t0: T, t1: T, reason: evil }]);
  assert.ok(cast.includes(JSON.stringify(`(${shown})`).slice(1, -1)), cast);
});

test('asciicast: header from the first chunk, relative times, UTF-8 split across chunks kept whole', () => {
  const e = Buffer.from('é');
  const out = run(new Formatter('asciicast', { console: 'web01', width: 120 }), [
    { kind: 'data', offset: 0, ts: T, data: Buffer.concat([Buffer.from('a'), e.subarray(0, 1)]) },
    { kind: 'data', offset: 2, ts: T + 1500, data: Buffer.concat([e.subarray(1), Buffer.from('b')]) },
  ]).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out[0], { version: 2, width: 120, height: 24, timestamp: Math.floor(T / 1000), title: 'web01', env: { TERM: 'xterm-256color' } });
  assert.deepEqual(out.slice(1), [[0, 'o', 'a'], [1.5, 'o', 'éb']]);
  assert.equal(JSON.parse(run(new Formatter('asciicast', {}), []).split('\n')[0]).version, 2, 'an empty range is still a valid cast');
});

test('grep: matches across window and chunk boundaries, one hit per line, times of the line start', async () => {
  async function* items() {
    let off = 0;
    for (let i = 0; i < 40_000; i++) {
      const s = `line ${i} ${i % 9999 === 0 ? 'NEEDLE here' : 'hay'}\n`;
      // split each line across two chunks so matches straddle chunk boundaries
      const cut = 3;
      yield data(off, 1000 + i, s.slice(0, cut)); yield data(off + cut, 1000 + i + 0.5, s.slice(cut));
      off += s.length;
    }
  }
  const hits = [];
  for await (const h of grepLog(items(), 'c', grepPattern('needle|NEEDLE here', true))) hits.push(h);
  assert.deepEqual(hits.map((h) => [h.line, h.time]), [[`line 0 NEEDLE here`, 1000], ['line 9999 NEEDLE here', 10999], ['line 19998 NEEDLE here', 20998], ['line 29997 NEEDLE here', 30997], ['line 39996 NEEDLE here', 40996]]);
  assert.throws(() => grepPattern('(', false), /pattern: bad pattern/);
});

test('parseTime: relative, ISO, dates, epoch ms; junk is undefined', () => {
  const now = Date.UTC(2026, 10, 25, 12);
  assert.equal(parseTime('2h', now), now - 2 * H);
  assert.equal(parseTime('90s ago', now), now - 90_000);
  assert.equal(parseTime('2026-11-25T10:00:00Z', now), Date.UTC(2026, 10, 25, 10));
  assert.equal(parseTime('1764000000000', now), 1764000000000);
  assert.equal(parseTime('now', now), now);
  for (const bad of ['yesterday', '2h30', '', '12:00']) assert.equal(parseTime(bad, now), undefined, bad);
});

test('grep: a pattern that backtracks catastrophically in V8 scans in linear time, in slices', async () => {
  // (a*)*b, (x+x+)+y: exponential for a backtracking engine; V8's own linear fallback held a
  // GB-sized memory per 1 MiB scanned. Here: one DFA pass, returning to the event loop between slices.
  for (const [p, i, text] of [['(a*)*b', false, 'a'], ['(x+x+)+y', true, 'X'], ['(a|a)*b', true, 'aA'], ['(.*.*.*.*.*.*.*.*.*.*)*b', false, 'a']] as const) {
    const data = Buffer.from(text.repeat(2_000_000 / text.length));
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    const t0 = performance.now();
    const hits = [];
    for await (const h of grepLog((async function* () { yield { kind: 'data' as const, offset: 0, ts: 1, data }; })(), 'c', grepPattern(p, i))) hits.push(h);
    const ms = performance.now() - t0;
    clearInterval(tick);
    assert.equal(hits.length, 0, p);
    assert.ok(turns > 0, `${p}: the event loop never turned during the scan`);
    assert.ok(ms < 3000, `${p}: ${ms.toFixed(0)} ms over 2 MB`);
  }
});
