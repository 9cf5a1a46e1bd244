// Text from someone else (a user, a relay, a file) made safe to show on a terminal or in a log line:
// it can then not move the cursor, clear or retitle the screen, change colours, reorder text
// (bidi overrides), hide text (zero-width and other invisible characters) or start a new line.
// The CLI renders every string it did not compose itself with safeText (cli/print.ts); the cloud
// cleans relay-supplied reasons and details with it on arrival (messages.ts). Pure, no Node APIs:
// the web viewer and cli/readable.ts (the byte-level rendering of typed input) use it too.

/** Characters that would act on the terminal or hide, reorder or break the text around them:
 *  controls (C0, DEL, C1), format characters (bidi overrides and isolates, zero-width space and
 *  joiners, soft hyphen, tags), line and paragraph separators, lone surrogates, and the other
 *  default-ignorable characters (variation selectors, Hangul fillers) a terminal draws as nothing. */
export const UNSAFE_CHAR = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}]/u;
const UNSAFE_ALL = new RegExp(UNSAFE_CHAR.source, 'gu');

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

/** How safeText shows one unsafe character: a C0 control or DEL in caret notation (`^[`, `^M`,
 *  `^?`, as cli/readable.ts shows typed bytes), anything else as its code point, `\u202e`, or
 *  `\u{e0041}` above U+FFFF. */
export function escapeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20) return '^' + String.fromCharCode(cp + 0x40);
  if (cp === 0x7f) return '^?';
  return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${hex4(cp)}`;
}

/**
 * `s` as one line of visible text: every character UNSAFE_CHAR matches is shown escaped (see
 * escapeChar), every other character as itself. The result holds no control, format or separator
 * character, so safeText(safeText(s)) === safeText(s).
 *
 * It is for reading, not for parsing back: `^` and `\` stay as they are (the CLI's own messages
 * use conserver's `^Ec` notation), so a literal `^[` reads like an escaped ESC. `--json` output
 * carries the exact strings.
 */
export function safeText(s: string): string {
  return s.replace(UNSAFE_ALL, escapeChar);
}

/** `raw` quoted for a message (a name, a glob, a path someone sent): JSON string syntax, cut to
 *  80 characters, and everything outside printable ASCII as \uXXXX, so a hostile value can neither
 *  reorder or hide the message it is shown in, nor pass a look-alike letter for an ASCII one.
 *  Not a string: its type. */
export function shownName(raw: unknown): string {
  if (typeof raw !== 'string') return typeof raw;
  const cut = raw.length > 80 ? `${raw.slice(0, 80)}...` : raw;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${hex4(c.charCodeAt(0))}`);
}

/**
 * JSON or YAML text made safe to print without changing what it parses to: every unsafe
 * character except the line breaks of the text's own layout becomes a `\uXXXX` escape (UTF-16
 * units, so a character above U+FFFF becomes its surrogate pair). Only valid where every such
 * character stands inside a double-quoted string, which JSON.stringify guarantees (it escapes C0
 * controls itself, not DEL, C1 controls, bidi or zero-width characters).
 */
export function escapeInQuoted(text: string): string {
  return text.replace(UNSAFE_ALL, (ch) => (ch === '\n' ? ch : [...Array(ch.length).keys()].map((i) => `\\u${hex4(ch.charCodeAt(i))}`).join('')));
}
