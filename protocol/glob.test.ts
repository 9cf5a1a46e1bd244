import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GLOB_MAX, globMatcher, globProblem, GlobError } from './glob.ts';

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
    const m = globMatcher(g);
    for (const n of yes) assert.ok(m(n), `${g} should match ${n}`);
    for (const n of no) assert.ok(!m(n), `${g} should not match ${n}`);
  }
  assert.ok(globMatcher('WEB*', { ignoreCase: true })('web1'));
  assert.ok(globMatcher('[A-C]x', { ignoreCase: true })('bX') && !globMatcher('[!A-C]x', { ignoreCase: true })('bx'));
  assert.ok(!globMatcher('WEB*')('web1'));
  // Non-ASCII names (the web viewer's filter) go by characters, not UTF-16 units.
  assert.ok(globMatcher('?x')('😀x') && globMatcher('[😀]')('😀'));
});

test('a glob that cannot be meant is a GlobError naming the problem, never a SyntaxError', () => {
  // `[a-` once went straight into new RegExp: a 500 from grep, and an access document that failed on every request.
  for (const [g, re] of [['[a-', /the \[ at position 1 has no closing \]/], ['a[b', /position 2/], ['[', /no closing/], ['[]', /no closing/], ['[!]', /no closing/], ['[z-a]', /range z-a is out of order/]] as const) {
    assert.throws(() => globMatcher(g), (e: Error) => e instanceof GlobError && re.test(e.message), g);
    assert.match(globProblem(g) ?? '', re);
  }
  assert.equal(globProblem('web[0-9]*'), undefined);
  assert.match(globProblem('web[\u202e') ?? '', /^glob "web\[\\u202e": the \[ at position 4 has no closing \]/, 'the glob shown escaped');
});

test('a glob of many stars against a long name takes at most len(name) x len(glob) steps', () => {
  // As a regex (.*a.*a...b) this backtracked exponentially: 30 stars over 128 a's did not finish.
  const glob = `${'*a'.repeat(60)}*b`.slice(0, GLOB_MAX);
  const m = globMatcher(glob);
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(m('a'.repeat(128)), false);
  const ms = performance.now() - t0;
  assert.ok(ms < 500, `100 matches took ${ms.toFixed(0)} ms`);
  assert.ok(m(`${'a'.repeat(60)}b`));
});

test('a glob longer than GLOB_MAX is refused', () => {
  assert.throws(() => globMatcher('a'.repeat(GLOB_MAX + 1)), (e: Error) => e instanceof GlobError && /longer than 256/.test(e.message));
  assert.equal(globProblem('*'.repeat(GLOB_MAX)), undefined);
});
