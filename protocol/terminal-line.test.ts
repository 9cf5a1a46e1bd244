import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_LINE, MAX_PREVIOUS, TerminalLine } from './terminal-line.ts';

/** The line shown after `out`, written whole, and written in two at every byte (all must agree). */
function shown(out: string | Buffer): { text: string; previous: string } {
  const b = typeof out === 'string' ? Buffer.from(out) : out;
  const whole = new TerminalLine();
  whole.write(b);
  for (let i = 1; i < b.length; i++) {
    const t = new TerminalLine();
    t.write(b.subarray(0, i));
    t.write(b.subarray(i));
    assert.deepEqual([t.text, t.previous], [whole.text, whole.previous], `split at ${i} of ${JSON.stringify(b.toString('latin1'))}`);
  }
  return { text: whole.text, previous: whole.previous };
}

test('escape sequences print nothing: CSI, charset designations, OSC and DCS strings, keypad modes', () => {
  assert.equal(shown('\x1b[1;31mPass\x1b[0mword:\x1b(B\x1b[m \x1b[?25h\x1b]0;a: b\x07\x1b]2;t\x1b\\\x1bP1$r0m\x1b\\\x1b=\x1b7').text, 'Password: ');
  assert.equal(shown('a\x1b#8b\x1b%Gc\x1b)0d').text, 'abcd');
});

test('what a terminal does with the cursor: CR overwrites, BS and ESC [ K erase, tabs move, CSI moves and deletes', () => {
  assert.equal(shown('Password: ***\b \b\b \b').text, 'Password: *  ');
  assert.equal(shown('Password: **\b\b\x1b[K').text, 'Password: ');
  assert.equal(shown('spinner |\rPassword: ').text, 'Password: ');
  assert.equal(shown('0123456789\rab').text, 'ab23456789');
  assert.equal(shown('Last\t:').text, 'Last    :');
  assert.equal(shown('abcdef\x1b[3D\x1b[K').text, 'abc');
  assert.equal(shown('abcdef\x1b[2G\x1b[2P').text, 'adef');
  assert.equal(shown('abcdef\x1b[1G\x1b[2X').text, '  cdef');
  assert.equal(shown('abcdef\x1b[3G\x1b[1K').text, '   def');
  assert.equal(shown('abcdef\x1b[2K\rxy').text, 'xy');
  assert.equal(shown('abc\x1b[2@').text, 'abc', 'insert at the end: nothing to push');
  assert.equal(shown('abc\x1b[1G\x1b[2@').text, '  abc');
});

test('a line feed starts a new line (the old one is the previous line); another row is an unknown line', () => {
  assert.deepEqual(shown('one\r\ntwo\r\nGive root password\r\n(or press: '), { text: '(or press: ', previous: 'Give root password' });
  assert.deepEqual(shown('one\ntwo'), { text: 'two', previous: 'one' });
  assert.deepEqual(shown('Password: \x1b[2;1Hmenu'), { text: 'menu', previous: '' });
  assert.deepEqual(shown('Password: \x1bEnext'), { text: 'next', previous: 'Password: ' });
  assert.equal(shown('x\x1b]0;never ended\ny').text, 'y', 'a line feed ends an unterminated OSC');
});

test('UTF-8 split anywhere; bytes that are not UTF-8 are Latin-1; C1 controls print nothing', () => {
  assert.equal(shown('Passwort für root: ').text, 'Passwort für root: ');
  assert.equal(shown('密码：🔐').text, '密码：🔐');
  assert.equal(shown(Buffer.from('Contraseña: ', 'latin1')).text, 'Contraseña: ');
  assert.equal(shown(Buffer.from([0x61, 0xe2, 0x82, 0x62])).text, 'a\u00e2b', 'a cut-off sequence: its bytes as Latin-1');
  assert.equal(shown(Buffer.from([0x61, 0xc0, 0xaf, 0x62])).text, 'a\u00c0\u00afb', 'never a UTF-8 lead byte');
  assert.equal(shown(Buffer.from([0x61, 0xe0, 0x80, 0xaf, 0x62])).text, 'a\u00e0\u00afb', 'an overlong encoding is no character (0x80 as Latin-1 is a C1 control)');
  assert.equal(shown(Buffer.from([0x61, 0xc2, 0x9b, 0x62])).text, 'ab');
});

test('the state is bounded: the last MAX_LINE characters of the line, the end of the previous one', () => {
  const t = new TerminalLine();
  t.write(Buffer.from(`${'p'.repeat(MAX_PREVIOUS)}PREV\r\n`));
  for (let i = 0; i < 5; i++) t.write(Buffer.from('x'.repeat(MAX_LINE)));
  t.write(Buffer.from('END'));
  assert.equal(t.text.length, MAX_LINE);
  assert.ok(t.text.endsWith('xEND'));
  assert.equal(t.previous.length, MAX_PREVIOUS);
  assert.ok(t.previous.endsWith('pPREV'));
  t.write(Buffer.from(`\x1b[${'9'.repeat(100)}C!`));
  assert.ok(t.text.length <= 2 * MAX_LINE + 1, `${t.text.length}`);
  assert.equal(t.lines, 1);
});
