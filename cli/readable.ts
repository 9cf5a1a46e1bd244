// Shows console input bytes readably for the audit log (the CLI's and the web viewer's: no Node APIs).
// Strings (names, reasons, details) are shown by protocol/safe-text.ts, with the same caret notation.
import { UNSAFE_CHAR as UNSAFE } from '../protocol/safe-text.ts';

/** Length of the valid, shortest-form UTF-8 sequence starting at buf[i] (2-4), or 0 if none. */
function utf8At(buf: Uint8Array, i: number): number {
  const b = buf[i]!;
  let n: number, lo = 0x80, hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) n = 2;
  else if (b >= 0xe0 && b <= 0xef) { n = 3; if (b === 0xe0) lo = 0xa0; if (b === 0xed) hi = 0x9f; }
  else if (b >= 0xf0 && b <= 0xf4) { n = 4; if (b === 0xf0) lo = 0x90; if (b === 0xf4) hi = 0x8f; }
  else return 0;
  if (i + n > buf.length) return 0;
  const b1 = buf[i + 1]!;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < n; k++) if ((buf[i + k]! & 0xc0) !== 0x80) return 0;
  return n;
}

const hex = (b: number) => '\\x' + b.toString(16).padStart(2, '0');

/**
 * Renders bytes as one line of text that maps back to exactly one byte string:
 * - printable ASCII (0x20-0x7e) as itself, except `^` as `\^` and `\` as `\\`;
 * - control bytes 0x00-0x1f in caret notation (`^@`, `^C`, `^M`, `^[`, `^\`, `^^`, `^_`), DEL as `^?`;
 * - a valid UTF-8 sequence as its character, unless that character is one UNSAFE_CHAR names (a
 *   control, format, line/paragraph separator or other invisible character, e.g. U+0085, U+200B,
 *   U+202E, U+FE0F), whose bytes are then shown as below;
 * - every other byte as `\xNN` (two lowercase hex digits).
 * So `^` always starts a two-character control token and `\` always starts `\\`, `\^` or `\xNN`.
 */
const utf8 = new TextDecoder();

export function readable(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    if (b < 0x20) out += '^' + String.fromCharCode(b + 0x40);
    else if (b === 0x7f) out += '^?';
    else if (b === 0x5e) out += '\\^';
    else if (b === 0x5c) out += '\\\\';
    else if (b < 0x7f) out += String.fromCharCode(b);
    else {
      const n = utf8At(bytes, i);
      const ch = n ? utf8.decode(bytes.subarray(i, i + n)) : '';
      if (n && !UNSAFE.test(ch)) { out += ch; i += n; continue; }
      for (let k = 0; k < (n || 1); k++) out += hex(bytes[i + k]!);
      i += n || 1;
      continue;
    }
    i++;
  }
  return out;
}
