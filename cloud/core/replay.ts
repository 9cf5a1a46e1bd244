// Replay, export and search over a console's log (LogStore items), as streaming formatters that do
// no I/O of their own, so the HTTP API streams them and the CLI can apply them to chunks it fetched.
//
// Formats:
//   raw        the exact bytes (lost and not-yet-uploaded ranges are simply absent)
//   text       the bytes, with explicit markers for lost / missing ranges, and optionally each
//              line prefixed with its arrival time (`timestamps`) and conserver-style event lines
//              interleaved (`marks`: [-- MARK -- ...] every `markMs`, [-- alice attached --] ...)
//   asciicast  asciicast v2 (header line + [seconds, "o", text] events), plays in `asciinema play`
//   chunks     NDJSON, one item per line: {"o","ts","d"(base64)} | {"gap":{...}} | {"pending":{...}}
import type { LogItem } from './log-store.ts';
import type { AuditRecord } from './ports.ts';
import { safeText } from '../../protocol/safe-text.ts';
import { compile, LineMatcher, type Program } from './grep-dfa.ts';
import { parsePattern, requiredLiterals, type PatternLimits } from './grep-pattern.ts';

export type ReplayFormat = 'raw' | 'text' | 'asciicast' | 'chunks';
export const REPLAY_FORMATS: readonly ReplayFormat[] = ['raw', 'text', 'asciicast', 'chunks'];

export interface FormatOptions {
  timestamps?: boolean;
  marks?: boolean;
  /** Interval of [-- MARK --] lines with `marks` (ms). Default 1 hour. */
  markMs?: number;
  /** Audit events of the range, oldest first (shown with `marks`). */
  events?: AuditRecord[];
  /** asciicast header. */
  console?: string;
  width?: number;
  height?: number;
}

export const DEFAULT_MARK_MS = 3600_000;

const CRLF = '\r\n';

/** `[2026-11-25 14:03:02.123Z]`: UTC, to the millisecond. */
export function stamp(ts: number): string {
  return new Date(ts).toISOString().replace('T', ' ');
}

/** An event's marker text. Names and details come from users and relays, and the CLI prints the
 *  text format as it prints console output: each is rendered by safeText here. */
function describe(e: AuditRecord): string | undefined {
  const who = safeText(e.user ?? 'someone');
  const detail = e.detail === undefined ? undefined : safeText(e.detail);
  switch (e.type) {
    case 'session.attach': return `${who} attached`;
    case 'session.detach': return `${who} detached`;
    case 'lock.take': return `${who} took the write lock`;
    case 'lock.force': return `${who} forced the write lock`;
    case 'lock.bumped': return `${who} was bumped to spy`;
    case 'lock.release': return `${who} released the write lock`;
    case 'break': return `${who} sent a ${detail ?? 'break'}`;
    case 'console.up': return `console up`;
    case 'console.down': return `console down${detail ? ` (${detail})` : ''}`;
    default: return undefined;
  }
}

/** Streaming formatter: feed items in offset order with push(), then end(). */
export class Formatter {
  private atLineStart = true;
  private nextMark = 0;
  private ev = 0;
  private t0?: number;
  private lastTs = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly events: AuditRecord[];

  constructor(readonly format: ReplayFormat, private readonly o: FormatOptions = {}) {
    this.events = (o.marks ? o.events ?? [] : []).filter((e) => e.offset !== undefined && describe(e));
  }

  private headerDone = false;
  /** The asciicast header line, once (before the first event, or at the end of an empty cast). */
  private header(t0: number): string {
    if (this.format !== 'asciicast' || this.headerDone) return '';
    this.headerDone = true;
    this.t0 = t0;
    return JSON.stringify({ version: 2, width: this.o.width ?? 80, height: this.o.height ?? 24, timestamp: Math.floor(t0 / 1000), title: this.o.console, env: { TERM: 'xterm-256color' } }) + '\n';
  }

  push(it: LogItem): Buffer {
    switch (this.format) {
      case 'raw': return it.kind === 'data' ? it.data : EMPTY;
      case 'chunks':
        if (it.kind === 'data') return Buffer.from(JSON.stringify({ o: it.offset, ts: it.ts, d: it.data.toString('base64') }) + '\n');
        return Buffer.from(JSON.stringify(it.kind === 'gap' ? { gap: { o: it.offset, bytes: it.bytes, t0: it.t0, t1: it.t1, reason: it.reason } } : { pending: { o: it.offset, bytes: it.bytes } }) + '\n');
      case 'asciicast': {
        const text = it.kind === 'data' ? this.decoder.decode(it.data, { stream: true }) : `${CRLF}[-- ${marker(it)} --]${CRLF}`;
        if (!text) return EMPTY;
        const ts = it.kind === 'data' ? it.ts : it.kind === 'gap' ? it.t0 : undefined;
        const head = this.header(ts ?? Date.now());
        const at = Math.max(0, ((ts ?? this.lastTs) - this.t0!) / 1000);
        if (ts !== undefined) this.lastTs = Math.max(this.lastTs, ts);
        return Buffer.from(head + JSON.stringify([Number(at.toFixed(6)), 'o', text]) + '\n');
      }
      case 'text': return this.text(it);
    }
  }

  private text(it: LogItem): Buffer {
    if (it.kind !== 'data') return Buffer.from(this.line(marker(it), it.offset));
    const parts: (Buffer | string)[] = [];
    let p = 0;
    const data = it.data;
    // Events at offsets inside this chunk go between its bytes.
    while (p < data.length) {
      const off = it.offset + p;
      const e = this.events[this.ev];
      // An event that falls on a line ending goes after it (no empty line left behind).
      const at = e ? lineEndAfter(data, e.offset! - it.offset) + it.offset : Infinity;
      if (e && at <= off) { parts.push(this.line(describe(e)!, off, e.time)); this.ev++; continue; }
      if (this.o.marks && it.ts >= this.nextMark) {
        const step = this.o.markMs ?? DEFAULT_MARK_MS;
        if (this.nextMark) parts.push(this.line(`MARK -- ${stamp(Math.floor(it.ts / step) * step)}`, off));
        this.nextMark = (Math.floor(it.ts / step) + 1) * step;
      }
      const upto = Math.min(data.length, e ? at - it.offset : data.length);
      if (!this.o.timestamps) { parts.push(data.subarray(p, upto)); this.atLineStart = data[upto - 1] === 0x0a; p = upto; continue; }
      let q = p;
      while (q < upto) {
        if (this.atLineStart) { parts.push(`[${stamp(it.ts)}] `); this.atLineStart = false; }
        const nl = data.indexOf(0x0a, q);
        const stop = nl < 0 || nl >= upto ? upto : nl + 1;
        parts.push(data.subarray(q, stop));
        if (stop === nl + 1) this.atLineStart = true;
        q = stop;
      }
      p = upto;
    }
    return Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
  }

  /** A marker line of its own: `[-- text --]`, on a fresh line. */
  private line(text: string, _offset: number, time?: number): string {
    const lead = this.atLineStart ? '' : CRLF;
    this.atLineStart = true;
    const ts = this.o.timestamps && time !== undefined ? `[${stamp(time)}] ` : '';
    return `${lead}${ts}[-- ${text} --]${CRLF}`;
  }

  /** Whatever is left at the end (events after the last byte, a dangling UTF-8 sequence). */
  end(): Buffer {
    if (this.format === 'text') {
      let s = '';
      while (this.ev < this.events.length) { const e = this.events[this.ev++]; s += this.line(describe(e)!, e.offset!, e.time); }
      return Buffer.from(s);
    }
    if (this.format === 'asciicast') {
      const head = this.header(Date.now());
      const rest = this.decoder.decode();
      return Buffer.from(head + (rest ? JSON.stringify([Number(((this.lastTs - this.t0!) / 1000).toFixed(6)), 'o', rest]) + '\n' : ''));
    }
    return EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

function marker(it: Exclude<LogItem, { kind: 'data' }>): string {
  if (it.kind === 'gap') return `cloudcons: ${it.bytes} bytes of output lost (${safeText(it.reason)})`; // a relay's words
  return `cloudcons: ${it.bytes} bytes not uploaded by the relay yet`;
}

/** `rel` moved past a line ending it points into (`\r\n` or `\n`) within `data`. */
function lineEndAfter(data: Buffer, rel: number): number {
  if (rel < 0 || rel >= data.length) return rel;
  if (data[rel] === 0x0d && data[rel + 1] === 0x0a) return rel + 2;
  if (data[rel] === 0x0a) return rel + 1;
  return rel;
}

/** Parses a time for --since/--until: `90s`, `15m`, `2h`, `3d`, `1w` ago, `now`, an ISO date or
 *  date-time (`2026-11-25`, `2026-11-25 14:00`, `...T14:00:00Z`), or ms since the epoch. */
export function parseTime(s: string, now = Date.now()): number | undefined {
  const t = s.trim();
  if (t === 'now') return now;
  const rel = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)(?:\s*ago)?$/.exec(t);
  if (rel) return now - Number(rel[1]) * { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 604_800_000 }[rel[2] as 's'];
  if (/^\d{12,}$/.test(t)) return Number(t);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) return undefined;
  const ms = Date.parse(t.replace(' ', 'T'));
  return Number.isNaN(ms) ? undefined : ms;
}

// ------------------------------------------------------------------------------------------ grep
export interface GrepHit { console: string; time: number; offset: number; line: string }

/** A compiled grep pattern (grep-pattern.ts says what it means and what is refused). */
export interface GrepPattern {
  program: Program;
  ignoreCase: boolean;
  /** Byte strings every matching line contains (the trigram index and a fast pre-check);
   *  lowercase under -i. */
  literals: Buffer[];
}

/** Compiles a user's pattern; BadParameter (`pattern: ...`) says what is wrong or refused. */
export function grepPattern(pattern: string, ignoreCase: boolean, limits?: PatternLimits): GrepPattern {
  const node = parsePattern(pattern, ignoreCase, limits);
  return { program: compile(node), ignoreCase, literals: requiredLiterals(node, ignoreCase) };
}

/** What one grep request may spend, shared by the consoles it scans. */
export interface GrepBudget {
  /** Stop scanning at this time (ms since the epoch). */
  deadline: number;
  /** Aborted when the requester went away: the scan ends at its next step. */
  signal?: AbortSignal;
  /** Bytes scanned so far. */
  scanned: number;
  /** Why the scan stopped before the end, once it did. */
  stopped?: string;
}

const WINDOW = 1 << 20;
/** Matcher work between two returns to the event loop: a few ms (grep-dfa.ts counts work). */
export const GREP_SLICE_WORK = 250_000;
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/** Where `needle` starts in buf[from, end), or -1. */
function indexIn(buf: Buffer, needle: Buffer, from: number, end: number): number {
  const at = buf.indexOf(needle, from);
  return at >= 0 && at + needle.length <= end ? at : -1;
}

/** Lines of a console's log in [from, to) that match `pat`, in order. Scans ~1 MiB windows in
 *  slices of GREP_SLICE_WORK, returning to the event loop between them, until the budget's
 *  deadline or its signal stops it (then `budget.stopped` says why). */
export async function* grepLog(items: AsyncIterable<LogItem>, console: string, pat: GrepPattern, budget?: GrepBudget): AsyncGenerator<GrepHit> {
  // Literals every matching line contains: a window without one of them needs no scan at all, and
  // in the others only the lines holding the longest one are given to the matcher (indexOf runs
  // at memory speed; the matcher at a few ns a byte). Under -i they are lowercase, and looked for
  // in the window lowercased.
  const lits = pat.literals.map((l) => l.toString('latin1'));
  const anchor = lits.reduce<string | undefined>((a, l) => (a === undefined || l.length > a.length ? l : a), undefined);
  const anchorBytes = anchor === undefined ? undefined : Buffer.from(anchor, 'latin1');
  const matcher = new LineMatcher(pat.program);
  let parts: Buffer[] = [];
  let size = 0;
  let winStart = -1;
  let starts: { o: number; ts: number }[] = [];
  let nextTurnAt = GREP_SLICE_WORK;
  const over = (): boolean => {
    if (!budget) return false;
    if (budget.stopped) return true;
    if (budget.signal?.aborted) budget.stopped = 'the requester went away';
    else if (Date.now() >= budget.deadline) budget.stopped = 'out of time';
    return !!budget.stopped;
  };
  /** The line ranges of buf[0, end) that may hold a match, in order. */
  function* candidates(buf: Buffer, end: number): Generator<[number, number]> {
    if (anchor === undefined) { yield [0, end]; return; }
    const lowered = pat.ignoreCase ? buf.toString('latin1', 0, end).toLowerCase() : undefined;
    if (!lits.every((l) => (lowered ? lowered.includes(l) : indexIn(buf, Buffer.from(l, 'latin1'), 0, end) >= 0))) return;
    for (let pos = 0; pos < end;) {
      const at = lowered ? lowered.indexOf(anchor, pos) : indexIn(buf, anchorBytes!, pos, end);
      if (at < 0) return;
      const a = at === 0 ? 0 : buf.lastIndexOf(0x0a, at - 1) + 1;
      const nl = buf.indexOf(0x0a, at);
      const b = nl < 0 || nl >= end ? end : nl + 1;
      yield [Math.max(a, pos), b];
      pos = b;
    }
  }
  async function* scan(final: boolean): AsyncGenerator<GrepHit> {
    if (!size) return;
    const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
    const cut = final ? buf.length : buf.lastIndexOf(0x0a) + 1;
    if (cut <= 0) { parts = [buf]; return; }
    const hits: number[] = [];
    for (const [from, to] of candidates(buf, cut)) {
      matcher.begin(buf, from, to);
      for (let done = false; !done;) {
        done = matcher.run(hits, Math.max(1, nextTurnAt - matcher.work));
        for (const a of hits) {
          let b = buf.indexOf(0x0a, a);
          if (b < 0 || b > cut) b = cut;
          const off = winStart + a;
          let lo = 0, hi = starts.length - 1;
          while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (starts[mid].o <= off) lo = mid; else hi = mid - 1; }
          yield { console, time: starts[lo]?.ts ?? 0, offset: off, line: buf.toString('utf8', a, b).replace(/\r$/, '') };
        }
        hits.length = 0;
        if (matcher.work >= nextTurnAt) {
          await nextTurn();
          nextTurnAt = matcher.work + GREP_SLICE_WORK;
          if (over()) return;
        }
      }
    }
    if (budget) budget.scanned += cut;
    const rest = buf.subarray(cut);
    winStart += cut;
    parts = rest.length ? [rest] : [];
    size = rest.length;
    starts = starts.filter((s, i) => s.o >= winStart || (starts[i + 1]?.o ?? Infinity) > winStart);
  }
  for await (const it of items) {
    if (over()) return;
    if (it.kind !== 'data') { yield* scan(true); winStart = -1; starts = []; parts = []; size = 0; continue; }
    if (winStart < 0) winStart = it.offset;
    starts.push({ o: it.offset, ts: it.ts });
    parts.push(it.data);
    size += it.data.length;
    if (size >= WINDOW) { yield* scan(false); await nextTurn(); }
  }
  if (!over()) yield* scan(true);
}
