import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretPromptTracker, showsSecretPrompt } from './secret-prompt.ts';
import { ECHOES, NOT_PROMPTS, PROMPTS, type Fixture } from './secret-prompt.corpus.ts';

const bytes = (out: string | Buffer) => (typeof out === 'string' ? Buffer.from(out) : out);
/** The same output with LF where it had CR LF. */
const lf = (b: Buffer) => Buffer.from(b.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
// What consoles send after a prompt that prints nothing: charset, colour, cursor, window titles.
const TRAILERS = ['', '\x1b(B', '\x1b[0m', '\x1b[?25h', '\x1b]0;alice@web01: ~\x07', '\x1b]2;sudo\x1b\\'];

/** The state after feeding `b` to a fresh tracker in pieces cut at `cuts`. */
function fed(b: Buffer, cuts: number[]): boolean {
  const t = new SecretPromptTracker();
  let state = false;
  let at = 0;
  for (const cut of [...cuts, b.length]) { state = t.feed('c', b.subarray(at, cut), at); at = cut; }
  return state;
}

/** Every way this test cuts output: whole, in two at every byte, byte by byte. */
function* splits(b: Buffer): Generator<{ how: string; cuts: number[] }> {
  yield { how: 'whole', cuts: [] };
  for (let i = 1; i < b.length; i++) yield { how: `split at ${i}`, cuts: [i] };
  yield { how: 'byte by byte', cuts: Array.from({ length: b.length - 1 }, (_, i) => i + 1) };
}

function variants(f: Fixture): { name: string; b: Buffer }[] {
  const base = bytes(f.out);
  return [base, lf(base)].flatMap((b, i) => TRAILERS.map((tr) => ({ name: `${f.from}${i ? ' (LF)' : ''}${tr ? ` + ${JSON.stringify(tr)}` : ''}`, b: Buffer.concat([b, Buffer.from(tr)]) })));
}

/** The fixtures (in any variant, however cut) whose state is not `expected`: the first cut that fails of each. */
function misses(corpus: Fixture[], expected: boolean): string[] {
  const wrong: string[] = [];
  for (const f of corpus) {
    for (const { name, b } of variants(f)) {
      for (const { how, cuts } of splits(b)) if (fed(b, cuts) !== expected) { wrong.push(`${name}, ${how}: ${JSON.stringify(b.toString())}`); break; }
    }
  }
  return wrong;
}

test(`the corpus: ${PROMPTS.length} real prompts are seen, whole, split at every byte and byte by byte, with LF and with sequences after them`, () => {
  assert.deepEqual(misses(PROMPTS, true), []);
});

test(`the corpus: ${NOT_PROMPTS.length} lines that are no prompt are not taken for one, however split`, () => {
  assert.deepEqual(misses(NOT_PROMPTS, false), []);
});

test(`the corpus: ${ECHOES.length} consoles echo each key (*, bullets, nothing, erases): the prompt lasts until Enter`, () => {
  for (const f of ECHOES) {
    const t = new SecretPromptTracker();
    let at = 0;
    const feed = (s: string) => { const b = Buffer.from(s); const r = t.feed('c', b, at); at += b.length; return r; };
    assert.ok(feed(f.prompt), `${f.from}: the prompt`);
    f.keys.forEach((k, i) => assert.ok(feed(k), `${f.from}: still a prompt after key ${i + 1} echoed ${JSON.stringify(k)}`));
    assert.ok(!feed(f.enter), `${f.from}: Enter ends it`);
    // The same output in any two pieces (a relay batches echo as it likes) ends at the prompt.
    const all = Buffer.from(f.prompt + f.keys.join(''));
    for (const { how, cuts } of splits(all)) if (how !== 'byte by byte') assert.ok(fed(all, cuts), `${f.from}: ${how}`);
  }
});

test('a prompt another process saw: only echo masks keep it, a newline ends it, and without it echo is nothing', () => {
  // A Lambda instance that did not see the prompt is told the registry's state (`was`).
  const t = new SecretPromptTracker();
  assert.equal(t.feed('c', Buffer.from('*'), 100, true), true);
  assert.equal(t.feed('c', Buffer.from('\b \b\x1b[K*'), 101, true), true);
  assert.equal(t.feed('c', Buffer.from('\r\n'), 108, true), false, 'the newline of Enter');
  assert.equal(t.feed('c', Buffer.from('*'), 110, false), false);
  assert.equal(new SecretPromptTracker().feed('d', Buffer.from('ls'), 5, true), false, 'other echo ends it');
  assert.equal(new SecretPromptTracker().feed('e', Buffer.from('*'), 5, false), false, 'a * alone is no prompt');
});

test('output another process saw in between makes the tracker forget the line it had', () => {
  const t = new SecretPromptTracker();
  assert.equal(t.feed('c', Buffer.from('Password: '), 0), true);
  // Bytes 10..39 went to another Lambda instance (Enter, a shell prompt); this one gets the echo of a space.
  assert.equal(t.feed('c', Buffer.from(' '), 40, false), false);
  assert.equal(t.feed('c', Buffer.from('Password: '), 41), true, 'continuous again: the line is kept');
  assert.equal(t.feed('c', Buffer.from('*'), 51), true);
});

test('a chunk older than what was fed (it filled a hole late) leaves the state as the newest output made it', () => {
  const t = new SecretPromptTracker();
  assert.equal(t.feed('c', Buffer.from('Password: '), 10), true);
  assert.equal(t.feed('c', Buffer.from('$ ls\r\n'), 4, true), true);
  assert.equal(t.feed('c', Buffer.from('*'), 20), true, 'continuous with the newest');
});

test('over-redacted by design: a question naming a password that ends in a colon, a command line echoed up to password:', () => {
  assert.ok(showsSecretPrompt('Change the password for root ? ((Press y|Y for Yes, any other key for No) : '));
  assert.ok(showsSecretPrompt('alice@web01:~$ grep -r password:'));
});

test('the tracker carries each console\'s line, so a split prompt is seen; the least recently fed is forgotten first', () => {
  const t = new SecretPromptTracker(undefined, 2);
  assert.equal(t.feed('a', Buffer.from('Pass')), false);
  assert.equal(t.feed('b', Buffer.from('x')), false);
  assert.equal(t.feed('a', Buffer.from('word: ')), true);
  assert.equal(t.feed('a', Buffer.from('\r\n')), false);
  t.feed('c', Buffer.from('Pass')); // evicts the least recently fed (b), keeps its own carry
  assert.equal(t.feed('c', Buffer.from('word:')), true);
});

test('--secret-prompt adds prompts to the built-in ones, also while the console echoes masks', () => {
  const vault = /vault code>\s*$/i;
  assert.ok(showsSecretPrompt('Vault code> ', vault));
  assert.ok(!showsSecretPrompt('Vault code> ')); // not built in
  assert.ok(showsSecretPrompt('Vault code> ***', vault), 'the regex sees the line without the echo too');
  assert.ok(showsSecretPrompt('Password: ', vault), 'the built-in prompts stay');
  assert.ok(!showsSecretPrompt('Vault code> \r\n', vault));
  // A deployment that copied the old default as its regex keeps it working.
  const old = /(?:password|passphrase|passcode|pass phrase|\bpin\b|secret|token code)[^\n:]{0,60}:\s*$/i;
  assert.ok(showsSecretPrompt('Passwort für root: ', old), 'and gains what the built-in matcher knows');
});

test('the line is bounded: a prompt more than MAX_LINE characters long is not seen, and a huge line costs linear time', () => {
  assert.ok(!showsSecretPrompt(`Enter passphrase for /${'x/'.repeat(600)}id: `), 'the word fell off the front of the line');
  const t = new SecretPromptTracker();
  const started = performance.now();
  // 4 MiB with no newline: words, colons, echo masks, erases, escapes, half sequences.
  const chunk = Buffer.from('password '.repeat(50) + ':* \b\x1b[K\x1b[1;2H\x1b[99@\x1b[5P\x1b]0;t'.repeat(20) + '\x07\xe2\x82');
  for (let n = 0; n < (4 << 20) / chunk.length; n++) t.feed('c', chunk);
  assert.ok(performance.now() - started < 10_000, `${Math.round(performance.now() - started)} ms`);
});
