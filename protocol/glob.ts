// Shell-style globs on console names: `*` (any run), `?` (one character), `[ab]`, `[a-z]`,
// `[!a]` / `[^a]` (not a), and a `]` right after `[` or `[!` is literal. Used by `cloudcons grep
// --console`, access rules and the web viewer's list filter. Dependency-free, so the browser
// bundle can use it too.

/** A glob that cannot match as written: an unclosed `[`, a range out of order. */
export class GlobError extends Error {}

/** Escapes a character for use in a regex outside a class. */
const outside = (ch: string) => (/[.+^${}()|[\]\\*?/]/.test(ch) ? `\\${ch}` : ch);
/** Escapes a character for use inside a regex class. */
const inside = (ch: string) => (/[\\\]^[-]/.test(ch) ? `\\${ch}` : ch);

/** The regex a glob stands for, anchored at both ends. Throws GlobError (saying what and where)
 *  on a glob no console name could be meant by. */
export function globToRegex(glob: string, flags = ''): RegExp {
  const chars = Array.from(glob);
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      let j = i + 1;
      const negate = chars[j] === '!' || chars[j] === '^';
      if (negate) j++;
      const members: string[] = [];
      for (; j < chars.length && (chars[j] !== ']' || !members.length); j++) members.push(chars[j]);
      if (j >= chars.length) throw new GlobError(`glob ${JSON.stringify(glob)}: the [ at position ${i + 1} has no closing ]`);
      let cls = '';
      for (let k = 0; k < members.length; k++) {
        const a = members[k];
        if (members[k + 1] === '-' && k + 2 < members.length) {
          const b = members[k + 2];
          if (a.codePointAt(0)! > b.codePointAt(0)!) throw new GlobError(`glob ${JSON.stringify(glob)}: the range ${a}-${b} is out of order`);
          cls += `${inside(a)}-${inside(b)}`;
          k += 2;
        } else cls += inside(a);
      }
      re += `[${negate ? '^' : ''}${cls}]`;
      i = j;
    } else re += outside(ch);
  }
  return new RegExp(`^${re}$`, flags.includes('u') ? flags : `${flags}u`);
}

/** The problem with a glob, or undefined when it is fine. */
export function globProblem(glob: string): string | undefined {
  try { globToRegex(glob); return undefined; } catch (e) { return (e as Error).message; }
}
