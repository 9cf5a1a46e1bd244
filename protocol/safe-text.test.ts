import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeInQuoted, safeText, shownName, UNSAFE_CHAR } from './safe-text.ts';

test('safeText: C0 controls and DEL in caret notation, so ESC sequences and line breaks show instead of acting', () => {
  assert.equal(safeText('\x1b[2K\x1b[1A'), '^[[2K^[[1A');
  assert.equal(safeText('\x1b]0;pwned\x07'), '^[]0;pwned^G');
  assert.equal(safeText('a\rb\nc\r\n'), 'a^Mb^Jc^M^J');
  assert.equal(safeText('\x00\x08\x09\x0b\x0c\x1f\x7f'), '^@^H^I^K^L^_^?');
});

test('safeText: C1 controls (an 8-bit CSI is an ESC [ to many terminals) as code points', () => {
  assert.equal(safeText('\u009b2J\u0085\u009d0;x\u009c'), '\\u009b2J\\u0085\\u009d0;x\\u009c');
});

test('safeText: bidi overrides, embeddings, isolates and marks cannot reorder the text', () => {
  assert.equal(safeText('admin\u202egpj.exe'), 'admin\\u202egpj.exe');
  for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c']) {
    assert.equal(safeText(`x${c}y`), `x\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}y`);
  }
});

test('safeText: zero-width and other invisible characters cannot hide text', () => {
  assert.equal(safeText('ro\u200bot'), 'ro\\u200bot');
  assert.equal(safeText('\u200c\u200d\u2060\ufeff\u00ad\u180e'), '\\u200c\\u200d\\u2060\\ufeff\\u00ad\\u180e');
  assert.equal(safeText('\u034f\ufe0f\u3164\u115f\uffa0'), '\\u034f\\ufe0f\\u3164\\u115f\\uffa0'); // default-ignorable, not Cf
  assert.equal(safeText('a\u{e0041}\u{e007f}b'), 'a\\u{e0041}\\u{e007f}b'); // tag characters
});

test('safeText: line and paragraph separators, and lone surrogates', () => {
  assert.equal(safeText('a\u2028b\u2029c'), 'a\\u2028b\\u2029c');
  assert.equal(safeText('x\ud800y\udfff'), 'x\\ud800y\\udfff');
});

test('safeText: ordinary text of any script is left as it is, ^ and \\ included', () => {
  for (const s of ['alice', 'relay:edge1', 'café Ünïcode', '日本語のコンソール', 'עברית', 'emoji 😀 🚀', 'a ^ b \\ c ~ `', 'tab-free  double  spaces', '']) {
    assert.equal(safeText(s), s);
  }
});

test('safeText: no code point survives that a terminal would act on or draw as nothing; the result is a fixed point', () => {
  const bad: string[] = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    const ch = String.fromCodePoint(cp);
    const r = safeText(ch);
    if (UNSAFE_CHAR.test(r) || /[\x00-\x1f\x7f-\x9f]/.test(r)) bad.push(cp.toString(16));
    if (UNSAFE_CHAR.test(ch) !== (r !== ch)) bad.push(`${cp.toString(16)} (changed: ${r !== ch})`);
  }
  assert.deepEqual(bad, []);
  const hostile = '\x1b[2K\x1b[1A\x1b]0;pwned\x07\r\u202e\u200b\u2028\ud800\u{e0041}';
  assert.equal(safeText(safeText(hostile)), safeText(hostile));
  assert.doesNotMatch(safeText(hostile), new RegExp(UNSAFE_CHAR.source, 'u'));
});

test('escapeInQuoted: JSON stays exact and prints no control, bidi or zero-width character', () => {
  const v = { name: 'x\x1b[2K\x7f\u0085\u202e\u200b\u2028\u{e0041}\ud800', list: ['ok', 'a\nb'], n: 3 };
  const text = escapeInQuoted(JSON.stringify(v, null, 2));
  assert.deepEqual(JSON.parse(text), v);
  assert.doesNotMatch(text.replace(/\n/g, ''), new RegExp(UNSAFE_CHAR.source, 'u'));
  assert.match(text, /\\u202e\\u200b\\u2028\\udb40\\udc41\\ud800/);
});

test('shownName: a value quoted for a message, cut to 80 characters, nothing outside printable ASCII left raw', () => {
  assert.equal(shownName('a\u202eb\u0000c'), '"a\\u202eb\\u0000c"');
  assert.equal(shownName('x'.repeat(100)), `"${'x'.repeat(80)}..."`);
  assert.equal(shownName('\u0430dmin'), '"\\u0430dmin"', 'a look-alike letter shows as what it is');
  assert.equal(shownName(42), 'number');
});
