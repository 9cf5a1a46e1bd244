// The relay's on-disk spool: every byte a console emits is appended here, with its stream offset
// and arrival time, before it is sent anywhere. Spool data is sealed into immutable segments
// (protocol/segment.ts) after `segmentMs` or `segmentBytes`, and a segment leaves the spool only
// after the cloud confirmed it stored it. The spool survives kill -9: on start it recovers from
// what is on disk and carries on.
//
// Layout of <dir>/<console>/:
//   active.json               the state: two 128-byte slots written in turn, in place (see STATE)
//   active.log                records: 32-byte header + data (see RECORD below), appended
//   sealing-<start>.log       an active log being turned into a segment (only transiently)
//   <start>-<end>_<t0>-<t1>[.gap].seg   sealed, waiting for upload, in offset order
//   <segment>.seg.from-<old start>     a segment moved to the cloud's offsets by `confirm`, not
//                                      renamed into place yet (only transiently, see SHIFT)
//
// Offsets: a console the cloud has never confirmed (fresh spool, cloud not reached yet) gets
// provisional offsets from 0. On the first `welcome`, `confirm(cloudEnd)` moves everything
// pending so it continues the cloud's stream (segments only get their footers rewritten), and
// only confirmed segments are uploaded. From then on the relay owns the offsets.
//
// SHIFT: that move is one step a crash or a full disk cannot leave half done. Every moved segment
// is first written beside its old one (`.from-<old start>`); a disk that refuses any of them
// removes them all and the confirm fails as a whole (the relay tries it again, with backoff), the
// spool as it was. Then active.json records the confirmation: the commit. Only then are old
// segments removed and moved ones renamed into place (from the highest offset down when the move
// is upward, so no name is taken while still in use); a restart that finds `.from-` files
// finishes that if active.json says confirmed, and removes them if not. While a confirm of a new
// console waits in the queue or runs, its active log is not sealed (a seal would capture the
// provisional start), and a seal that failed before is redone inside it, or the confirm fails.
//
// The spool is bounded relay-wide by `capBytes`: past it, the oldest sealed segment waiting for
// upload (of any console) is replaced by a gap segment that records the lost bytes and their time
// range, and the loss is logged. Active logs are never dropped: they are sealed at `segmentBytes`.
//
// A disk that refuses a write (full, or failing) is a state, not an error: output read meanwhile
// still gets its offsets (and still goes live), and is held in memory (`memoryBytes`, relay-wide)
// until the spool's tick finds the disk writable again and appends it, in order. Past the memory
// bound the oldest held bytes are dropped, and once space returns a gap segment (as the cap writes)
// records exactly their offsets, count and time range. Failed seals and state writes are retried
// by the tick, with backoff. Nothing here throws an I/O error into a timer or callback.
//
// A seal is a sequence of steps each of which a crash may end (see SEAL_STEPS); recovery finishes
// or redoes it: a sealing log's end (not its start) continues the stream, a segment already
// renamed into place makes its sealing log redundant, and a gap segment that a crash left beside
// the segment it replaced wins over it.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { encodeGapSegment, shiftSegment, writeSegment, type Chunk } from '../protocol/segment.ts';
import { CcError } from '../protocol/errors.ts';
import { privateDir, PRIVATE_FILE_MODE, tightenTree } from '../protocol/private-files.ts';
import { syncDir, writeFileAtomic } from '../protocol/atomic-file.ts';
import type { Log } from '../protocol/log.ts';

export interface SpoolOptions {
  dir: string;
  /** Seal the active log once it holds this many bytes. Default 1 MiB. */
  segmentBytes: number;
  /** Seal the active log once its first byte is this old (ms). Default 60 s. */
  segmentMs: number;
  /** Disk the whole spool may use (bytes, all consoles). Default 1 GiB. */
  capBytes: number;
  /** fdatasync dirty active logs this often (ms): what a power loss can take. Default 1 s. */
  fsyncMs: number;
  /** zlib level for segments. Default 1. */
  compressLevel: number;
  /** Seals (read + compress + write) running at once, relay-wide: with many consoles coming due
   *  together, this bounds memory and CPU bursts. Default 2. */
  sealConcurrency: number;
  /** Output held in memory, relay-wide, while the spool's disk refuses writes (full or failing);
   *  past it the oldest held bytes are dropped and recorded as a gap. Default 16 MiB. */
  memoryBytes: number;
  log: Log;
}

export const SPOOL_DEFAULTS = { segmentBytes: 1024 * 1024, segmentMs: 60_000, capBytes: 1024 ** 3, fsyncMs: 1000, compressLevel: 1, sealConcurrency: 2, memoryBytes: 16 * 1024 * 1024 };

/** Test hook (never set it in production): CLOUDCONS_TEST_CRASH_AT=seal:<step> makes the process
 *  kill itself with SIGKILL, as a crash would, when a seal reaches that step, so a test can show
 *  that a crash anywhere in a seal loses and doubles nothing. Steps, in order:
 *    renamed   active.log renamed to sealing-<start>.log, active.json not written yet
 *    state     active.json written, the new active.log not opened yet
 *    block     the segment's .tmp holds its first block, not the rest
 *    written   the segment's .tmp complete and fdatasync'ed, not renamed yet
 *    segment   the segment renamed into place, the sealing log not removed yet
 *    removed   the sealing log removed, the segment not listed for upload yet */
export const SEAL_STEPS = ['renamed', 'state', 'block', 'written', 'segment', 'removed'] as const;
/** The same for the move of a new console's segments onto the cloud's offsets (SHIFT), as
 *  CLOUDCONS_TEST_CRASH_AT=confirm:<step>:
 *    copied    every moved segment written beside its old one, active.json not written yet
 *    state     active.json says confirmed, no old segment removed yet
 *    moved     the first segment renamed into place, not the others */
export const CONFIRM_STEPS = ['copied', 'state', 'moved'] as const;
const CRASH_AT = process.env.CLOUDCONS_TEST_CRASH_AT;
function crashPoint(step: string): void { if (CRASH_AT === step) process.kill(process.pid, 'SIGKILL'); }

/** A short description of an I/O error, its code first. */
function ioText(e: unknown): string { const x = e as NodeJS.ErrnoException; return x.code && !x.message.startsWith(x.code) ? `${x.code} ${x.message}` : x.message; }

/** At most `n` async jobs at once; the rest wait in order. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try { return await job(); } finally { this.active--; this.waiting.shift()?.(); }
  }
}

// RECORD: u32 magic | u32 data length | f64 relative offset in this log | f64 time (ms) |
//         u32 crc32 of header bytes 0-23 and the data | u32 0 | data
const RECORD_MAGIC = 0x31444343; // "CCD1"
const HEAD = 32;
const MAX_RECORD = 16 * 1024 * 1024;

export interface SealedSegment { console: string; start: number; end: number; t0: number; t1: number; file: string; size: number; gap: boolean }

const SEG_RE = /^(\d{16})-(\d{16})_(\d+)-(\d+)(\.gap)?\.seg$/;
const p16 = (n: number) => String(n).padStart(16, '0');
function segFileName(s: { start: number; end: number; t0: number; t1: number; gap: boolean }): string {
  return `${p16(s.start)}-${p16(s.end)}_${Math.floor(s.t0)}-${Math.ceil(s.t1)}${s.gap ? '.gap' : ''}.seg`;
}

/** Writes all of `b` at the file position (a short write, as a full disk gives, is continued;
 *  the next one then throws). */
function writeAll(fd: number, b: Buffer): void {
  for (let p = 0; p < b.length;) {
    const n = fs.writeSync(fd, b, p);
    if (n <= 0) throw new Error(`wrote 0 of ${b.length - p} bytes`);
    p += n;
  }
}

/** A segment moved by `shift` (SHIFT): its new file, and where it waits beside the old one. */
function shiftedFile(dir: string, s: { start: number; end: number; t0: number; t1: number; gap: boolean }, shift: number): { old: string; file: string; side: string } {
  const file = path.join(dir, segFileName({ ...s, start: s.start + shift, end: s.end + shift }));
  return { old: path.join(dir, segFileName(s)), file, side: `${file}.from-${s.start}` };
}
const SIDE_RE = /^(\d{16})-(\d{16})_(\d+)-(\d+)(\.gap)?\.seg\.from-(\d+)$/;

/** Puts moved segments in place of their old ones (SHIFT): the old one removed, then the moved
 *  one renamed over its name; from the highest offset down when moving up (else from the lowest),
 *  so an old name that a moved segment takes is already gone. One whose side file is gone was
 *  done already: a repeat after a failure redoes nothing. */
function placeShifted(dir: string, moves: { old: string; file: string; side: string; start: number }[], shift: number): void {
  const order = [...moves].sort((a, b) => (shift > 0 ? b.start - a.start : a.start - b.start));
  for (const [i, m] of order.entries()) {
    if (!fs.existsSync(m.side)) continue;
    fs.rmSync(m.old, { force: true });
    fs.renameSync(m.side, m.file);
    if (i === 0) crashPoint('confirm:moved');
  }
  syncDir(dir);
}

// STATE (active.json): two slots of 128 bytes, `<json padded with spaces><crc32 of it, 8 hex>\n`,
// the json {"seq", "start", "confirmed"}. A change is written over the older slot in place (no
// new blocks, so a full disk does not refuse it; a copy-on-write filesystem still may: then it is
// retried by the tick and the console's uploads wait, see nextUpload) and fdatasync'ed; the valid
// slot with the higher seq is the state, so a crash mid-write leaves the previous one. A file that
// is one JSON object is the older format, read once and replaced.
const SLOT = 128;
interface SpoolState { seq: number; start?: number; confirmed?: boolean; slots?: boolean }
function encodeSlot(st: { seq: number; start: number; confirmed: boolean }): Buffer {
  const body = JSON.stringify(st).padEnd(SLOT - 9);
  return Buffer.from(`${body}${zlib.crc32(body).toString(16).padStart(8, '0')}\n`, 'latin1');
}
function readState(file: string): SpoolState | undefined {
  let buf: Buffer;
  try { buf = fs.readFileSync(file); } catch { return undefined; }
  try { const j = JSON.parse(buf.toString()); if (j && typeof j === 'object') return { ...j, seq: 0 }; } catch { /* slots */ }
  let best: SpoolState | undefined;
  for (let p = 0; p + SLOT <= buf.length; p += SLOT) {
    const t = buf.toString('latin1', p, p + SLOT);
    const body = t.slice(0, SLOT - 9);
    if (t[SLOT - 1] !== '\n' || parseInt(t.slice(SLOT - 9, SLOT - 1), 16) !== zlib.crc32(body)) continue;
    try {
      const j = JSON.parse(body) as SpoolState;
      if (typeof j.seq === 'number' && (!best || j.seq > best.seq)) best = { ...j, slots: buf.length === 2 * SLOT };
    } catch { /* torn */ }
  }
  return best;
}

/** Parses an active log; stops at the first torn or corrupt record. With `scratch`, the file is
 *  read into a buffer taken from it (the chunks point into that buffer until it is given back). */
function readLog(file: string, scratch?: Scratch): { chunks: Chunk[]; validBytes: number; fileBytes: number; buf?: Buffer } {
  let buf: Buffer;
  let owned: Buffer | undefined;
  if (!fs.existsSync(file)) buf = Buffer.alloc(0);
  else if (!scratch) buf = fs.readFileSync(file);
  else {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      owned = scratch.take(size);
      let n = 0;
      while (n < size) {
        const r = fs.readSync(fd, owned, n, size - n, n);
        if (r === 0) break;
        n += r;
      }
      buf = owned.subarray(0, n);
    } finally { fs.closeSync(fd); }
  }
  const chunks: Chunk[] = [];
  let p = 0, rel = 0;
  while (p + HEAD <= buf.length) {
    if (buf.readUInt32LE(p) !== RECORD_MAGIC) break;
    const len = buf.readUInt32LE(p + 4);
    if (len > MAX_RECORD || p + HEAD + len > buf.length || buf.readDoubleLE(p + 8) !== rel) break;
    const data = buf.subarray(p + HEAD, p + HEAD + len);
    if (zlib.crc32(data, zlib.crc32(buf.subarray(p, p + 24))) !== buf.readUInt32LE(p + 24)) break;
    chunks.push({ offset: rel, ts: buf.readDoubleLE(p + 16), data });
    rel += len;
    p += HEAD + len;
  }
  return { chunks, validBytes: p, fileBytes: buf.length, buf: owned };
}

/** Buffers that seals read active logs into, reused from seal to seal: a relay sealing twenty
 *  segments a second would otherwise leave a megabyte of garbage behind each one, which lives
 *  long enough (a seal spans several event-loop turns) to reach V8's old generation and stay in
 *  memory until a full collection. Keeps at most `keep` idle buffers, none over `maxBytes`. */
export class Scratch {
  private readonly free: Buffer[] = [];
  constructor(private readonly keep: number, private readonly maxBytes = 4 * 1024 * 1024) {}
  take(size: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= size);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    return Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024));
  }
  give(b: Buffer | undefined): void {
    if (!b || b.length > this.maxBytes) return;
    this.free.push(b);
    this.free.sort((a, c) => a.length - c.length);
    if (this.free.length > this.keep) this.free.shift(); // drop the smallest
  }
}

/** Bytes that the disk refused, dropped from memory: a gap segment records them once it can. */
interface Lost { start: number; end: number; t0: number; t1: number }

export class ConsoleSpool {
  readonly dir: string;
  /** Offset of the active log's first byte. */
  start = 0;
  /** Whether the cloud has confirmed where this console's stream continues. */
  confirmed = false;
  /** Data bytes in the active log. */
  activeBytes = 0;
  activeFileBytes = 0;
  activeT0 = 0;
  /** Sealed segments waiting for upload, in offset order. */
  readonly sealed: SealedSegment[] = [];
  /** Bytes on disk of sealing logs not yet turned into segments. */
  sealingBytes = 0;
  /** The same logs by file: their output bytes and first byte's time (for `backlog`). */
  private readonly sealing = new Map<string, { bytes: number; t0: number }>();
  /** Output the disk refused, in offset order after the active log's (and `lost`), waiting in
   *  memory to be appended to it. */
  readonly held: Chunk[] = [];
  heldBytes = 0;
  /** Held output dropped (memory full), just before `held`: the gap segment still to write. */
  lost?: Lost;
  /** Said when the disk refuses a write (the Spool logs it once for all consoles). */
  onTrouble: (what: string, e: unknown) => void = () => {};
  /** Said when output is lost (recorded as a gap): how many bytes. */
  onLost: (bytes: number) => void = () => {};
  private fd = -1;
  private readFd = -1; // the active log opened for reading back, while needed
  private dirty = false;
  private cutTo = -1; // a write was short: the active log is cut back to this size before the next
  private stateFd = -1;
  private stateSeq = 0;
  /** active.json could not be written: retried by the tick; uploads wait (the segments on disk
   *  are what tells a restart where the stream continues meanwhile). */
  private stateDirty = false;
  /** Sealing logs whose seal failed (disk full): retried by the tick, with backoff. */
  private readonly unsealed = new Map<string, { start: number; size: number; failures: number; at: number; busy: boolean }>();
  private flushing = false;
  /** Confirms of a console not confirmed yet that are queued or running: its active log waits
   *  for them to seal (see SHIFT). */
  private confirming = 0;
  /** Moved segments not in place yet (a rename failed after the commit, SHIFT): retried by the
   *  tick; uploads wait. */
  private shifting?: { moves: { old: string; file: string; side: string; start: number; s: SealedSegment; moved: SealedSegment }[]; shift: number };
  private gen = 0; // bumped when the active log is replaced; invalidates the read cursor
  private cursor = { gen: -1, pos: 0, rel: 0 };
  private chain: Promise<void> = Promise.resolve();
  private readonly head = Buffer.alloc(HEAD);

  constructor(
    readonly name: string, private readonly opts: SpoolOptions,
    private readonly sealer = new Limiter(opts.sealConcurrency), private readonly scratch?: Scratch,
  ) {
    this.dir = path.join(opts.dir, name);
    this.maxAgeMs = opts.segmentMs - Math.floor((opts.segmentMs / 4) * (zlib.crc32(name) / 0x1_0000_0000));
    privateDir(this.dir);
    this.recover();
  }

  /** Offset the next byte will get. */
  get next(): number {
    const h = this.held.at(-1);
    return h ? h.offset + h.data.length : this.lost ? this.lost.end : this.start + this.activeBytes;
  }
  /** Bytes this console's spool holds on disk. */
  get diskBytes(): number { return this.activeFileBytes + this.sealingBytes + this.sealed.reduce((n, s) => n + s.size, 0); }
  /** Output not confirmed stored by the cloud yet (sealed segments waiting for upload, seals in
   *  progress, the active log, what memory holds for a refusing disk; not gaps): its bytes, and the
   *  time its oldest byte was read (undefined when there is none). */
  backlog(): { bytes: number; oldest?: number } {
    let bytes = this.activeBytes + this.heldBytes;
    let oldest = this.activeBytes ? this.activeT0 : this.held[0]?.ts;
    const older = (t: number) => { if (oldest === undefined || t < oldest) oldest = t; };
    for (const s of this.sealed) if (!s.gap) { bytes += s.end - s.start; older(s.t0); }
    for (const x of this.sealing.values()) { bytes += x.bytes; older(x.t0); }
    if (this.held.length) older(this.held[0]!.ts);
    return { bytes, oldest };
  }
  /** Everything is on disk and nothing waits for a retry. */
  get healthy(): boolean { return !this.held.length && !this.lost && !this.unsealed.size && !this.stateDirty && !this.shifting && this.fd >= 0; }

  private recover(): void {
    const stateFile = path.join(this.dir, 'active.json');
    const state = readState(stateFile);
    this.confirmed = state?.confirmed === true;
    this.stateSeq = state?.seq ?? 0;
    if (state?.slots) { try { this.stateFd = fs.openSync(stateFile, 'r+'); } catch { /* written anew below */ } }
    this.recoverShift();
    const files = fs.readdirSync(this.dir);
    for (const f of files) {
      const m = SEG_RE.exec(f);
      if (m) this.sealed.push({ console: this.name, start: +m[1], end: +m[2], t0: +m[3], t1: +m[4], gap: !!m[5], file: path.join(this.dir, f), size: fs.statSync(path.join(this.dir, f)).size });
      else if (f.endsWith('.tmp')) fs.rmSync(path.join(this.dir, f), { force: true });
    }
    this.sealed.sort((a, b) => a.start - b.start || Number(b.gap) - Number(a.gap) || b.end - a.end);
    // A gap segment written by dropOldest before the segments it replaced were removed: it wins.
    for (let i = 0; i < this.sealed.length; i++) {
      const s = this.sealed[i];
      const cover = this.sealed.find((x) => x !== s && x.gap && x.start <= s.start && s.end <= x.end);
      if (cover) { fs.rmSync(s.file, { force: true }); this.sealed.splice(i--, 1); }
    }
    let lastEnd = Math.max(0, ...this.sealed.map((s) => s.end));
    // Interrupted seals: the log was renamed whole. Its END continues the stream (active.json may
    // still hold its start). Sealed again, unless its segment is already in place (a crash after
    // the segment's rename, before the log's removal).
    for (const f of files.filter((x) => /^sealing-\d+\.log$/.test(x)).sort((a, b) => Number(a.slice(8, -4)) - Number(b.slice(8, -4)))) {
      const file = path.join(this.dir, f);
      const start = Number(f.slice(8, -4));
      const log = readLog(file);
      const end = start + log.chunks.reduce((n, c) => n + c.data.length, 0);
      lastEnd = Math.max(lastEnd, end);
      if (end === start || this.sealed.some((s) => s.start <= start && end <= s.end)) { fs.rmSync(file, { force: true }); continue; }
      const size = log.fileBytes;
      this.sealingBytes += size;
      this.sealing.set(file, { bytes: end - start, t0: log.chunks[0]!.ts });
      void this.enqueue(() => this.sealJob(file, start, size));
    }
    const activeFile = path.join(this.dir, 'active.log');
    const log = readLog(activeFile);
    if (log.validBytes < log.fileBytes) {
      this.opts.log(`spool ${this.name}: active log has ${log.fileBytes - log.validBytes} torn or corrupt bytes at its end (a crash mid-write); cut them off`, { console: this.name, level: 'warn' });
      fs.truncateSync(activeFile, log.validBytes);
    }
    // The active log starts where the last sealed output ends, or later (all of that uploaded).
    this.start = Math.max(state?.start ?? 0, lastEnd);
    this.activeBytes = log.chunks.reduce((n, c) => n + c.data.length, 0);
    this.activeFileBytes = log.validBytes;
    this.activeT0 = log.chunks[0]?.ts ?? 0;
    this.openActive();
    if (this.stateFd < 0 || this.start !== state?.start) this.writeState();
  }

  /** Moved segments a crash left beside their old ones (SHIFT): put in place if the move was
   *  committed (active.json says confirmed), else removed. */
  private recoverShift(): void {
    const moves: { old: string; file: string; side: string; start: number }[] = [];
    let shift = 0;
    for (const f of fs.readdirSync(this.dir)) {
      const m = SIDE_RE.exec(f);
      if (!m) continue;
      const side = path.join(this.dir, f);
      if (!this.confirmed) { fs.rmSync(side, { force: true }); continue; }
      shift = +m[1] - +m[6];
      const x = shiftedFile(this.dir, { start: +m[6], end: +m[2] - shift, t0: +m[3], t1: +m[4], gap: !!m[5] }, shift);
      moves.push({ ...x, side, start: +m[6] });
    }
    if (!moves.length) return;
    this.opts.log(`spool ${this.name}: finishing the move of ${moves.length} segment(s) onto the cloud's offsets that a crash interrupted`, { console: this.name });
    placeShifted(this.dir, moves, shift);
  }

  private openActive(): boolean {
    if (this.fd >= 0) return true;
    try { this.fd = fs.openSync(path.join(this.dir, 'active.log'), 'a', PRIVATE_FILE_MODE); return true; } catch (e) { this.onTrouble('opening active.log', e); return false; }
  }

  /** Writes the state (see STATE); on failure it is retried by the tick. */
  private writeState(): boolean {
    const seq = this.stateSeq + 1;
    const slot = encodeSlot({ seq, start: this.start, confirmed: this.confirmed });
    try {
      if (this.stateFd < 0) {
        const file = path.join(this.dir, 'active.json');
        writeFileAtomic(file, Buffer.concat([slot, slot]));
        this.stateFd = fs.openSync(file, 'r+');
      } else {
        const n = fs.writeSync(this.stateFd, slot, 0, SLOT, (seq % 2) * SLOT);
        if (n !== SLOT) throw new Error(`wrote ${n} of ${SLOT} bytes`);
        fs.fdatasyncSync(this.stateFd);
      }
      this.stateSeq = seq;
      this.stateDirty = false;
      return true;
    } catch (e) {
      this.stateDirty = true;
      this.onTrouble('writing active.json', e);
      return false;
    }
  }

  /** Appends output read from the device (synchronously: in the page cache, so it survives the
   *  relay being killed, when this returns); held in memory if the disk refuses it, or while
   *  earlier output is. Returns the offset of its first byte. Never throws. */
  append(data: Buffer, ts: number): number {
    const offset = this.next;
    if (this.held.length || this.lost || !this.writeRecord(data, ts)) {
      this.held.push({ offset, ts, data });
      this.heldBytes += data.length;
    }
    return offset;
  }

  /** One record at the end of the active log; false (and the log as it was) if the disk refused. */
  private writeRecord(data: Buffer, ts: number): boolean {
    if (!this.openActive()) return false;
    const h = this.head;
    h.writeUInt32LE(RECORD_MAGIC, 0);
    h.writeUInt32LE(data.length, 4);
    h.writeDoubleLE(this.activeBytes, 8);
    h.writeDoubleLE(ts, 16);
    h.writeUInt32LE(zlib.crc32(data, zlib.crc32(h.subarray(0, 24))), 24);
    h.writeUInt32LE(0, 28);
    try {
      if (this.cutTo >= 0) { fs.ftruncateSync(this.fd, this.cutTo); this.cutTo = -1; }
      const n = fs.writevSync(this.fd, [h, data]);
      if (n !== HEAD + data.length) {
        // A full disk takes part of a record: cut it off (later records must not follow a torn one).
        this.cutTo = this.activeFileBytes;
        try { fs.ftruncateSync(this.fd, this.cutTo); this.cutTo = -1; } catch { /* before the next write */ }
        throw Object.assign(new Error(`short write: ${n} of ${HEAD + data.length} bytes`), { code: 'ENOSPC' });
      }
    } catch (e) {
      this.onTrouble('appending to active.log', e);
      return false;
    }
    if (!this.activeBytes) this.activeT0 = ts;
    this.activeBytes += data.length;
    this.activeFileBytes += HEAD + data.length;
    this.dirty = true;
    return true;
  }

  /** Drops the oldest held chunk (the memory bound): its bytes join `lost`. Returns its size. */
  dropHeld(): number {
    const c = this.held.shift();
    if (!c) return 0;
    this.heldBytes -= c.data.length;
    this.lost = this.lost ? { ...this.lost, end: c.offset + c.data.length, t1: c.ts } : { start: c.offset, end: c.offset + c.data.length, t0: c.ts, t1: c.ts };
    return c.data.length;
  }

  /** Appends held output to the active log while the disk takes it, until the log holds `max`
   *  bytes (then it is due to seal). Not while a loss waits for its gap segment (writeLost). */
  writeHeld(max: number): void {
    while (this.held.length && !this.lost && this.activeBytes < max) {
      const c = this.held[0];
      if (c.offset !== this.start + this.activeBytes) { this.opts.log(`spool ${this.name}: BUG: held output at ${c.offset} does not continue the active log at ${this.start + this.activeBytes}; kept in memory`, { console: this.name, level: 'error' }); return; }
      if (!this.writeRecord(c.data, c.ts)) return;
      this.held.shift();
      this.heldBytes -= c.data.length;
    }
  }

  /** With the active log sealed up to where the loss begins: writes its gap segment, and the
   *  active log continues after it. Runs in the spool's chain. False if the disk still refuses. */
  writeLost(reason: string): Promise<boolean> {
    if (this.flushing) return Promise.resolve(false);
    this.flushing = true;
    let ok = false;
    return this.enqueue(() => {
      const l = this.lost;
      if (!l || this.activeBytes || this.start !== l.start) return; // the seal before it failed: next tick
      const g = this.gapSegment({ ...l, gap: true }, reason);
      if (!g) return;
      this.insert(g);
      this.start = l.end;
      this.lost = undefined;
      this.gen++;
      this.writeState();
      ok = true;
      this.opts.log(`SPOOL FULL: console ${this.name} lost ${l.end - l.start} bytes of output (offsets ${l.start}-${l.end}, ${new Date(l.t0).toISOString()} to ${new Date(l.t1).toISOString()}): ${reason}; a gap record says so`, { console: this.name, level: 'error', lostBytes: l.end - l.start });
      this.onLost(l.end - l.start);
    }).then(() => ok, () => false).finally(() => { this.flushing = false; });
  }

  /** Writes a gap segment file for `g` (start, end, times); undefined if the disk refused. */
  private gapSegment(g: { start: number; end: number; t0: number; t1: number; gap: true }, reason: string): SealedSegment | undefined {
    const seg = encodeGapSegment(this.name, { offset: g.start, bytes: g.end - g.start, t0: g.t0, t1: g.t1, reason });
    const s: SealedSegment = { console: this.name, ...g, file: '', size: seg.length };
    s.file = path.join(this.dir, segFileName(s));
    try { writeFileAtomic(s.file, seg); } catch (e) { this.onTrouble('writing a gap segment', e); return undefined; }
    return s;
  }

  /** Where live output can continue at or after `abs`: bytes sealed meanwhile come by upload,
   *  bytes lost are lost. */
  skip(abs: number): number {
    if (abs < this.start) return this.start;
    if (this.lost && abs >= this.lost.start && abs < this.lost.end) return this.lost.end;
    return abs;
  }

  /** Up to `max` bytes from offset `abs`, read back from the active log (joined across records,
   *  with the first one's time) or from what memory holds; undefined if `abs` is in neither (or
   *  the log cannot be read). */
  readActive(abs: number, max: number): Chunk | undefined {
    const rel = abs - this.start;
    if (rel < 0) return undefined;
    if (rel >= this.activeBytes) return this.readHeld(abs, max);
    try { return this.readLogAt(abs, rel, max); } catch (e) {
      this.opts.log(`spool ${this.name}: reading the active log back: ${ioText(e)}`, { console: this.name, level: 'error' });
      this.closeReader();
      return undefined;
    }
  }

  private readHeld(abs: number, max: number): Chunk | undefined {
    let lo = 0, hi = this.held.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; const c = this.held[mid]; if (c.offset + c.data.length <= abs) lo = mid + 1; else hi = mid; }
    const c = this.held[lo];
    if (!c || c.offset > abs) return undefined;
    return { offset: abs, ts: c.ts, data: c.data.subarray(abs - c.offset, abs - c.offset + max) };
  }

  private readLogAt(abs: number, rel: number, max: number): Chunk | undefined {
    if (this.cursor.gen !== this.gen || this.cursor.rel > rel) this.cursor = { gen: this.gen, pos: 0, rel: 0 };
    if (this.readFd < 0) this.readFd = fs.openSync(path.join(this.dir, 'active.log'), 'r');
    const fd = this.readFd;
    const parts: Buffer[] = [];
    let n = 0, ts = 0;
    while (n < max && this.cursor.rel < this.activeBytes) {
      if (fs.readSync(fd, this.head, 0, HEAD, this.cursor.pos) < HEAD) break;
      const len = this.head.readUInt32LE(4);
      const recTs = this.head.readDoubleLE(16);
      const recEnd = this.cursor.rel + len;
      if (recEnd > rel + n) {
        const from = rel + n - this.cursor.rel;
        const take = Math.min(len - from, max - n);
        const b = Buffer.allocUnsafe(take);
        fs.readSync(fd, b, 0, take, this.cursor.pos + HEAD + from);
        if (!parts.length) ts = recTs;
        parts.push(b);
        n += take;
        if (from + take < len) break; // stopped inside this record: keep the cursor on it
      }
      this.cursor.pos += HEAD + len;
      this.cursor.rel = recEnd;
    }
    return n ? { offset: abs, ts, data: parts.length === 1 ? parts[0] : Buffer.concat(parts) } : undefined;
  }

  private closeReader(): void { if (this.readFd >= 0) { try { fs.closeSync(this.readFd); } catch { /* gone */ } this.readFd = -1; } }

  /** The age at which this console's segments seal: `segmentMs` less up to a quarter, fixed per
   *  console name, so a relay whose consoles all started together does not seal (and upload)
   *  them all in the same second, every minute. */
  private readonly maxAgeMs: number;

  /** Time to seal? */
  due(now: number): boolean {
    return this.activeBytes > 0 && (this.activeBytes >= this.opts.segmentBytes || now - this.activeT0 >= this.maxAgeMs);
  }

  /** Seals the active log into a segment (the new active log starts at once; compression runs
   *  in the background). Resolves when the segment file is written, or its seal failed (then it
   *  is retried by `retry`). Never throws or rejects for the disk. */
  seal(): Promise<void> {
    if (!this.activeBytes) return this.chain;
    // Its start is provisional and about to move (SHIFT): sealed after the confirm.
    if (this.confirming && !this.confirmed) return this.chain.then(() => {});
    const start = this.start;
    const file = path.join(this.dir, `sealing-${start}.log`);
    this.closeReader();
    try {
      if (this.fd >= 0) { fs.closeSync(this.fd); this.fd = -1; }
      if (this.cutTo >= 0) { fs.truncateSync(path.join(this.dir, 'active.log'), this.cutTo); this.cutTo = -1; }
      fs.renameSync(path.join(this.dir, 'active.log'), file);
    } catch (e) {
      this.onTrouble('renaming active.log to seal it', e);
      return this.chain.then(() => {});
    }
    crashPoint('seal:renamed');
    const size = this.activeFileBytes;
    this.sealingBytes += size;
    this.sealing.set(file, { bytes: this.activeBytes, t0: this.activeT0 });
    this.start += this.activeBytes;
    this.activeBytes = 0;
    this.activeFileBytes = 0;
    this.gen++;
    this.writeState(); // if the disk refuses, the sealing log's end tells a restart where we are
    crashPoint('seal:state');
    this.openActive(); // if the disk refuses, output is held in memory until it opens
    this.dirty = false;
    return this.enqueue(() => this.sealJob(file, start, size));
  }

  /** Seals a sealing log (within `sealConcurrency`); a failure is noted for `retry`. */
  private async sealJob(file: string, start: number, size: number): Promise<void> {
    try {
      await this.sealer.run(() => this.sealFile(file, start, size));
      this.unsealed.delete(file);
    } catch (e) {
      this.onTrouble(`sealing ${path.basename(file)}`, e);
      const u = this.unsealed.get(file) ?? { start, size, failures: 0, at: 0, busy: false };
      u.failures++;
      u.at = Date.now() + Math.min(30_000, 250 * 2 ** u.failures) * (0.5 + Math.random() / 2);
      u.busy = false;
      this.unsealed.set(file, u);
    }
  }

  private async sealFile(file: string, start: number, size: number): Promise<void> {
    const log = readLog(file, this.scratch);
    let s: SealedSegment | undefined;
    try {
      if (log.chunks.length) {
        for (const c of log.chunks) c.offset += start;
        const end = start + log.chunks.reduce((n, c) => n + c.data.length, 0);
        s = { console: this.name, start, end, t0: log.chunks[0].ts, t1: log.chunks.at(-1)!.ts, gap: false, file: '', size: 0 };
        s.file = path.join(this.dir, segFileName(s));
        // Written block by block as it is compressed, yielding to live traffic between blocks;
        // made durable off the event loop, then renamed into place. A failed write leaves no
        // .tmp behind to fill the disk further.
        const tmp = `${s.file}.tmp`;
        try {
          const fd = fs.openSync(tmp, 'w', PRIVATE_FILE_MODE);
          try {
            let writes = 0;
            s.size = await writeSegment(this.name, log.chunks, (b) => {
              writeAll(fd, b);
              if (++writes === 2) crashPoint('seal:block'); // the magic, then the first block
              return new Promise<void>((r) => setImmediate(r));
            }, { level: this.opts.compressLevel });
            await new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
          } finally { fs.closeSync(fd); }
          crashPoint('seal:written');
          fs.renameSync(tmp, s.file);
        } catch (e) { fs.rmSync(tmp, { force: true }); throw e; }
        crashPoint('seal:segment');
      }
    } finally { this.scratch?.give(log.buf); }
    // Unlinking a megabyte costs a millisecond or more (ext4 mounted with `discard` trims the
    // blocks at once): in the thread pool, not on the event loop. Only then is the segment listed
    // for upload: a restart that finds both redoes nothing (recover).
    await fs.promises.rm(file, { force: true });
    crashPoint('seal:removed');
    if (s) this.insert(s);
    this.sealingBytes -= size;
    this.sealing.delete(file);
  }

  /** Retries what the disk refused before: the state, and seals whose backoff is over. */
  retry(now: number): void {
    if (this.stateDirty) this.writeState();
    if (this.shifting) this.placeShifted();
    if (this.confirming && !this.confirmed) return; // the confirm redoes failed seals itself
    for (const [file, u] of this.unsealed) {
      if (u.busy || u.at > now) continue;
      u.busy = true;
      void this.enqueue(() => this.sealJob(file, u.start, u.size));
    }
  }

  private insert(s: SealedSegment): void {
    let i = this.sealed.length;
    while (i > 0 && this.sealed[i - 1].start > s.start) i--;
    this.sealed.splice(i, 0, s);
  }

  /** Runs spool operations that touch sealed files one at a time. */
  private enqueue(op: () => Promise<void> | void): Promise<void> {
    const p = this.chain.then(op);
    this.chain = p.catch((e: Error) => this.opts.log(`spool ${this.name}: ${e.message}`, { console: this.name, level: 'error' }));
    return p;
  }

  /** Waits for seals in progress. */
  idle(): Promise<void> { return this.chain; }

  /** The cloud says this console's stored stream ends at `cloudEnd`. A console never confirmed
   *  moves its provisional offsets to continue there; a confirmed one jumps forward if the cloud is
   *  ahead (the console moved here from another relay, or this relay died holding output in memory
   *  that reached the cloud live): what the spool holds keeps its offsets (the active log is sealed
   *  as it is), new output continues at `cloudEnd` (below it the cloud would drop it as a resend).
   *  Returns the offset the live stream should resume from. */
  confirm(cloudEnd: number): Promise<number> {
    const fresh = !this.confirmed;
    if (fresh) this.confirming++;
    return this.enqueue(async () => {
      const first = this.sealed[0]?.start ?? this.start;
      let shift = 0;
      if (!this.confirmed) shift = cloudEnd - first;
      else if (cloudEnd > this.next && !this.sealed.length && !this.activeBytes && !this.held.length && !this.lost) shift = cloudEnd - this.start;
      else if (cloudEnd > this.next && !this.held.length && !this.lost) {
        this.opts.log(`spool ${this.name}: the cloud has output up to offset ${cloudEnd}, past this spool's ${this.next} (a relay that died holding output in memory, or a console published by another relay); what the spool holds is uploaded at its offsets, new output continues at ${cloudEnd}`, { console: this.name, level: 'warn' });
        if (this.activeBytes) this.seal();
        if (!this.activeBytes) { this.start = cloudEnd; this.gen++; }
      }
      if (!this.confirmed) { await this.shiftAll(shift); return; }
      if (shift) { this.start += shift; this.gen++; } // confirmed with nothing pending: no file moves
      this.writeState();
    }).finally(() => { if (fresh) this.confirming--; }).then(() => Math.max(this.start, Math.min(cloudEnd, this.next)));
  }

  /** Moves a new console's pending output by `shift` onto the cloud's offsets and confirms it, as
   *  one step (SHIFT). Throws (the spool as it was, still unconfirmed) if the disk refuses. */
  private async shiftAll(shift: number): Promise<void> {
    // Seals the disk refused before hold provisional starts: redone now, or no move.
    for (const [file, u] of [...this.unsealed]) await this.sealJob(file, u.start, u.size);
    if (this.unsealed.size) throw new Error(`cannot move this console's output onto the cloud's offsets yet: ${this.unsealed.size} sealing log(s) wait for the disk`);
    const moves = this.sealed.map((s) => {
      const moved = { ...s, start: s.start + shift, end: s.end + shift };
      const x = shiftedFile(this.dir, s, shift);
      moved.file = x.file;
      return { ...x, start: s.start, s, moved };
    });
    if (shift) {
      try {
        for (const m of moves) writeFileAtomic(m.side, await shiftSegment(fs.readFileSync(m.s.file), shift));
      } catch (e) {
        for (const m of moves) fs.rmSync(m.side, { force: true });
        this.onTrouble('moving segments onto the cloud\'s offsets', e);
        throw new Error(`cannot move this console's ${moves.length} pending segment(s) onto the cloud's offsets: ${ioText(e)}; nothing moved`);
      }
      crashPoint('confirm:copied');
    }
    // The commit: active.json says confirmed, at the moved start. With no segment to move, a state
    // the disk refuses is retried by the tick (uploads wait for it): a restart meanwhile finds the
    // console unconfirmed, its active log in relative offsets, and the next confirm moves it again.
    this.start += shift;
    this.confirmed = true;
    if (!this.writeState() && shift && moves.length) {
      // Maybe on disk after all (an fdatasync that failed): the moved copies stay for a restart to
      // finish with (or remove, if the tick writes the unconfirmed state back first).
      this.start -= shift;
      this.confirmed = false;
      throw new Error('cannot write active.json to confirm this console\'s offsets');
    }
    crashPoint('confirm:state');
    this.gen++;
    for (const c of this.held) c.offset += shift;
    if (this.lost) this.lost = { ...this.lost, start: this.lost.start + shift, end: this.lost.end + shift };
    if (!shift) return;
    this.shifting = { moves, shift };
    this.placeShifted();
  }

  /** The rest of a committed move (SHIFT): old segments out, moved ones in; retried by the tick
   *  while a rename fails (uploads wait). */
  private placeShifted(): void {
    const sh = this.shifting!;
    try { placeShifted(this.dir, sh.moves, sh.shift); } catch (e) { this.onTrouble('putting moved segments in place', e); return; }
    for (const m of sh.moves) Object.assign(m.s, m.moved);
    this.shifting = undefined;
  }

  /** The first sealed segment waiting for upload (only once confirmed, and its state written). */
  nextUpload(): SealedSegment | undefined { return this.confirmed && !this.stateDirty && !this.shifting ? this.sealed[0] : undefined; }

  /** The cloud stored `s`: it leaves the spool. */
  uploaded(s: SealedSegment): void {
    const i = this.sealed.indexOf(s);
    if (i < 0) return;
    this.sealed.splice(i, 1);
    // In the thread pool (see sealFile). Should the relay die first, the restart uploads the
    // segment again, which the cloud accepts as the same object.
    fs.rm(s.file, { force: true }, (e) => { if (e) this.opts.log(`spool ${this.name}: removing ${s.file}: ${e.message}`, { console: this.name, level: 'warn' }); });
  }

  /** Takes `s` out of the upload queue without deleting it: the cloud refused it because it holds
   *  other bytes at its offsets (two writers; the cloud keeps the ones it stored first). Renamed
   *  `<file>.conflict` for an operator to look at (never uploaded again, not counted in the cap);
   *  of those, the `keep` newest stay and older ones are deleted. Returns the new name. */
  setAside(s: SealedSegment, keep: number): string {
    const to = `${s.file}.conflict`;
    fs.renameSync(s.file, to);
    const now = new Date();
    fs.utimesSync(to, now, now); // counts as the newest of them
    const i = this.sealed.indexOf(s);
    if (i >= 0) this.sealed.splice(i, 1);
    const kept = fs.readdirSync(this.dir).filter((f) => f.endsWith('.seg.conflict'))
      .map((f) => ({ f: path.join(this.dir, f), t: fs.statSync(path.join(this.dir, f)).mtimeMs })).sort((a, b) => b.t - a.t);
    for (const k of kept.slice(Math.max(0, keep))) fs.rmSync(k.f, { force: true });
    return to;
  }

  /** Replaces the oldest data segment by a gap segment (merged into a gap just before it). */
  dropOldest(reason: string): Promise<void> {
    return this.enqueue(async () => {
      const i = this.sealed.findIndex((s) => !s.gap);
      if (i < 0) return;
      const s = this.sealed[i];
      const prev = i > 0 && this.sealed[i - 1].gap && this.sealed[i - 1].end === s.start ? this.sealed[i - 1] : undefined;
      const g = this.gapSegment({ start: prev?.start ?? s.start, end: s.end, t0: prev?.t0 ?? s.t0, t1: s.t1, gap: true }, reason);
      if (!g) throw new Error(`cannot write the gap segment for ${s.start}-${s.end} (disk refused it); the spool stays over its cap for now`);
      fs.rmSync(s.file, { force: true });
      if (prev) fs.rmSync(prev.file, { force: true });
      this.sealed.splice(prev ? i - 1 : i, prev ? 2 : 1, g);
      this.opts.log(`SPOOL FULL: console ${this.name} lost ${s.end - s.start} bytes of output (offsets ${s.start}-${s.end}, ${new Date(s.t0).toISOString()} to ${new Date(s.t1).toISOString()}): ${reason}`, { console: this.name, level: 'error', lostBytes: s.end - s.start });
      this.onLost(s.end - s.start);
    });
  }

  /** fdatasync the active log if it changed (in the thread pool: never blocks the event loop). */
  sync(): void {
    if (!this.dirty || this.fd < 0) return;
    this.dirty = false;
    fs.fdatasync(this.fd, () => {});
  }

  async close(): Promise<void> {
    await this.chain;
    this.closeReader();
    if (this.fd >= 0) { fs.closeSync(this.fd); this.fd = -1; }
    if (this.stateFd >= 0) { fs.closeSync(this.stateFd); this.stateFd = -1; }
  }
}

/** All consoles' spools, their seal timer, fsync timer, the relay-wide cap and memory bound. */
export class Spool {
  readonly opts: SpoolOptions;
  readonly consoles = new Map<string, ConsoleSpool>();
  private timer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  private enforcing = false;
  private readonly sealer: Limiter;
  private readonly scratch: Scratch;
  /** What the disk refused first, while anything waits for it (said once, and once when over). */
  private trouble?: string;
  private troubleAt?: ConsoleSpool; // the console that met it first
  private dropping = false; // said that the memory bound drops output, this time
  /** Called when a console has a new sealed segment to upload. */
  onSealed: (c: ConsoleSpool) => void = () => {};
  /** Called just before a console's active log is sealed. */
  beforeSeal: (c: ConsoleSpool) => void = () => {};
  /** Called when the disk first refuses a write (with what happened) and when all is on disk
   *  again (undefined). */
  onTrouble: (c: ConsoleSpool, what: string | undefined) => void = () => {};
  /** Called when a console's output is lost (spool cap, or memory full while the disk refused
   *  writes), with the bytes lost; each loss is also a gap segment and a log line. */
  onLost: (c: ConsoleSpool, bytes: number) => void = () => {};

  constructor(opts: Partial<SpoolOptions> & { dir: string }) {
    this.opts = { ...SPOOL_DEFAULTS, log: (l) => console.error(l), ...opts };
    this.sealer = new Limiter(this.opts.sealConcurrency);
    this.scratch = new Scratch(this.opts.sealConcurrency);
    const probe = path.join(this.opts.dir, '.writable');
    try {
      // Console output: the spool is this user's alone, whatever was there before.
      tightenTree(this.opts.dir, { log: this.opts.log });
      fs.writeFileSync(probe, '', { mode: PRIVATE_FILE_MODE });
      fs.rmSync(probe);
    } catch (e) {
      if (e instanceof CcError) throw e;
      throw new Error(`spool directory ${this.opts.dir} cannot be used: ${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}`);
    }
  }

  open(name: string): ConsoleSpool {
    let c = this.consoles.get(name);
    if (!c) {
      c = new ConsoleSpool(name, this.opts, this.sealer, this.scratch);
      const cs = c;
      cs.onTrouble = (what, e) => this.troubled(cs, what, e);
      cs.onLost = (n) => this.onLost(cs, n);
      this.consoles.set(name, c);
    }
    return c;
  }

  start(): void {
    const tick = Math.max(10, Math.min(1000, this.opts.segmentMs / 4));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref();
    this.syncTimer = setInterval(() => { for (const c of this.consoles.values()) c.sync(); }, this.opts.fsyncMs);
    this.syncTimer.unref();
    for (const c of this.consoles.values()) if (c.sealed.length) this.onSealed(c);
  }

  /** Appends a console's output (see ConsoleSpool.append), seals at `segmentBytes`, and keeps what
   *  memory holds for a refusing disk within `memoryBytes`. Never throws. */
  append(c: ConsoleSpool, data: Buffer, ts: number): number {
    const o = c.append(data, ts);
    if (c.activeBytes >= this.opts.segmentBytes) void this.sealConsole(c);
    if (c.heldBytes) this.boundHeld();
    return o;
  }

  get heldBytes(): number { let n = 0; for (const c of this.consoles.values()) n += c.heldBytes; return n; }

  /** Past `memoryBytes` held: drops the oldest held output of any console (a gap records it). */
  private boundHeld(): void {
    let held = this.heldBytes;
    if (held <= this.opts.memoryBytes) return;
    if (!this.dropping) {
      this.dropping = true;
      this.opts.log(`SPOOL FULL: the spool's disk still refuses writes and the output held in memory reached ${this.opts.memoryBytes} bytes (memoryBytes): dropping the oldest held output; gap records will say exactly what was lost once the disk takes writes again`, { level: 'error' });
    }
    while (held > this.opts.memoryBytes) {
      let oldest: ConsoleSpool | undefined, t = Infinity;
      for (const c of this.consoles.values()) if (c.held.length && c.held[0].ts < t) { t = c.held[0].ts; oldest = c; }
      if (!oldest) break;
      held -= oldest.dropHeld();
    }
  }

  /** Seals what is due, retries what the disk refused, and keeps the spool under its cap. Never
   *  throws. */
  tick(now = Date.now()): void {
    for (const c of this.consoles.values()) {
      try {
        c.retry(now);
        if (c.lost || c.held.length) this.flushHeld(c);
        if (c.due(now)) void this.sealConsole(c);
      } catch (e) { this.opts.log(`spool ${c.name}: ${(e as Error).message}`, { console: c.name, level: 'error' }); }
    }
    this.enforceCap();
    if (this.trouble && [...this.consoles.values()].every((c) => c.healthy)) {
      this.opts.log(`spool writable again (${this.opts.dir}): output held in memory is on disk, seals and uploads continue`, { level: 'warn' });
      const first = this.troubleAt!;
      this.trouble = undefined;
      this.troubleAt = undefined;
      this.dropping = false;
      this.onTrouble(first, undefined);
    }
  }

  /** Puts what memory holds for `c` on disk as far as the disk takes it: a loss first becomes
   *  a gap segment right after the active log's sealed output, then held output is appended in
   *  order, sealed at `segmentBytes`. */
  private flushHeld(c: ConsoleSpool): void {
    if (c.lost) {
      if (c.activeBytes) void this.sealConsole(c);
      void c.writeLost(`relay spool disk refused writes (${this.trouble ?? 'full'}) and the memory buffer (memoryBytes ${this.opts.memoryBytes}) was full`).then((ok) => {
        if (!ok) return;
        this.onSealed(c);
        this.flushHeld(c);
      });
      return;
    }
    for (let i = 0; i < 1000 && c.held.length; i++) {
      c.writeHeld(this.opts.segmentBytes);
      if (c.activeBytes < this.opts.segmentBytes) break;
      void this.sealConsole(c);
      if (c.activeBytes) break; // the seal could not start
    }
  }

  private troubled(c: ConsoleSpool, what: string, e: unknown): void {
    if (this.trouble) return;
    const code = (e as NodeJS.ErrnoException).code;
    this.trouble = `${what}: ${ioText(e)}`;
    this.troubleAt = c;
    this.opts.log(`${code === 'ENOSPC' || code === 'EDQUOT' ? 'SPOOL DISK FULL' : 'SPOOL WRITE FAILED'} (${this.opts.dir}, console ${c.name}, ${this.trouble}): output is held in memory (up to ${this.opts.memoryBytes} bytes, then the oldest is dropped and recorded as a gap) and still sent live; the relay writes it to the spool by itself when the disk takes writes again. Free space on that disk.`, { console: c.name, level: 'error' });
    this.onTrouble(c, this.trouble);
  }

  /** Seals a console's active log now (also after it reached `segmentBytes`). */
  sealConsole(c: ConsoleSpool): Promise<void> {
    this.beforeSeal(c);
    const p = c.seal();
    p.then(() => { this.onSealed(c); this.enforceCap(); }, () => {});
    return p;
  }

  get diskBytes(): number { let n = 0; for (const c of this.consoles.values()) n += c.diskBytes; return n; }

  /** ConsoleSpool.backlog over every console: output the cloud has not stored yet. */
  backlog(): { bytes: number; oldest?: number } {
    let bytes = 0, oldest: number | undefined;
    for (const c of this.consoles.values()) {
      const b = c.backlog();
      bytes += b.bytes;
      if (b.oldest !== undefined && (oldest === undefined || b.oldest < oldest)) oldest = b.oldest;
    }
    return { bytes, oldest };
  }

  /** Closes a console's spool (a reload removed the console and its output is uploaded): its
   *  folder stays, with active.json saying where its stream continues should it come back. */
  async closeConsole(c: ConsoleSpool): Promise<void> {
    if (this.consoles.get(c.name) !== c) return;
    this.consoles.delete(c.name);
    c.sync();
    await c.close();
  }

  private enforceCap(): void {
    if (this.enforcing || this.diskBytes <= this.opts.capBytes) return;
    this.enforcing = true;
    void (async () => {
      while (this.diskBytes > this.opts.capBytes) {
        let oldest: ConsoleSpool | undefined, t = Infinity;
        for (const c of this.consoles.values()) {
          const s = c.sealed.find((x) => !x.gap);
          if (s && s.t0 < t) { t = s.t0; oldest = c; }
        }
        if (!oldest) break;
        await oldest.dropOldest(`relay spool full (cap ${this.opts.capBytes} bytes) while the cloud did not take uploads`);
      }
    })().catch(() => { /* said by the console's chain; tried again at the next tick */ }).finally(() => { this.enforcing = false; });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.syncTimer);
    for (const c of this.consoles.values()) {
      c.writeHeld(Infinity); // what memory holds, if the disk takes it now
      c.sync();
      await c.close();
      if (c.heldBytes || c.lost) this.opts.log(`spool ${c.name}: stopping with ${c.heldBytes} bytes held in memory that the disk did not take${c.lost ? ` and ${c.lost.end - c.lost.start} bytes dropped` : ''} (they went to the cloud live if it was reachable)`, { console: c.name, level: 'warn' });
    }
  }
}
