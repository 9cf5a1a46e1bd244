// The escape-sequence detector of `cloudcons attach`: a pure state machine, bytes in and events
// out, that follows conserver's client state machine (conserver/group.c S_ESC1/S_CMD/S_HALT1).
//
// Rules, for the default escape ^E c:
// - Ordinary bytes come out as `data` from the same push() that brought them; only the bytes of a
//   possible escape are held, so a sequence split across reads at any offset gives the same events.
// - ^E c, then one key, is a command (table below). The key is one character: an ASCII byte or a
//   whole UTF-8 sequence, so a stray non-ASCII key never leaks half a character to the console.
//   A sequence cut short by a byte that cannot continue it is the key on its own (its bytes as
//   latin1 in `char`), and that byte is then read afresh.
// - ^E followed by anything other than c passes both bytes through unchanged (a lone ^E reaches
//   the console). ^E ^E passes one ^E and still waits for c, so ^E ^E c sends ^E and starts a
//   command, exactly like conserver.
// - Space, ^M and ^J after the escape abort it (`ignored`); any other unknown key gives `unknown`
//   and nothing is sent to the console. After `l`, a key outside [0-9a-z?] gives `aborted`.
import { BadParameter } from '../protocol/errors.ts';

export type EscapeCommand =
  | { kind: 'disconnect' } // .  ^D  ^C
  | { kind: 'attach' } // a: take the write lock if nobody holds it
  | { kind: 'force' } // f: take the write lock, the current writer becomes a spy
  | { kind: 'spy' } // s: give up the write lock
  | { kind: 'replay'; lines: number } // r: 20, p: 60, ^R: 1
  | { kind: 'who' } // w
  | { kind: 'break'; id: string } // l0 .. l9, la .. lz
  | { kind: 'listBreaks' } // l?
  | { kind: 'help' } // ?  h
  | { kind: 'ignored' } // space, ^M, ^J: escape aborted on purpose
  | { kind: 'aborted'; char: string } // l followed by a key that names no break
  | { kind: 'unknown'; char: string }; // any other key

export type EscapeEvent = { type: 'data'; data: Buffer } | { type: 'command'; cmd: EscapeCommand };

/** conserver's default escape, ^E c. */
export const DEFAULT_ESCAPE: Buffer = Buffer.from([0x05, 0x63]);

/** Parses one character of an escape spec at `s[i]`; returns [byte, next index] or null. */
function parseChar(s: string, i: number): [number, number] | null {
  let high = 0;
  if (s[i] === 'M' && s[i + 1] === '-' && i + 2 < s.length) { high = 0x80; i += 2; }
  const c = s[i];
  if (c === undefined) return null;
  if (c === '^') {
    const n = s[i + 1];
    if (n === undefined) return null;
    if (n === '?') return [high | 0x7f, i + 2];
    const u = n.toUpperCase().charCodeAt(0);
    if (u >= 0x40 && u <= 0x5f) return [high | (u - 0x40), i + 2];
    return null;
  }
  const oct = /^\\([0-7]{3})/.exec(s.slice(i));
  if (oct) {
    const v = parseInt(oct[1]!, 8);
    return v > 0xff || (high && v > 0x7f) ? null : [high | v, i + 4];
  }
  const code = c.charCodeAt(0);
  if (code > 0x7e || code < 0x20) return null;
  return [high | code, i + 1];
}

/**
 * Parses conserver's `-e` notation: exactly two characters, each one of `^X` (control-X, case
 * insensitive, `^?` = DEL), `\ooo` (three octal digits), `M-x` (x with the high bit set, as in
 * conserver's cat -v style) or a printable ASCII character. A `\` not followed by three octal
 * digits is a literal backslash. Throws BadParameter naming the spec when it is not two such
 * characters.
 */
export function parseEscapeSpec(spec: string): Buffer {
  const bad = (why: string) => new BadParameter(`invalid escape sequence '${spec}': ${why} (expected two characters such as ^Ec, ^]q or \\035q)`);
  const a = parseChar(spec, 0);
  if (!a) throw bad('cannot read the first character');
  const b = parseChar(spec, a[1]);
  if (!b) throw bad('cannot read the second character');
  if (b[1] !== spec.length) throw bad(`unexpected '${spec.slice(b[1])}' after two characters`);
  return Buffer.from([a[0], b[0]]);
}

function displayByte(b: number): string {
  if (b >= 0x80) return 'M-' + displayByte(b & 0x7f);
  if (b < 0x20) return '^' + String.fromCharCode(b + 0x40);
  if (b === 0x7f) return '^?';
  if (b === 0x5e) return '\\136'; // a bare ^ would read as the start of ^X
  return String.fromCharCode(b);
}

/** Shows an escape the way `-e` takes it, e.g. `^Ec`; parseEscapeSpec(displayEscape(x)) equals x. */
export function displayEscape(buf: Buffer): string {
  return [...buf].map(displayByte).join('');
}

/** The escape help, in conserver's style; lines end in \r\n because the terminal is raw. */
export function HELP_TEXT(escapeDisplay: string): string {
  const rows: Array<[string, string]> = [
    ['.', 'disconnect (also ^D, ^C)'],
    ['a', 'attach read-write if nobody is'],
    ['f', 'force attach read-write (the current writer becomes a spy)'],
    ['s', 'switch to spy mode (read-only)'],
    ['r', 'replay the last 20 lines'],
    ['p', 'replay the last 60 lines'],
    ['^R', 'replay the last line'],
    ['w', 'who is on this console'],
    ['l?', 'list the break sequences'],
    ['l0', 'send the default break'],
    ['l1-9a-z', 'send break sequence 1-9 or a-z'],
    ['? h', 'print this help'],
    ['space', 'abort the escape sequence (also ^M, ^J)'],
  ];
  return [
    `[help: type ${escapeDisplay} then one of]`,
    ...rows.map(([k, v]) => ` ${k.padEnd(8)} ${v}`),
    '[the first escape character followed by any other key is sent to the console as typed]',
  ].join('\r\n') + '\r\n';
}

type State = 'normal' | 'esc1' | 'cmd' | 'brk';

/** UTF-8 length announced by a lead byte, or 1 for ASCII and bytes that start no sequence. */
function utf8Length(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 1;
}

/** Splits console input into data to send and escape commands; see the rules at the top. */
export class EscapeParser {
  private readonly e0: number;
  private readonly e1: number;
  private state: State = 'normal';
  /** The key being read in state cmd/brk when it is a multi-byte UTF-8 character. */
  private key: number[] = [];

  constructor(escape: Buffer = DEFAULT_ESCAPE) {
    if (escape.length !== 2) throw new BadParameter(`escape sequence must be 2 bytes, got ${escape.length}`);
    this.e0 = escape[0]!;
    this.e1 = escape[1]!;
  }

  /** True while bytes of an escape are held back waiting for more input. */
  get pending(): boolean { return this.state !== 'normal'; }

  push(chunk: Buffer): EscapeEvent[] {
    const out: EscapeEvent[] = [];
    const data = (buf: Buffer) => {
      if (buf.length === 0) return;
      const last = out[out.length - 1];
      if (last?.type === 'data') last.data = Buffer.concat([last.data, buf]);
      else out.push({ type: 'data', data: Buffer.from(buf) });
    };
    let runStart = 0; // start of the ordinary bytes not yet emitted
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.state === 'normal') {
        if (b === this.e0) { data(chunk.subarray(runStart, i)); this.state = 'esc1'; }
        continue;
      }
      runStart = i + 1;
      if (this.state === 'esc1') {
        if (b === this.e1) this.state = 'cmd';
        else if (b === this.e0) data(Buffer.from([this.e0]));
        else { data(Buffer.from([this.e0])); this.state = 'normal'; runStart = i; }
        continue;
      }
      // state cmd or brk: collect one character, then act on it.
      if (this.key.length > 0 && (b & 0xc0) !== 0x80) {
        // A broken UTF-8 sequence: the bytes so far are the key; read this byte afresh.
        this.finishKey(out, Buffer.from(this.key.splice(0)).toString('latin1'));
        runStart = i; i--;
        continue;
      }
      this.key.push(b);
      const want = utf8Length(this.key[0]!);
      if (this.key.length < want) continue;
      const bytes = Buffer.from(this.key.splice(0));
      const text = bytes.toString('utf8');
      this.finishKey(out, want > 1 && Buffer.from(text).equals(bytes) ? text : bytes.toString('latin1'));
    }
    if (this.state === 'normal') data(chunk.subarray(runStart));
    return out;
  }

  private finishKey(out: EscapeEvent[], char: string): void {
    const st = this.state;
    this.state = 'normal';
    const cmd = st === 'brk' ? breakCommand(char) : this.command(char);
    if (cmd) out.push({ type: 'command', cmd });
  }

  private command(char: string): EscapeCommand | null {
    switch (char) {
      case '.': case '\x04': case '\x03': return { kind: 'disconnect' };
      case 'a': return { kind: 'attach' };
      case 'f': return { kind: 'force' };
      case 's': return { kind: 'spy' };
      case 'r': return { kind: 'replay', lines: 20 };
      case 'p': return { kind: 'replay', lines: 60 };
      case '\x12': return { kind: 'replay', lines: 1 };
      case 'w': return { kind: 'who' };
      case 'l': this.state = 'brk'; return null;
      case '?': case 'h': return { kind: 'help' };
      case ' ': case '\r': case '\n': return { kind: 'ignored' };
      default: return { kind: 'unknown', char };
    }
  }
}

function breakCommand(char: string): EscapeCommand {
  if (char === '?') return { kind: 'listBreaks' };
  if (/^[0-9a-z]$/.test(char)) return { kind: 'break', id: char };
  return { kind: 'aborted', char };
}
