// Shell-style globs on console names: `*` (any run), `?` (one character), `[ab]`, `[a-z]`,
// `[!a]` / `[^a]` (not a), and a `]` right after `[` or `[!` is literal. Used by `cloudcons grep
// --console`, access rules (consoles, relays) and the web viewer's list filter. Dependency-free,
// so the browser bundle can use it too.
//
// Matched directly, never through a regex: the classic wildcard walk that remembers only the last
// `*` takes at most len(name) x len(glob) steps, whatever the glob (a regex of many `.*` can take
// exponential time on a backtracking engine).

import { shownName } from './safe-text.ts';

/** A glob that cannot match as written: an unclosed `[`, a range out of order, too long. */
export class GlobError extends Error {}

/** Longest glob accepted (characters); a console name is at most 128. */
export const GLOB_MAX = 256;

type Tok =
  | { k: 'star' }
  | { k: 'any' }
  | { k: 'lit'; c: string }
  | { k: 'set'; negate: boolean; ranges: [number, number][] };

/** The parts of a glob. Throws GlobError (saying what and where) on a glob no console name could
 *  be meant by. */
function parse(glob: string): Tok[] {
  if (glob.length > GLOB_MAX) throw new GlobError(`glob ${shownName(glob)}: ${glob.length} characters, longer than ${GLOB_MAX}`);
  const chars = Array.from(glob);
  const out: Tok[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') { if (out.at(-1)?.k !== 'star') out.push({ k: 'star' }); } // `**` is `*`
    else if (ch === '?') out.push({ k: 'any' });
    else if (ch === '[') {
      let j = i + 1;
      const negate = chars[j] === '!' || chars[j] === '^';
      if (negate) j++;
      const members: string[] = [];
      for (; j < chars.length && (chars[j] !== ']' || !members.length); j++) members.push(chars[j]);
      if (j >= chars.length) throw new GlobError(`glob ${shownName(glob)}: the [ at position ${i + 1} has no closing ]`);
      const ranges: [number, number][] = [];
      for (let k = 0; k < members.length; k++) {
        const a = members[k].codePointAt(0)!;
        if (members[k + 1] === '-' && k + 2 < members.length) {
          const b = members[k + 2].codePointAt(0)!;
          if (a > b) throw new GlobError(`glob ${shownName(glob)}: the range ${members[k]}-${members[k + 2]} is out of order`);
          ranges.push([a, b]);
          k += 2;
        } else ranges.push([a, a]);
      }
      out.push({ k: 'set', negate, ranges });
      i = j;
    } else out.push({ k: 'lit', c: ch });
  }
  return out;
}

const lower = (c: string) => c.toLowerCase();
const upper = (c: string) => c.toUpperCase();

/** A test of names against `glob` (whole names; `ignoreCase` for the web viewer's filter).
 *  Throws GlobError on a glob that cannot be meant. */
export function globMatcher(glob: string, opts: { ignoreCase?: boolean } = {}): (name: string) => boolean {
  const toks = parse(glob);
  const fold = !!opts.ignoreCase;
  const inSet = (t: Extract<Tok, { k: 'set' }>, c: string) => {
    const cps = fold ? [c, lower(c), upper(c)].map((x) => x.codePointAt(0)!) : [c.codePointAt(0)!];
    return cps.some((cp) => t.ranges.some(([a, b]) => cp >= a && cp <= b)) !== t.negate;
  };
  const one = (t: Tok, c: string) => {
    switch (t.k) {
      case 'any': return true;
      case 'lit': return t.c === c || (fold && lower(t.c) === lower(c));
      case 'set': return inSet(t, c);
      default: return false;
    }
  };
  return (name: string) => {
    const s = Array.from(name);
    let ti = 0, si = 0, star = -1, starSi = 0;
    while (si < s.length) {
      const t = toks[ti];
      if (t?.k === 'star') { star = ti++; starSi = si; continue; }
      if (t && one(t, s[si])) { ti++; si++; continue; }
      // A mismatch: let the last `*` take one more character and go on after it.
      if (star < 0) return false;
      ti = star + 1;
      si = ++starSi;
    }
    while (toks[ti]?.k === 'star') ti++;
    return ti === toks.length;
  };
}

/** The problem with a glob, or undefined when it is fine. */
export function globProblem(glob: string): string | undefined {
  try { parse(glob); return undefined; } catch (e) { return (e as Error).message; }
}
