// A user's grep pattern (JavaScript regex syntax) compiled for a matcher whose time is linear in
// the text (grep-dfa.ts), never V8's backtracking engine: a pattern of a few characters could
// otherwise hold the cloud's event loop for minutes (`(a*)*b`, backreferences), and V8's own
// linear engine (the `l` flag) keeps memory for every step of a match attempt until it returns
// (GBs over a 1 MiB window), so it is no bound either.
//
// Semantics: a pattern matches within one line of output (as grep's), over the stored bytes.
// Characters outside ASCII (literal or \xHH/\uHHHH) stand for their UTF-8 bytes; `.`, classes,
// \d \w \s and \b work on single bytes (ASCII meanings); `^`/`$` hold at a line's ends and next
// to a `\r` (JavaScript's multiline mode). -i folds ASCII letters, and a non-ASCII character
// matches its lower and upper case forms. Refused, with a message naming the feature: what no
// linear-time matcher can run (backreferences, lookahead, lookbehind) and patterns that would
// compile to more than `maxStates` states (counted repeats like `(a{1000}){1000}`).
import { BadParameter } from '../../protocol/errors.ts';

export type Node =
  | { t: 'set'; set: Uint8Array } // one byte of a set (256 entries, 1 = member)
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | { t: 'rep'; node: Node; min: number; max: number } // max: Infinity for * and +
  | { t: 'assert'; kind: Assertion };
export type Assertion = 'bol' | 'eol' | 'wordb' | 'nwordb';

export interface PatternLimits {
  /** Longest pattern accepted (characters). */
  maxLength: number;
  /** Most matcher states a pattern may compile to (counted repeats multiply). */
  maxStates: number;
}
export const PATTERN_DEFAULTS: PatternLimits = { maxLength: 1000, maxStates: 4000 };

const setOf = (pred: (b: number) => boolean): Uint8Array => Uint8Array.from({ length: 256 }, (_, b) => (pred(b) ? 1 : 0));
const isWordByte = (b: number) => (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b === 95;
const SETS: Record<string, Uint8Array> = {
  d: setOf((b) => b >= 48 && b <= 57),
  w: setOf(isWordByte),
  s: setOf((b) => (b >= 9 && b <= 13) || b === 32),
  dot: setOf((b) => b !== 10 && b !== 13),
};
for (const k of ['d', 'w', 's']) SETS[k.toUpperCase()] = setOf((b) => !SETS[k][b]);
export const WORD = SETS.w;

/** The parsed pattern, or BadParameter naming what is wrong with it (`pattern: ...`). */
export function parsePattern(pattern: string, ignoreCase: boolean, limits: PatternLimits = PATTERN_DEFAULTS): Node {
  if (pattern.length > limits.maxLength) throw new BadParameter(`pattern: ${pattern.length} characters, longer than the ${limits.maxLength} this cloud accepts (maxPatternLength)`);
  // Syntax errors as JavaScript words them (the pattern is only parsed here, never run).
  try { new RegExp(pattern); } catch (e) { throw new BadParameter(`pattern: bad pattern: ${(e as Error).message}`); }
  const node = new Parser(pattern, ignoreCase).parse();
  const states = size(node);
  if (states > limits.maxStates) {
    throw new BadParameter(`pattern: too complex: it would compile to ${states > 1e9 ? 'more than a billion' : states} matcher states, more than the ${limits.maxStates} allowed (maxPatternStates); counted repeats multiply (x{100} is 100 copies of x): use fewer or smaller ones, or * and +`);
  }
  return node;
}

/** States the compiled program will have (grep-dfa.ts compile), computed without building it. */
export function size(n: Node): number {
  switch (n.t) {
    case 'set': case 'assert': return 1;
    case 'seq': return n.items.reduce((a, x) => a + size(x), 0);
    case 'alt': return n.alts.reduce((a, x) => a + size(x), n.alts.length - 1);
    case 'rep': { const s = size(n.node); return n.min * s + (n.max === Infinity ? s + 1 : (n.max - n.min) * (s + 1)); }
  }
}

/**
 * Byte strings of 3 bytes or more that every match of `node` contains, for the trigram index
 * (grep-index.ts) and grep's pre-check (replay.ts grepLog): the runs of single bytes in the
 * pattern's top-level sequence, a part repeated at least once joining the run before it (its
 * first copy follows it) and ending it. Under -i a letter's two cases count as the lowercase
 * letter and a byte outside ASCII ends a run (the index and the pre-check fold ASCII only).
 * Anything else (a class, `.`, an alternation, an assertion, an optional part) ends a run, so
 * the literals are only ever fewer than they could be, never wrong.
 */
export function requiredLiterals(node: Node, ignoreCase: boolean): Buffer[] {
  const runs: Buffer[] = [];
  let run: number[] = [];
  const end = () => { if (run.length >= 3) runs.push(Buffer.from(run)); run = []; };
  const walk = (n: Node): void => {
    if (n.t === 'seq') { for (const x of n.items) walk(x); return; }
    const b = n.t === 'set' ? literalByte(n.set, ignoreCase) : undefined;
    if (b !== undefined) { run.push(b); return; }
    if (n.t === 'rep' && n.min >= 1) walk(n.node);
    end();
  };
  walk(node);
  end();
  return runs;
}

/** The one byte a set stands for (under -i: the lowercase letter of a letter's two cases). */
function literalByte(set: Uint8Array, ignoreCase: boolean): number | undefined {
  let first = -1, n = 0;
  for (let b = 0; b < 256; b++) if (set[b]) { if (++n > 2) return undefined; if (first < 0) first = b; }
  if (n === 1) return ignoreCase && first >= 0x80 ? undefined : first;
  // Two members: under -i an ASCII letter in both cases (first is the capital).
  return ignoreCase && n === 2 && first >= 65 && first <= 90 && set[first + 32] ? first + 32 : undefined;
}

const refuse = (what: string, why: string) => new BadParameter(`pattern: ${what} ${why}`);
const NO_LINEAR = 'cannot be matched in time linear in the output (grep runs every pattern that way, so no pattern can stall the cloud)';

class Parser {
  private i = 0;
  constructor(private readonly src: string, private readonly fold: boolean) {}

  parse(): Node {
    const n = this.disjunction();
    if (this.i < this.src.length) throw new BadParameter(`pattern: unexpected ${JSON.stringify(this.src[this.i])} at position ${this.i + 1}`);
    return n;
  }

  private disjunction(): Node {
    const alts = [this.alternative()];
    while (this.src[this.i] === '|') { this.i++; alts.push(this.alternative()); }
    return alts.length === 1 ? alts[0] : { t: 'alt', alts };
  }

  private alternative(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') items.push(this.term());
    return items.length === 1 ? items[0] : { t: 'seq', items };
  }

  private term(): Node {
    const s = this.src, c = s[this.i];
    if (c === '^') { this.i++; return { t: 'assert', kind: 'bol' }; }
    if (c === '$') { this.i++; return { t: 'assert', kind: 'eol' }; }
    if (c === '\\' && (s[this.i + 1] === 'b' || s[this.i + 1] === 'B')) { this.i += 2; return { t: 'assert', kind: s[this.i - 1] === 'b' ? 'wordb' : 'nwordb' }; }
    return this.quantified(this.atom());
  }

  private quantified(node: Node): Node {
    const s = this.src;
    let min: number, max: number;
    const c = s[this.i];
    if (c === '*') { min = 0; max = Infinity; this.i++; }
    else if (c === '+') { min = 1; max = Infinity; this.i++; }
    else if (c === '?') { min = 0; max = 1; this.i++; }
    else {
      const m = c === '{' ? /^\{(\d+)(?:(,)(\d*))?\}/.exec(s.slice(this.i)) : null;
      if (!m) return node;
      min = Number(m[1]);
      max = m[2] ? (m[3] ? Number(m[3]) : Infinity) : min;
      this.i += m[0].length;
    }
    if (s[this.i] === '?') this.i++; // lazy or greedy: the same lines match
    return { t: 'rep', node, min, max };
  }

  private atom(): Node {
    const s = this.src, c = s[this.i];
    if (c === '.') { this.i++; return { t: 'set', set: SETS.dot }; }
    if (c === '[') return this.cls();
    if (c === '(') return this.group();
    if (c === '\\') return this.escape();
    const cp = s.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return this.char(cp);
  }

  private group(): Node {
    const s = this.src;
    this.i++;
    if (s[this.i] === '?') {
      const head = s.slice(this.i, this.i + 3);
      if (head.startsWith('?=') || head.startsWith('?!')) throw refuse(`lookahead ${s.slice(this.i - 1, this.i + 2)}...)`, NO_LINEAR);
      if (head === '?<=' || head === '?<!') throw refuse(`lookbehind ${s.slice(this.i - 1, this.i + 3)}...)`, NO_LINEAR);
      if (head.startsWith('?:')) this.i += 2;
      else if (head.startsWith('?<')) this.i = s.indexOf('>', this.i) + 1; // a named group: the name matters not
      else throw refuse(`group ${JSON.stringify(s.slice(this.i - 1, this.i + 2))}`, 'is not supported');
    }
    const n = this.disjunction();
    this.i++; // `)`: the syntax was checked
    return n;
  }

  /** An escape outside a class. */
  private escape(): Node {
    const s = this.src, n = s[this.i + 1];
    if (n && SETS[n] && 'dDwWsS'.includes(n)) { this.i += 2; return { t: 'set', set: this.folded(SETS[n]) }; }
    if (n >= '1' && n <= '9') throw refuse(`backreference \\${/^\d+/.exec(s.slice(this.i + 1))![0]}`, NO_LINEAR);
    if (n === 'k' && s[this.i + 2] === '<') throw refuse(`backreference ${s.slice(this.i, s.indexOf('>', this.i) + 1 || s.length)}`, NO_LINEAR);
    return this.char(this.escapedChar());
  }

  /** The character of an escape (outside or inside a class), consumed. */
  private escapedChar(inClass = false): number {
    const s = this.src, n = s[this.i + 1];
    const hex = (len: number) => (new RegExp(`^[0-9A-Fa-f]{${len}}$`).test(s.slice(this.i + 2, this.i + 2 + len)) ? parseInt(s.slice(this.i + 2, this.i + 2 + len), 16) : -1);
    const simple: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13 };
    if (n in simple) { this.i += 2; return simple[n]; }
    if (inClass && n === 'b') { this.i += 2; return 8; }
    if (n === '0' && !/[0-9]/.test(s[this.i + 2] ?? '')) { this.i += 2; return 0; }
    if (n >= '0' && n <= '9') throw refuse(`octal escape \\${/^\d+/.exec(s.slice(this.i + 1))![0]}`, 'is not supported: write \\xHH');
    if (n === 'c') {
      const x = s[this.i + 2] ?? '';
      // Annex B: inside a class \c also takes a digit or _; a \c with nothing after it is a backslash.
      if (/[A-Za-z]/.test(x) || (inClass && /[0-9_]/.test(x))) { this.i += 3; return x.charCodeAt(0) % 32; }
      this.i += 1;
      return 0x5c;
    }
    if (n === 'x' && hex(2) >= 0) { const v = hex(2); this.i += 4; return v; }
    if (n === 'u' && hex(4) >= 0) {
      let v = hex(4);
      this.i += 6;
      // A surrogate pair written as two escapes is one character.
      const lo = v >= 0xd800 && v <= 0xdbff && s[this.i] === '\\' && s[this.i + 1] === 'u' ? hex(4) : -1;
      if (lo >= 0xdc00 && lo <= 0xdfff) { this.i += 6; v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00); }
      if (v >= 0xd800 && v <= 0xdfff) throw refuse(`lone surrogate \\u${v.toString(16)}`, 'is not a character and cannot be in UTF-8 output');
      return v;
    }
    // An identity escape: the character itself.
    const cp = s.codePointAt(this.i + 1)!;
    this.i += cp > 0xffff ? 3 : 2;
    return cp;
  }

  /** One character: a byte (both cases under -i), or the UTF-8 bytes of a non-ASCII one. */
  private char(cp: number): Node {
    if (cp < 0x80) return { t: 'set', set: this.folded(setOf((b) => b === cp)) };
    const forms = this.forms(cp);
    const seqs: Node[] = forms.map((f) => ({ t: 'seq', items: [...Buffer.from(String.fromCodePoint(f), 'utf8')].map((b) => ({ t: 'set', set: setOf((x) => x === b) }) as Node) }));
    return seqs.length === 1 ? seqs[0] : { t: 'alt', alts: seqs };
  }

  /** A non-ASCII character and, under -i, its lower and upper case forms (single characters). */
  private forms(cp: number): number[] {
    const c = String.fromCodePoint(cp);
    const all = this.fold ? [c, c.toLowerCase(), c.toUpperCase()] : [c];
    return [...new Set(all.filter((f) => [...f].length === 1).map((f) => f.codePointAt(0)!))];
  }

  /** A byte set with the other case of each ASCII letter added under -i. */
  private folded(set: Uint8Array): Uint8Array {
    if (!this.fold) return set;
    const out = Uint8Array.from(set);
    for (let b = 65; b <= 90; b++) if (set[b] || set[b + 32]) out[b] = out[b + 32] = 1;
    return out;
  }

  private cls(): Node {
    const s = this.src;
    const start = this.i;
    this.i++;
    const negate = s[this.i] === '^';
    if (negate) this.i++;
    const bytes = new Uint8Array(256);
    const wide = new Set<number>(); // non-ASCII members
    const add = (a: number, b: number) => {
      if (b < 0x80) { for (let x = a; x <= b; x++) bytes[x] = 1; return; }
      if (a !== b) throw refuse(`range ${JSON.stringify(String.fromCodePoint(a) + '-' + String.fromCodePoint(b))} in ${s.slice(start, s.indexOf(']', start + 1) + 1)}`, 'spans characters outside ASCII: list them one by one');
      wide.add(a);
    };
    while (s[this.i] !== ']') {
      const a = this.classAtom();
      if (s[this.i] === '-' && s[this.i + 1] !== ']') {
        this.i++;
        const b = this.classAtom();
        // Annex B: a class escape (\d) next to `-` makes the `-` a literal.
        if (typeof a === 'number' && typeof b === 'number') { add(a, b); continue; }
        for (const x of [a, 0x2d, b]) if (typeof x === 'number') add(x, x); else x.forEach((v, k) => { if (v) bytes[k] = 1; });
        continue;
      }
      if (typeof a === 'number') add(a, a); else a.forEach((v, k) => { if (v) bytes[k] = 1; });
    }
    this.i++;
    const set = this.folded(bytes);
    if (negate) {
      if (wide.size) throw refuse(`negated class ${s.slice(start, this.i)} with characters outside ASCII`, 'is not supported (it would match single bytes of them)');
      return { t: 'set', set: set.map((v) => 1 - v) };
    }
    if (!wide.size) return { t: 'set', set };
    const alts: Node[] = [...wide].map((cp) => this.char(cp));
    if (set.some((v) => v)) alts.unshift({ t: 'set', set });
    return alts.length === 1 ? alts[0] : { t: 'alt', alts };
  }

  /** A class member: a character (code point), or a set (\d \w \s and their negations). */
  private classAtom(): number | Uint8Array {
    const s = this.src;
    if (s[this.i] !== '\\') { const cp = s.codePointAt(this.i)!; this.i += cp > 0xffff ? 2 : 1; return cp; }
    const n = s[this.i + 1];
    if ('dDwWsS'.includes(n)) { this.i += 2; return SETS[n]; }
    if (n === '-') { this.i += 2; return 0x2d; }
    return this.escapedChar(true);
  }
}

