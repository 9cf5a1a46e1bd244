import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readable } from './readable.ts';

/** The inverse of readable(), written from its documented rules; proves the notation is unambiguous. */
function unreadable(s: string): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < s.length;) {
    const ch = s[i]!;
    if (ch === '^') {
      const n = s[i + 1]!;
      out.push(Buffer.from([n === '?' ? 0x7f : n.charCodeAt(0) - 0x40]));
      i += 2;
    } else if (ch === '\\') {
      const n = s[i + 1];
      if (n === '\\' || n === '^') { out.push(Buffer.from(n)); i += 2; }
      else if (n === 'x') { out.push(Buffer.from([parseInt(s.slice(i + 2, i + 4), 16)])); i += 4; }
      else throw new Error(`bad token at ${i} in ${s}`);
    } else {
      const cp = s.codePointAt(i)!;
      const c = String.fromCodePoint(cp);
      out.push(Buffer.from(c, 'utf8'));
      i += c.length;
    }
  }
  return Buffer.concat(out);
}

const b = (...x: number[]) => Buffer.from(x);

test('readable: printable ASCII as is', () => {
  assert.equal(readable(Buffer.from('ls -la /tmp')), 'ls -la /tmp');
});

test('readable: control characters in caret notation', () => {
  assert.equal(readable(b(0x03)), '^C');
  assert.equal(readable(b(0x0d)), '^M');
  assert.equal(readable(b(0x1b)), '^[');
  assert.equal(readable(b(0x7f)), '^?');
  assert.equal(readable(b(0x00, 0x09, 0x0a, 0x1c, 0x1e, 0x1f)), '^@^I^J^\\^^^_');
  assert.equal(readable(Buffer.from('reboot\r')), 'reboot^M');
});

test('readable: caret and backslash are escaped so they cannot be mistaken for tokens', () => {
  assert.equal(readable(Buffer.from('^C')), '\\^C');
  assert.equal(readable(Buffer.from('a\\b')), 'a\\\\b');
  assert.equal(readable(Buffer.from('\\x41')), '\\\\x41');
  assert.notEqual(readable(Buffer.from('^C')), readable(b(0x03)));
});

test('readable: valid UTF-8 as characters, other high bytes as \\xNN', () => {
  assert.equal(readable(Buffer.from('café €😀', 'utf8')), 'café €😀');
  assert.equal(readable(b(0xff, 0x80)), '\\xff\\x80');
  assert.equal(readable(b(0xc3)), '\\xc3'); // truncated sequence
  assert.equal(readable(b(0xc3, 0x41)), '\\xc3A');
  assert.equal(readable(b(0xc0, 0xaf)), '\\xc0\\xaf'); // overlong '/'
  assert.equal(readable(b(0xe0, 0x80, 0xaf)), '\\xe0\\x80\\xaf'); // overlong
  assert.equal(readable(b(0xed, 0xa0, 0x80)), '\\xed\\xa0\\x80'); // surrogate
  assert.equal(readable(b(0xf4, 0x90, 0x80, 0x80)), '\\xf4\\x90\\x80\\x80'); // above U+10FFFF
});

test('readable: invisible and reordering characters are shown as bytes', () => {
  assert.equal(readable(Buffer.from('\u0085', 'utf8')), '\\xc2\\x85'); // C1 NEL
  assert.equal(readable(Buffer.from('a\u202eb', 'utf8')), 'a\\xe2\\x80\\xaeb'); // RLO
  assert.equal(readable(Buffer.from('\u200b', 'utf8')), '\\xe2\\x80\\x8b'); // zero width space
  assert.equal(readable(Buffer.from('\u2028', 'utf8')), '\\xe2\\x80\\xa8'); // line separator
  assert.equal(readable(Buffer.from('\ufe0f\u3164', 'utf8')), '\\xef\\xb8\\x8f\\xe3\\x85\\xa4'); // default-ignorable: variation selector, Hangul filler
});

test('readable: output is one line of visible text and maps back to the exact bytes', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  const samples: Buffer[] = [Buffer.from(Array.from({ length: 256 }, (_, i) => i))];
  for (let k = 0; k < 2000; k++) {
    const len = rnd() % 12;
    const pool = [0x5e, 0x5c, 0x78, 0x41, 0x03, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0x7f, 0x1b];
    samples.push(Buffer.from(Array.from({ length: len }, () => (rnd() % 3 ? pool[rnd() % pool.length]! : rnd() % 256))));
  }
  for (const s of samples) {
    const r = readable(s);
    assert.ok(!/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(r), `invisible char in ${r}`);
    assert.ok(unreadable(r).equals(s), `${s.toString('hex')} -> ${r}`);
  }
});
