import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadParameter } from '../protocol/errors.ts';
import { EscapeParser, HELP_TEXT, displayEscape, parseEscapeSpec, type EscapeEvent } from './escape.ts';

/** Events with adjacent data merged and buffers shown as latin1 strings, for deepEqual. */
type Norm = { data: string } | { cmd: unknown };
function normalize(events: EscapeEvent[]): Norm[] {
  const out: Norm[] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (e.type === 'data') {
      assert.ok(e.data.length > 0, 'empty data event');
      if (last && 'data' in last) last.data += e.data.toString('latin1');
      else out.push({ data: e.data.toString('latin1') });
    } else out.push({ cmd: e.cmd });
  }
  return out;
}
function run(chunks: Buffer[], escape?: Buffer): Norm[] {
  const p = new EscapeParser(escape);
  return normalize(chunks.flatMap((c) => p.push(c)));
}
const b = (s: string) => Buffer.from(s, 'latin1');
const d = (s: string): Norm => ({ data: s });
const c = (cmd: unknown): Norm => ({ cmd });

const E = '\x05';
const fixtures: Array<{ name: string; input: Buffer; want: Norm[]; escape?: Buffer }> = [
  { name: 'plain data', input: b('hello\r\n'), want: [d('hello\r\n')] },
  { name: 'disconnect with .', input: b(`ls${E}c.`), want: [d('ls'), c({ kind: 'disconnect' })] },
  { name: 'disconnect with ^D', input: b(`${E}c\x04`), want: [c({ kind: 'disconnect' })] },
  { name: 'disconnect with ^C', input: b(`${E}c\x03x`), want: [c({ kind: 'disconnect' }), d('x')] },
  { name: 'attach force spy who', input: b(`${E}ca${E}cf${E}cs${E}cw`), want: [c({ kind: 'attach' }), c({ kind: 'force' }), c({ kind: 'spy' }), c({ kind: 'who' })] },
  { name: 'replay and playback', input: b(`${E}cr1${E}cp2${E}c\x12`), want: [c({ kind: 'replay', lines: 20 }), d('1'), c({ kind: 'replay', lines: 60 }), d('2'), c({ kind: 'replay', lines: 1 })] },
  { name: 'breaks', input: b(`${E}cl0${E}cl9${E}clz${E}cl?`), want: [c({ kind: 'break', id: '0' }), c({ kind: 'break', id: '9' }), c({ kind: 'break', id: 'z' }), c({ kind: 'listBreaks' })] },
  { name: 'bad break key aborts', input: b(`${E}clZx`), want: [c({ kind: 'aborted', char: 'Z' }), d('x')] },
  { name: 'help', input: b(`${E}c?${E}ch`), want: [c({ kind: 'help' }), c({ kind: 'help' })] },
  { name: 'space and CR abort', input: b(`${E}c ${E}c\r${E}c\n.`), want: [c({ kind: 'ignored' }), c({ kind: 'ignored' }), c({ kind: 'ignored' }), d('.')] },
  { name: 'unknown command', input: b(`${E}cQok`), want: [c({ kind: 'unknown', char: 'Q' }), d('ok')] },
  { name: 'lone ^E passes through', input: b(`a${E}xb`), want: [d(`a${E}xb`)] },
  { name: '^E then another first byte', input: b(`${E}${E}c.`), want: [d(E), c({ kind: 'disconnect' })] },
  { name: 'three ^E then data', input: b(`${E}${E}${E}z`), want: [d(`${E}${E}${E}z`)] },
  { name: 'escape second byte alone is data', input: b('c.c'), want: [d('c.c')] },
  { name: 'UTF-8 key is one unknown char', input: Buffer.concat([b(`${E}c`), Buffer.from('é', 'utf8'), b('x')]), want: [c({ kind: 'unknown', char: 'é' }), d('x')] },
  { name: '4-byte UTF-8 key', input: Buffer.concat([b(`${E}c`), Buffer.from('😀', 'utf8'), b('y')]), want: [c({ kind: 'unknown', char: '😀' }), d('y')] },
  { name: 'broken UTF-8 key', input: b(`${E}c\xc3x`), want: [c({ kind: 'unknown', char: '\xc3' }), d('x')] },
  { name: 'broken UTF-8 key before an escape', input: b(`${E}c\xe2\x82${E}c.`), want: [c({ kind: 'unknown', char: '\xe2\x82' }), c({ kind: 'disconnect' })] },
  { name: 'lone continuation byte key', input: b(`${E}c\x80z`), want: [c({ kind: 'unknown', char: '\x80' }), d('z')] },
  { name: 'custom escape ^]q', escape: Buffer.from([0x1d, 0x71]), input: b(`\x05c.\x1dq.`), want: [d('\x05c.'), c({ kind: 'disconnect' })] },
  { name: 'escape with equal bytes', escape: Buffer.from([0x1d, 0x1d]), input: b(`a\x1d\x1d.\x1dx`), want: [d('a'), c({ kind: 'disconnect' }), d('\x1dx')] },
];

for (const f of fixtures) {
  test(`escape: ${f.name} (whole, every split, every double split, byte by byte)`, () => {
    assert.deepEqual(run([f.input], f.escape), f.want);
    const n = f.input.length;
    for (let i = 0; i <= n; i++) {
      assert.deepEqual(run([f.input.subarray(0, i), f.input.subarray(i)], f.escape), f.want, `split at ${i}`);
      for (let j = i; j <= n; j++) {
        const parts = [f.input.subarray(0, i), f.input.subarray(i, j), f.input.subarray(j)];
        assert.deepEqual(run(parts, f.escape), f.want, `split at ${i},${j}`);
      }
    }
    assert.deepEqual(run([...f.input].map((x) => Buffer.from([x])), f.escape), f.want, 'byte by byte');
  });
}

test('escape: ordinary bytes are emitted promptly, only the escape is held', () => {
  const p = new EscapeParser();
  assert.deepEqual(normalize(p.push(b(`abc${E}`))), [d('abc')]);
  assert.equal(p.pending, true);
  assert.deepEqual(normalize(p.push(b('x'))), [d(`${E}x`)]);
  assert.equal(p.pending, false);
  assert.deepEqual(normalize(p.push(b(`${E}c`))), []);
  assert.deepEqual(normalize(p.push(b('l'))), []);
  assert.deepEqual(normalize(p.push(b('3rest'))), [c({ kind: 'break', id: '3' }), d('rest')]);
});

test('escape: data buffers do not alias the pushed chunk', () => {
  const chunk = b('abc');
  const [ev] = new EscapeParser().push(chunk);
  chunk.fill(0x21);
  assert.deepEqual(ev, { type: 'data', data: b('abc') });
});

test('escape: constructor rejects an escape that is not two bytes', () => {
  assert.throws(() => new EscapeParser(Buffer.from([5])), BadParameter);
});

test('parseEscapeSpec: notations', () => {
  assert.deepEqual([...parseEscapeSpec('^Ec')], [0x05, 0x63]);
  assert.deepEqual([...parseEscapeSpec('^ec')], [0x05, 0x63]);
  assert.deepEqual([...parseEscapeSpec('^]q')], [0x1d, 0x71]);
  assert.deepEqual([...parseEscapeSpec('\\035q')], [0x1d, 0x71]);
  assert.deepEqual([...parseEscapeSpec('\\005\\143')], [0x05, 0x63]);
  assert.deepEqual([...parseEscapeSpec('^?^@')], [0x7f, 0x00]);
  assert.deepEqual([...parseEscapeSpec('M-ac')], [0xe1, 0x63]);
  assert.deepEqual([...parseEscapeSpec('\\c')], [0x5c, 0x63]);
  assert.deepEqual([...parseEscapeSpec('&.')], [0x26, 0x2e]);
});

test('parseEscapeSpec: invalid specs throw BadParameter naming the value', () => {
  for (const bad of ['', 'a', 'abc', '^', '^E', '^1c', '^Ec.', '\\400c', 'éc', '\tb', 'M-\\377c']) {
    assert.throws(() => parseEscapeSpec(bad), (e: unknown) => {
      assert.ok(e instanceof BadParameter, `${JSON.stringify(bad)}: not BadParameter`);
      assert.ok(e.message.includes(`'${bad}'`), e.message);
      return true;
    });
  }
});

test('displayEscape: conserver notation, and parseEscapeSpec reads it back for every pair', () => {
  assert.equal(displayEscape(Buffer.from([0x05, 0x63])), '^Ec');
  assert.equal(displayEscape(Buffer.from([0x1d, 0x7f])), '^]^?');
  assert.equal(displayEscape(Buffer.from([0x5e, 0xe1])), '\\136M-a');
  for (let x = 0; x < 256; x++) {
    for (let y = 0; y < 256; y++) {
      const buf = Buffer.from([x, y]);
      const shown = displayEscape(buf);
      assert.ok(parseEscapeSpec(shown).equals(buf), `${x},${y} shown as ${shown}`);
    }
  }
});

test('HELP_TEXT names the escape and every command', () => {
  const h = HELP_TEXT('^Ec');
  assert.ok(h.includes('^Ec'));
  for (const key of ['.', 'a', 'f', 's', 'r', 'p', 'w', 'l?', 'l0', '?']) {
    assert.match(h, new RegExp(`\\r\\n ${key.replace(/[.?]/g, '\\$&')} `), `help lacks ${key}`);
  }
  assert.ok(h.endsWith('\r\n'));
  assert.ok(!/[^\r]\n/.test(h), 'bare \\n in raw-mode help');
});
