// Break sequences, as conserver has them: 35 slots (1-9, a-z), each a string with escapes that is
// sent to the console when a user types ^Ecl<slot> (`^Ecl0` sends the console's `break`, default
// 1). Slots 1-4 are conserver's built-in ones unless the relay config redefines them.
//
// String escapes (conserver.cf(5), "break" block):
//   \z      a serial break (the driver's sendBreak: a real BREAK on a UART, RFC 2217 SET-CONTROL on
//           a terminal server, IPMI SOL's break, SSH's "break" request)
//   \d      pause for the sequence's delay (default breakDelayMs of the console, 250 ms)
//   \ooo    the byte with that octal value (1-3 digits)
//   \a \b \f \n \r \t \v \\ \^   the usual characters; `\^` is a literal caret
//   ^c      the control character c (^b = 0x02, ^? = DEL); `^` at the end is a literal caret
// Anything else after a backslash is an error, found when the config is loaded.
import type { BreakDef } from './config.ts';

export type BreakStep = { kind: 'bytes'; data: Buffer } | { kind: 'break' } | { kind: 'delay' };

/** conserver's predefined sequences (conserver.cf(5)). */
export const BUILTIN_BREAKS: Readonly<Record<string, BreakDef>> = {
  1: { string: '\\z' }, // serial break
  2: { string: '\\r~^b' }, // Sun "alternate break" (~^B after a newline)
  3: { string: '#.' }, // Sun LOM / ALOM
  4: { string: '\\r\\d~\\d^b' }, // alternate break for consoles that need pauses between the keys
};

const SIMPLE: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '^': 94 };

/** Parses a break (or idle) string into steps; throws an Error saying what is wrong. */
export function parseBreakString(s: string): BreakStep[] {
  const steps: BreakStep[] = [];
  let bytes: number[] = [];
  const flush = () => { if (bytes.length) { steps.push({ kind: 'bytes', data: Buffer.from(bytes) }); bytes = []; } };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') {
      const e = s[++i];
      if (e === undefined) throw new Error('ends in a lone backslash (write \\\\ for one)');
      if (e === 'z') { flush(); steps.push({ kind: 'break' }); continue; }
      if (e === 'd') { flush(); steps.push({ kind: 'delay' }); continue; }
      if (e >= '0' && e <= '7') {
        let oct = e;
        while (oct.length < 3 && s[i + 1] >= '0' && s[i + 1] <= '7') oct += s[++i];
        const v = parseInt(oct, 8);
        if (v > 255) throw new Error(`\\${oct} is more than one byte`);
        bytes.push(v);
        continue;
      }
      if (e in SIMPLE) { bytes.push(SIMPLE[e]); continue; }
      throw new Error(`unknown escape \\${e} (known: \\z \\d \\ooo \\a \\b \\f \\n \\r \\t \\v \\\\ \\^)`);
    }
    if (ch === '^' && i + 1 < s.length) {
      const c = s[++i];
      if (c === '?') { bytes.push(0x7f); continue; }
      const code = c.toUpperCase().charCodeAt(0);
      if (code < 0x40 || code > 0x5f) throw new Error(`^${c} is not a control character (use ^@ to ^_, ^a to ^z or ^?)`);
      bytes.push(code - 0x40);
      continue;
    }
    for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
  }
  flush();
  return steps;
}

/** What is wrong with a break string, or undefined (for config validation). */
export function breakStringProblem(s: string): string | undefined {
  try { parseBreakString(s); return undefined; } catch (e) { return (e as Error).message; }
}

/** The break slots a console may use, resolved: built-ins overlaid with the config's `breaks`,
 *  narrowed to the console's breaklist. */
export function breakTable(defined: Record<string, BreakDef> | undefined, breaklist?: string[]): Map<string, BreakDef> {
  const all: Record<string, BreakDef> = { ...BUILTIN_BREAKS, ...(defined ?? {}) };
  const ids = Object.keys(all).filter((id) => !breaklist || breaklist.includes(id)).sort(slotOrder);
  return new Map(ids.map((id) => [id, all[id]]));
}

function slotOrder(a: string, b: string): number {
  const rank = (s: string) => (/^[0-9]$/.test(s) ? 0 : 1);
  return rank(a) - rank(b) || a.localeCompare(b);
}

export interface BreakTarget {
  write(data: Buffer): Promise<void>;
  sendBreak(): Promise<void>;
}

/** Sends a parsed sequence: bytes, serial breaks and pauses in order. */
export async function runBreak(steps: BreakStep[], target: BreakTarget, delayMs: number): Promise<void> {
  for (const st of steps) {
    if (st.kind === 'bytes') await target.write(st.data);
    else if (st.kind === 'break') await target.sendBreak();
    else await new Promise((r) => setTimeout(r, delayMs));
  }
}

/** A readable form of a sequence for ^Ecl? (the config's own spelling). */
export function describeBreak(def: BreakDef): string {
  return JSON.stringify(def.string) + (def.delayMs !== undefined ? ` (delay ${def.delayMs} ms)` : '') + (def.confirm ? ' (confirm)' : '');
}
