import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePattern, PATTERN_DEFAULTS } from './grep-pattern.ts';
import { compile, LineMatcher } from './grep-dfa.ts';

/** Start offsets of the lines of `text` that `pattern` matches. */
function matching(pattern: string, text: string | Buffer, ignoreCase = false): number[] {
  const m = new LineMatcher(compile(parsePattern(pattern, ignoreCase)));
  const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  m.begin(buf, 0, buf.length);
  const hits: number[] = [];
  while (!m.run(hits, 1e9));
  return hits;
}

test('patterns match the lines JavaScript regexes (multiline mode) match, on random patterns and lines', () => {
  // Differential: random patterns of the supported syntax against random ASCII lines; each line
  // must match exactly when V8's RegExp (flags m, and i) finds a match in it.
  let seed = 12345;
  const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
  const pick = <T>(xs: readonly T[]) => xs[rnd(xs.length)];
  const atoms = ['a', 'b', 'A', 'c', '.', '\\d', '\\w', '\\s', '\\W', '[ab]', '[^a]', '[a-c]', '[^\\d]', '\\.', ' ', '1', '\\r', '[\\w-]', 'x', '[]', '[^]', '\\x41', '\\u0062', '[\\b]', '{', '}', ']', 'a{,2}', '\\-', '\\cA'];
  const gen = (d: number): string => {
    const r = rnd(10);
    if (d > 3 || r < 3) return pick(atoms);
    if (r < 5) return gen(d + 1) + gen(d + 1);
    if (r < 6) return `(${gen(d + 1)}|${gen(d + 1)})`;
    if (r < 7) return `(?:${gen(d + 1)})${pick(['*', '+', '?', '{2}', '{0,2}', '{1,}', '*?', '{2,3}?'])}`;
    if (r < 8) return pick(['^', '$', '\\b', '\\B']) + gen(d + 1);
    if (r < 9) return gen(d + 1) + pick(['^', '$', '\\b', '\\B']);
    return pick(atoms) + pick(['*', '+', '?', '{1,3}', '??']);
  };
  const alphabet = 'abcAB1 .-x\r{}]\x01';
  let checked = 0;
  for (let k = 0; k < 4000; k++) {
    const p = gen(0);
    const i = rnd(2) === 1;
    let re: RegExp;
    try { re = new RegExp(p, i ? 'mi' : 'm'); } catch { continue; }
    const lines = Array.from({ length: 6 }, () => Array.from({ length: rnd(9) }, () => alphabet[rnd(alphabet.length)]).join(''));
    const text = lines.join('\n') + (rnd(2) ? '\n' : '');
    const want: number[] = [];
    let off = 0;
    const real = text.split('\n');
    if (text.endsWith('\n')) real.pop(); // no line after the last newline
    for (const l of real) { if (re.test(l)) want.push(off); off += l.length + 1; }
    assert.deepEqual(matching(p, text, i), want, `${JSON.stringify(p)}${i ? ' -i' : ''} on ${JSON.stringify(lines)}`);
    checked++;
  }
  assert.ok(checked > 3500, `${checked} patterns checked`);
});

test('non-ASCII characters match their UTF-8 bytes, with both cases under -i', () => {
  const text = Buffer.from('Grüße aus Köln\nGRÜSSE\nstraße\nKÖLN\nnaïve café\n', 'utf8');
  const at = (s: string) => text.indexOf(Buffer.from(s, 'utf8'));
  assert.deepEqual(matching('Köln', text), [0]);
  assert.deepEqual(matching('köln', text, true), [0, at('KÖLN')]);
  assert.deepEqual(matching('[éï]', text), [at('naïve')]);
  assert.deepEqual(matching('caf\\xe9', text), [at('naïve')], '\\xHH is the character U+00HH, in UTF-8');
  assert.deepEqual(matching('\\u00DF', text), [0, at('straße')]);
  assert.deepEqual(matching('😀', Buffer.from('a😀b\nc\n')), [0]);
  assert.deepEqual(matching('\\uD83D\\uDE00', Buffer.from('a😀b\nc\n')), [0], 'a surrogate pair written as two escapes');
});

test('features no linear-time matcher can run are refused, naming the feature', () => {
  for (const [p, why] of [
    ['(a)\\1', /pattern: backreference \\1 cannot be matched in time linear/],
    ['(?<x>a)\\k<x>', /pattern: backreference \\k<x> cannot be matched/],
    ['a(?=b)', /pattern: lookahead \(\?=\.\.\.\) cannot be matched/],
    ['a(?!b)', /pattern: lookahead \(\?!\.\.\.\)/],
    ['(?<=a)b', /pattern: lookbehind \(\?<=\.\.\.\)/],
    ['(?<!a)b', /pattern: lookbehind \(\?<!\.\.\.\)/],
    ['\\012', /pattern: octal escape \\012 is not supported/],
    ['[^é]', /negated class \[\^é\] with characters outside ASCII/],
    ['[à-é]', /range "à-é" .* spans characters outside ASCII/],
    ['(a', /pattern: bad pattern: Invalid regular expression: \/\(a\/: Unterminated group/],
    ['a**', /pattern: bad pattern: .*Nothing to repeat/],
  ] as const) assert.throws(() => parsePattern(p, false), (e: Error) => why.test(e.message), p);
});

test('pattern length and compiled size are bounded before anything is built', () => {
  assert.throws(() => parsePattern('a'.repeat(PATTERN_DEFAULTS.maxLength + 1), false), /pattern: 1001 characters, longer than the 1000 this cloud accepts \(maxPatternLength\)/);
  for (const p of ['(a{1000}){1000}', '((a{100}){100}){100}', 'a{99999999999}', '(.{5000})+']) {
    const t0 = performance.now();
    assert.throws(() => parsePattern(p, false), /pattern: too complex: it would compile to (\d+|more than a billion) matcher states, more than the 4000 allowed \(maxPatternStates\)/, p);
    assert.ok(performance.now() - t0 < 100, `${p}: refused in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  assert.doesNotThrow(() => parsePattern('[0-9a-f]{64}', false));
  assert.throws(() => parsePattern('[0-9a-f]{64}', false, { maxLength: 1000, maxStates: 50 }), /compile to 64 matcher states, more than the 50/);
});

test('a pattern whose DFA would be huge keeps the cache bounded and its cost per byte linear', () => {
  // (a|b)*a(a|b){N}: 2^N DFA states. The cache is flushed when full; memory stays bounded and the
  // work per byte stays at most one NFA step.
  const prog = compile(parsePattern('(a|b)*a(a|b){300}c', false));
  let x = 7;
  const text = Buffer.from(Array.from({ length: 20_000 }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) & 1 ? 'a' : 'b').join(''));
  const m = new LineMatcher(prog, { cacheCells: 1 << 16 });
  m.begin(text, 0, text.length);
  const hits: number[] = [];
  let slices = 0;
  while (!m.run(hits, 20_000)) slices++;
  assert.deepEqual(hits, []);
  assert.ok(slices > 10, `${slices} slices: the scan could be interleaved`);
  assert.ok(m.work < text.length * prog.op.length * 6, `work ${m.work} for ${text.length} bytes x ${prog.op.length} states`);
  assert.ok(m.cachedCells() <= (1 << 16) + 4 * prog.op.length, `cache ${m.cachedCells()} cells`);
});
