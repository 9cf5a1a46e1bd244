import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { json, line, safe, safeLines, table, yaml } from './print.ts';
import { breakListText } from './attach.ts';
import { formatToken } from './access.ts';

const EVIL = '\x1b[2K\x1b[1A\x1b]0;pwned\x07\r\u202e\u200b';
const SHOWN = '^[[2K^[[1A^[]0;pwned^G^M\\u202e\\u200b';
/** Anything a terminal would act on or draw as nothing, other than the line ends given. */
const actsOn = (s: string, keep = '\n') => [...s].some((c) => !keep.includes(c) && /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}]/u.test(c));

test('line: the template\'s own text stays as written, every value is rendered', () => {
  assert.equal(line`\r[${EVIL}]\n`, `\r[${SHOWN}]\n`);
  assert.equal(line`${1} ${undefined} ${'^Ec'}`, '1 undefined ^Ec');
  assert.equal(safe(EVIL), SHOWN);
  assert.equal(safeLines(`a${EVIL}\nb\r`), `a${SHOWN}\nb^M`);
});

test('json and yaml: exact once parsed, and nothing in them acts on a terminal', () => {
  const v = { who: `ali${EVIL}ce`, note: 'two\nlines', [`k${EVIL}`]: [1, 'plain', '\u{e0041}\u2028\x7f\u0085'] };
  const j = json(v);
  assert.deepEqual(JSON.parse(j), v);
  assert.equal(JSON.parse(json(v, 0)).who, v.who);
  assert.ok(!json(v, 0).includes('\n'));
  const y = yaml(v);
  assert.deepEqual(YAML.parse(y), v);
  assert.ok(!actsOn(j) && !actsOn(y), y);
  assert.equal(yaml({ rules: [{ who: 'alice', allow: 'rw' }] }), 'rules:\n  - who: alice\n    allow: rw\n', 'ordinary YAML is unchanged');
});

test('table: cells rendered before the columns are measured', () => {
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => { lines.push(s); return true; }) as typeof process.stdout.write;
  try { table([['NAME', 'REASON'], [`a${EVIL}`, EVIL], ['b', undefined]]); } finally { process.stdout.write = write; }
  assert.deepEqual(lines, [`NAME${' '.repeat(SHOWN.length - 3)}  REASON\n`, `a${SHOWN}  ${SHOWN}\n`, 'b\n']);
});

test('breakListText and formatToken show a relay\'s and a user\'s words escaped', () => {
  const b = breakListText([{ id: '1', text: `reboot${EVIL}` }], '1');
  assert.equal(b, `[breaks:\r\n 1: reboot${SHOWN}  (default: l0)]`);
  assert.ok(!actsOn(b, '\r\n'));
  const t = formatToken({ id: 'tok1', kind: 'user', name: `mallory${EVIL}`, created: 0, revoked: { at: 0, by: EVIL } } as never);
  assert.ok(t.includes(`mallory${SHOWN}`) && t.endsWith(`by ${SHOWN}`) && !actsOn(t), t);
});

test('every print in the CLI goes through print.ts (no console.log, no direct process.stdout/stderr writes)', () => {
  const dir = path.dirname(new URL(import.meta.url).pathname);
  const found: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.ts') || f.endsWith('.test.ts') || f === 'print.ts') continue;
    fs.readFileSync(path.join(dir, f), 'utf8').split('\n').forEach((l, i) => {
      if (/\bconsole\.(log|error|warn|info|debug|dir|table|trace)\s*\(|\bprocess\.std(out|err)\.write\s*\(/.test(l)) found.push(`${f}:${i + 1}: ${l.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});
