import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globProblem, globToRegex, GlobError } from './glob.ts';

test('globs match console names as a shell would', () => {
  const cases: [string, string[], string[]][] = [
    ['web*', ['web', 'web01', 'web.x'], ['aweb', 'we']],
    ['web?', ['web1'], ['web', 'web12']],
    ['a.b', ['a.b'], ['axb']],
    ['db[0-9][0-9]', ['db01', 'db99'], ['db1', 'dba1']],
    ['sw[!0-4]', ['sw5', 'swa'], ['sw0', 'sw4']],
    ['sw[^ab]', ['swc'], ['swa']],
    ['[]a]x', [']x', 'ax'], ['bx']],
    ['[!]]x', ['ax'], [']x']],
    ['[a-]', ['a', '-'], ['b']],
    ['x-y', ['x-y'], ['xy']],
    ['$(rm)|x', ['$(rm)|x'], ['x']],
    ['*', ['', 'anything'], []],
  ];
  for (const [g, yes, no] of cases) {
    const re = globToRegex(g);
    for (const n of yes) assert.ok(re.test(n), `${g} should match ${n}`);
    for (const n of no) assert.ok(!re.test(n), `${g} should not match ${n}`);
  }
  assert.ok(globToRegex('WEB*', 'i').test('web1'));
});

test('a glob that cannot be meant is a GlobError naming the problem, never a SyntaxError', () => {
  // `[a-` once went straight into new RegExp: a 500 from grep, and an access document that failed on every request.
  for (const [g, re] of [['[a-', /the \[ at position 1 has no closing \]/], ['a[b', /position 2/], ['[', /no closing/], ['[]', /no closing/], ['[!]', /no closing/], ['[z-a]', /range z-a is out of order/]] as const) {
    assert.throws(() => globToRegex(g), (e: Error) => e instanceof GlobError && re.test(e.message), g);
    assert.match(globProblem(g) ?? '', re);
  }
  assert.equal(globProblem('web[0-9]*'), undefined);
});
