// The line a terminal would show at the cursor, kept from a console's output bytes as they
// arrive (any split: mid escape sequence, mid UTF-8 character). The password-prompt detector
// (secret-prompt.ts) reads it, so it must see what a person at the console sees, not the bytes:
// colours, charset switches (`ESC ( B`), cursor shows and window titles (OSC) print nothing;
// `\b \b` and `ESC [ K` erase what a console echoed; CR goes back to column 0 and what follows
// overwrites; LF starts a new line.
//
// A small VT parser (the states of Paul Williams' DEC ANSI parser, reduced to the last line):
// one pass over each byte, bounded work per byte (at most a line's length, for an insert or delete
// of characters), and the state kept between writes is bounded (the line is cut to its last
// MAX_LINE characters), so any output, hostile or not, costs linear time.
// Not emulated: the rows above (cursor up or an absolute position starts an unknown line), wide
// characters taking two columns, 8-bit C1 controls (ignored), insert mode.
// Bytes are UTF-8; a byte that is not part of valid UTF-8 is read as Latin-1 (legacy consoles).

/** Characters of the current line kept; earlier ones fall off the front. */
export const MAX_LINE = 1024;
/** Characters kept of the line before (its end). */
export const MAX_PREVIOUS = 256;
/** The cursor moves at most this far right (a CSI asking for column 99999 pads no further). */
const MAX_COLUMN = 2 * MAX_LINE;

/** ground: text; esc: after ESC; escInter: ESC + intermediates (`ESC ( B`); csi: `ESC [`; str: an OSC,
 *  DCS, SOS, PM or APC string; strEsc: ESC inside one (`ESC \\` ends it). */
type State = 'ground' | 'esc' | 'escInter' | 'csi' | 'str' | 'strEsc';

export class TerminalLine {
  private line = '';
  private prev = '';
  private cur = 0;
  private state: State = 'ground';
  private params = '';
  private u8: number[] = [];
  private u8need = 0;
  private feeds = 0;
  // The line as cells while a write runs (a string between writes: less memory per console).
  private cells: string[] = [];

  /** What the current line shows (trailing spaces included). */
  get text(): string { return this.line; }
  /** The end of the line before the current one. */
  get previous(): string { return this.prev; }
  /** Line feeds seen (how a caller tells that a new line began since it last looked). */
  get lines(): number { return this.feeds; }

  write(data: Uint8Array): void {
    // Only the last two lines matter: skip to the start of the one before the last line feed.
    let from = 0;
    const last = data.lastIndexOf(0x0a);
    if (last > 0) {
      const before = data.lastIndexOf(0x0a, last - 1);
      if (before >= 0) { this.reset(); from = before; }
    }
    this.cells = Array.from(this.line);
    for (let i = from; i < data.length; i++) this.byte(data[i]);
    this.line = this.trimmed();
  }

  private reset(): void {
    this.line = ''; this.prev = ''; this.cur = 0; this.state = 'ground'; this.params = ''; this.u8 = []; this.u8need = 0;
  }

  private byte(b: number): void {
    if (b === 0x0a) { this.flushU8(); this.state = 'ground'; this.newLine(); return; } // a line feed ends any sequence
    switch (this.state) {
      case 'ground': return this.ground(b);
      case 'esc':
        if (b < 0x20) return this.controlInSequence(b);
        if (b === 0x5b) { this.state = 'csi'; this.params = ''; return; } // [
        if (b === 0x5d || b === 0x50 || b === 0x58 || b === 0x5e || b === 0x5f) { this.state = 'str'; return; } // ] P X ^ _
        if (b >= 0x20 && b <= 0x2f) { this.state = 'escInter'; return; } // ESC ( B, ESC # 8, ESC % G
        this.state = 'ground';
        return this.escFinal(b);
      case 'escInter':
        if (b < 0x20) return this.controlInSequence(b);
        if (b >= 0x30) this.state = 'ground'; // the final byte
        return;
      case 'csi':
        if (b < 0x20) return this.controlInSequence(b);
        if (b >= 0x30 && b <= 0x3f) { if (this.params.length < 32) this.params += String.fromCharCode(b); return; }
        if (b >= 0x40 && b <= 0x7e) { this.state = 'ground'; this.csi(b); return; }
        if (b > 0x7e) this.state = 'ground'; // not a CSI after all
        return;
      case 'str': // OSC, DCS, SOS, PM, APC: shown nowhere on the line
        if (b === 0x07 || b === 0x18 || b === 0x1a) this.state = 'ground';
        else if (b === 0x1b) this.state = 'strEsc';
        return;
      case 'strEsc':
        if (b === 0x5c) { this.state = 'ground'; return; } // ST
        this.state = 'esc';
        return this.byte(b);
    }
  }

  private controlInSequence(b: number): void {
    if (b === 0x1b) { this.state = 'esc'; return; }
    if (b === 0x18 || b === 0x1a) { this.state = 'ground'; return; } // CAN, SUB abort
    this.control(b); // a terminal executes C0 controls inside a sequence
  }

  private ground(b: number): void {
    if (this.u8need) {
      if ((b & 0xc0) === 0x80) {
        this.u8.push(b);
        if (this.u8.length === this.u8need + 1) this.emitU8();
        return;
      }
      this.flushU8();
    }
    if (b < 0x20 || b === 0x7f) {
      if (b === 0x1b) { this.state = 'esc'; return; }
      return this.control(b);
    }
    if (b < 0x80) return this.put(String.fromCharCode(b));
    const need = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
    if (!need) return this.putCode(b); // not UTF-8: Latin-1
    this.u8 = [b];
    this.u8need = need;
  }

  private emitU8(): void {
    const [b0, b1, b2, b3] = this.u8;
    const cp = this.u8need === 1 ? ((b0 & 0x1f) << 6) | (b1 & 0x3f)
      : this.u8need === 2 ? ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f)
        : ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
    const min = [0, 0x80, 0x800, 0x10000][this.u8need];
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) { this.flushU8(); return; } // overlong or invalid
    this.u8 = []; this.u8need = 0;
    this.putCode(cp);
  }

  /** Bytes of a UTF-8 character that did not complete: each one Latin-1. */
  private flushU8(): void {
    const bytes = this.u8;
    this.u8 = []; this.u8need = 0;
    for (const b of bytes) this.putCode(b);
  }

  private putCode(cp: number): void {
    if (cp >= 0x80 && cp <= 0x9f) return; // C1 controls print nothing
    this.put(String.fromCodePoint(cp));
  }

  private put(ch: string): void {
    const c = this.cells;
    while (c.length < this.cur) c.push(' ');
    c[this.cur++] = ch;
    if (c.length > 2 * MAX_LINE) { const cut = c.length - MAX_LINE; c.splice(0, cut); this.cur = Math.max(0, this.cur - cut); }
  }

  private control(b: number): void {
    if (b === 0x0d) this.cur = 0;
    else if (b === 0x08) this.cur = Math.max(0, this.cur - 1);
    else if (b === 0x09) this.cur = Math.min(MAX_COLUMN, (Math.floor(this.cur / 8) + 1) * 8);
    // BEL, NUL and the other C0 controls show nothing.
  }

  private newLine(): void {
    this.prev = this.cells.join('').slice(-MAX_PREVIOUS);
    this.unknownLine();
    this.feeds++;
  }

  /** The cursor went to a row whose content we never saw. */
  private unknownLine(): void { this.cells = []; this.cur = 0; }

  private escFinal(b: number): void {
    const f = String.fromCharCode(b);
    if (f === 'E' || f === 'D') this.newLine(); // NEL, IND
    else if (f === 'M' || f === 'c') { this.unknownLine(); this.prev = ''; } // RI (up a row), RIS (reset)
    // ESC 7 / 8 (save, restore cursor), ESC = / > (keypad) and the rest show nothing.
  }

  private csi(b: number): void {
    if (this.params.startsWith('?') || this.params.startsWith('>') || this.params.startsWith('=')) return; // private modes
    const nums = this.params.split(';').map((p) => Math.min(9999, parseInt(p, 10) || 0));
    const n = nums[0] || 1;
    const c = this.cells;
    switch (String.fromCharCode(b)) {
      case 'K': // erase in line: to the end, from the start, all
        if (nums[0] === 1) { for (let i = 0; i <= this.cur && i < c.length; i++) c[i] = ' '; } else if (nums[0] === 2) c.length = 0; else if (this.cur < c.length) c.length = this.cur;
        return;
      case 'J': // erase in display: as K for this line; all of it clears the line before too
        if (nums[0] === 0 && this.cur < c.length) c.length = this.cur;
        else if (nums[0] === 1) { for (let i = 0; i <= this.cur && i < c.length; i++) c[i] = ' '; } else if (nums[0] >= 2) { c.length = 0; this.prev = ''; }
        return;
      case 'D': this.cur = Math.max(0, this.cur - n); return;
      case 'C': this.cur = Math.min(MAX_COLUMN, this.cur + n); return;
      case 'G': case '`': this.cur = Math.min(MAX_COLUMN, n - 1); return;
      case 'P': c.splice(this.cur, n); return; // delete characters
      case 'X': for (let i = this.cur; i < this.cur + n && i < c.length; i++) c[i] = ' '; return;
      case '@': // insert blanks: what passes the right margin is gone (so the line stays bounded)
        if (this.cur < c.length) { c.splice(this.cur, 0, ...' '.repeat(Math.min(n, MAX_LINE))); if (c.length > MAX_COLUMN) c.length = MAX_COLUMN; }
        return;
      case 'E': this.newLine(); return; // cursor next line
      case 'B': case 'e': { const col = this.cur; this.newLine(); this.cur = col; return; } // cursor down
      case 'H': case 'f': this.unknownLine(); this.prev = ''; this.cur = Math.min(MAX_COLUMN, (nums[1] || 1) - 1); return;
      case 'A': case 'F': case 'd': this.unknownLine(); this.prev = ''; return; // another row
      // SGR (m), modes (h, l), scrolling and the rest: nothing on this line changes
    }
  }

  private trimmed(): string {
    const c = this.cells;
    if (c.length > MAX_LINE) { const cut = c.length - MAX_LINE; c.splice(0, cut); this.cur = Math.max(0, this.cur - cut); }
    this.cells = [];
    return c.join('');
  }
}
