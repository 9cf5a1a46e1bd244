// The relay's on-disk spool: every byte a console emits is appended here, with its stream offset
// and arrival time, before it is sent anywhere. Spool data is sealed into immutable segments
// (protocol/segment.ts) after `segmentMs` or `segmentBytes`, and a segment leaves the spool only
// after the cloud confirmed it stored it. The spool survives kill -9: on start it recovers from
// what is on disk and carries on.
//
// Layout of <dir>/<console>/:
//   active.json               {"start": offset of active.log's first byte, "confirmed": bool}
//   active.log                records: 32-byte header + data (see RECORD below), appended
//   sealing-<start>.log       an active log being turned into a segment (only transiently)
//   <start>-<end>_<t0>-<t1>[.gap].seg   sealed, waiting for upload, in offset order
//
// Offsets: a console the cloud has never confirmed (fresh spool, cloud not reached yet) gets
// provisional offsets from 0. On the first `welcome`, `confirm(cloudEnd)` moves everything
// pending so it continues the cloud's stream (segments only get their footers rewritten), and
// only confirmed segments are uploaded. From then on the relay owns the offsets.
//
// The spool is bounded relay-wide by `capBytes`: past it, the oldest sealed segment waiting for
// upload (of any console) is replaced by a gap segment that records the lost bytes and their time
// range, and the loss is logged. Active logs are never dropped: they are sealed at `segmentBytes`.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { encodeGapSegment, shiftSegment, writeSegment, type Chunk } from '../protocol/segment.ts';
import { CcError } from '../protocol/errors.ts';
import { privateDir, PRIVATE_FILE_MODE, tightenTree } from '../protocol/private-files.ts';

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
  log: (line: string) => void;
}

export const SPOOL_DEFAULTS = { segmentBytes: 1024 * 1024, segmentMs: 60_000, capBytes: 1024 ** 3, fsyncMs: 1000, compressLevel: 1, sealConcurrency: 2 };

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

function writeFileDurable(file: string, data: Buffer | string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', PRIVATE_FILE_MODE);
  try { if (typeof data === 'string') fs.writeSync(fd, data); else fs.writeSync(fd, data); fs.fdatasyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
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
  private fd = -1;
  private readFd = -1; // the active log opened for reading back, while needed
  private dirty = false;
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
  get next(): number { return this.start + this.activeBytes; }
  /** Bytes this console's spool holds on disk. */
  get diskBytes(): number { return this.activeFileBytes + this.sealingBytes + this.sealed.reduce((n, s) => n + s.size, 0); }

  private recover(): void {
    let state: { start?: number; confirmed?: boolean } = {};
    try { state = JSON.parse(fs.readFileSync(path.join(this.dir, 'active.json'), 'utf8')); } catch { /* fresh, or torn before the first rename */ }
    this.confirmed = state.confirmed === true;
    const files = fs.readdirSync(this.dir);
    for (const f of files) {
      const m = SEG_RE.exec(f);
      if (m) this.sealed.push({ console: this.name, start: +m[1], end: +m[2], t0: +m[3], t1: +m[4], gap: !!m[5], file: path.join(this.dir, f), size: fs.statSync(path.join(this.dir, f)).size });
      else if (f.endsWith('.tmp')) fs.rmSync(path.join(this.dir, f), { force: true });
    }
    this.sealed.sort((a, b) => a.start - b.start);
    // An interrupted seal: its log is complete (it was renamed whole), seal it again.
    for (const f of files.filter((x) => /^sealing-\d+\.log$/.test(x)).sort((a, b) => Number(a.slice(8, -4)) - Number(b.slice(8, -4)))) {
      const file = path.join(this.dir, f);
      const start = Number(f.slice(8, -4));
      const size = fs.statSync(file).size;
      this.sealingBytes += size;
      this.enqueue(() => this.sealer.run(() => this.sealFile(file, start, size)));
    }
    const lastEnd = Math.max(...this.sealed.map((s) => s.end), ...files.filter((x) => /^sealing-\d+\.log$/.test(x)).map((x) => Number(x.slice(8, -4))), 0);
    const activeFile = path.join(this.dir, 'active.log');
    const log = readLog(activeFile);
    if (log.validBytes < log.fileBytes) {
      this.opts.log(`spool ${this.name}: active log has ${log.fileBytes - log.validBytes} torn or corrupt bytes at its end (a crash mid-write); cut them off`);
      fs.truncateSync(activeFile, log.validBytes);
    }
    this.start = state.start ?? 0;
    if (!log.chunks.length && this.start < lastEnd) this.start = lastEnd; // crash between a seal's rename and active.json
    this.activeBytes = log.chunks.reduce((n, c) => n + c.data.length, 0);
    this.activeFileBytes = log.validBytes;
    this.activeT0 = log.chunks[0]?.ts ?? 0;
    this.fd = fs.openSync(activeFile, 'a', PRIVATE_FILE_MODE);
    this.writeState();
  }

  private writeState(): void {
    writeFileDurable(path.join(this.dir, 'active.json'), JSON.stringify({ start: this.start, confirmed: this.confirmed }));
  }

  /** Appends output read from the device (synchronously: in the page cache, so it survives the
   *  relay being killed, when this returns). Returns the offset of its first byte. */
  append(data: Buffer, ts: number): number {
    const offset = this.next;
    const h = this.head;
    h.writeUInt32LE(RECORD_MAGIC, 0);
    h.writeUInt32LE(data.length, 4);
    h.writeDoubleLE(this.activeBytes, 8);
    h.writeDoubleLE(ts, 16);
    h.writeUInt32LE(zlib.crc32(data, zlib.crc32(h.subarray(0, 24))), 24);
    h.writeUInt32LE(0, 28);
    fs.writevSync(this.fd, [h, data]);
    if (!this.activeBytes) this.activeT0 = ts;
    this.activeBytes += data.length;
    this.activeFileBytes += HEAD + data.length;
    this.dirty = true;
    return offset;
  }

  /** Up to `max` bytes from offset `abs`, read back from the active log (joined across records,
   *  with the first one's time); undefined if `abs` is not in the active log. */
  readActive(abs: number, max: number): Chunk | undefined {
    const rel = abs - this.start;
    if (rel < 0 || rel >= this.activeBytes) return undefined;
    if (this.cursor.gen !== this.gen || this.cursor.rel > rel) this.cursor = { gen: this.gen, pos: 0, rel: 0 };
    if (this.readFd < 0) this.readFd = fs.openSync(path.join(this.dir, 'active.log'), 'r');
    const fd = this.readFd;
    {
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
  }

  private closeReader(): void { if (this.readFd >= 0) { fs.closeSync(this.readFd); this.readFd = -1; } }

  /** The age at which this console's segments seal: `segmentMs` less up to a quarter, fixed per
   *  console name, so a relay whose consoles all started together does not seal (and upload)
   *  them all in the same second, every minute. */
  private readonly maxAgeMs: number;

  /** Time to seal? */
  due(now: number): boolean {
    return this.activeBytes > 0 && (this.activeBytes >= this.opts.segmentBytes || now - this.activeT0 >= this.maxAgeMs);
  }

  /** Seals the active log into a segment (the new active log starts at once; compression runs
   *  in the background). Resolves when the segment file is written. */
  seal(): Promise<void> {
    if (!this.activeBytes) return this.chain;
    const start = this.start;
    const file = path.join(this.dir, `sealing-${start}.log`);
    this.closeReader();
    fs.closeSync(this.fd);
    fs.renameSync(path.join(this.dir, 'active.log'), file);
    const size = this.activeFileBytes;
    this.sealingBytes += size;
    this.start = this.next;
    this.activeBytes = 0;
    this.activeFileBytes = 0;
    this.gen++;
    this.writeState();
    this.fd = fs.openSync(path.join(this.dir, 'active.log'), 'a', PRIVATE_FILE_MODE);
    this.dirty = false;
    return this.enqueue(() => this.sealer.run(() => this.sealFile(file, start, size)));
  }

  private async sealFile(file: string, start: number, size: number): Promise<void> {
    const log = readLog(file, this.scratch);
    try {
      if (log.chunks.length) {
        for (const c of log.chunks) c.offset += start;
        const end = start + log.chunks.reduce((n, c) => n + c.data.length, 0);
        const s: SealedSegment = { console: this.name, start, end, t0: log.chunks[0].ts, t1: log.chunks.at(-1)!.ts, gap: false, file: '', size: 0 };
        s.file = path.join(this.dir, segFileName(s));
        // Written block by block as it is compressed, yielding to live traffic between blocks;
        // made durable off the event loop, then renamed into place.
        const tmp = `${s.file}.tmp`;
        const fd = fs.openSync(tmp, 'w', PRIVATE_FILE_MODE);
        try {
          s.size = await writeSegment(this.name, log.chunks, (b) => {
            fs.writeSync(fd, b);
            return new Promise<void>((r) => setImmediate(r));
          }, { level: this.opts.compressLevel });
          await new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
        } finally { fs.closeSync(fd); }
        fs.renameSync(tmp, s.file);
        this.insert(s);
      }
    } finally { this.scratch?.give(log.buf); }
    // Unlinking a megabyte costs a millisecond or more (ext4 mounted with `discard` trims the
    // blocks at once): in the thread pool, not on the event loop.
    await fs.promises.rm(file, { force: true });
    this.sealingBytes -= size;
  }

  private insert(s: SealedSegment): void {
    let i = this.sealed.length;
    while (i > 0 && this.sealed[i - 1].start > s.start) i--;
    this.sealed.splice(i, 0, s);
  }

  /** Runs spool operations that touch sealed files one at a time. */
  private enqueue(op: () => Promise<void> | void): Promise<void> {
    const p = this.chain.then(op);
    this.chain = p.catch((e: Error) => this.opts.log(`spool ${this.name}: ${e.message}`));
    return p;
  }

  /** Waits for seals in progress. */
  idle(): Promise<void> { return this.chain; }

  /** The cloud says this console's stored stream ends at `cloudEnd`. A console never confirmed
   *  moves its provisional offsets to continue there; a confirmed one with nothing pending jumps
   *  forward if the cloud is ahead (the console moved here from another relay). Returns the
   *  offset the live stream should resume from. */
  confirm(cloudEnd: number): Promise<number> {
    return this.enqueue(async () => {
      const first = this.sealed[0]?.start ?? this.start;
      let shift = 0;
      if (!this.confirmed) shift = cloudEnd - first;
      else if (cloudEnd > this.next && !this.sealed.length && !this.activeBytes) shift = cloudEnd - this.start;
      else if (cloudEnd > this.next) this.opts.log(`spool ${this.name}: the cloud has output up to offset ${cloudEnd} but this relay's spool continues at ${this.next} with data still to upload; keeping the spool's offsets (was the console published by another relay?)`);
      if (shift) {
        for (const s of this.sealed) {
          const moved = { ...s, start: s.start + shift, end: s.end + shift };
          moved.file = path.join(this.dir, segFileName(moved));
          writeFileDurable(moved.file, await shiftSegment(fs.readFileSync(s.file), shift));
          fs.rmSync(s.file, { force: true });
          Object.assign(s, moved);
        }
        this.start += shift;
      }
      this.confirmed = true;
      this.writeState();
    }).then(() => Math.max(this.start, Math.min(cloudEnd, this.next)));
  }

  /** The first sealed segment waiting for upload (only once confirmed). */
  nextUpload(): SealedSegment | undefined { return this.confirmed ? this.sealed[0] : undefined; }

  /** The cloud stored `s`: it leaves the spool. */
  uploaded(s: SealedSegment): void {
    const i = this.sealed.indexOf(s);
    if (i < 0) return;
    this.sealed.splice(i, 1);
    // In the thread pool (see sealFile). Should the relay die first, the restart uploads the
    // segment again, which the cloud accepts as the same object.
    fs.rm(s.file, { force: true }, (e) => { if (e) this.opts.log(`spool ${this.name}: removing ${s.file}: ${e.message}`); });
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
      const g = { console: this.name, start: prev?.start ?? s.start, end: s.end, t0: prev?.t0 ?? s.t0, t1: s.t1, gap: true, file: '', size: 0 };
      const seg = encodeGapSegment(this.name, { offset: g.start, bytes: g.end - g.start, t0: g.t0, t1: g.t1, reason });
      g.file = path.join(this.dir, segFileName(g));
      g.size = seg.length;
      writeFileDurable(g.file, seg);
      fs.rmSync(s.file, { force: true });
      if (prev) fs.rmSync(prev.file, { force: true });
      this.sealed.splice(prev ? i - 1 : i, prev ? 2 : 1, g);
      this.opts.log(`SPOOL FULL: console ${this.name} lost ${s.end - s.start} bytes of output (offsets ${s.start}-${s.end}, ${new Date(s.t0).toISOString()} to ${new Date(s.t1).toISOString()}): ${reason}`);
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
  }
}

/** All consoles' spools, their seal timer, fsync timer and the relay-wide cap. */
export class Spool {
  readonly opts: SpoolOptions;
  readonly consoles = new Map<string, ConsoleSpool>();
  private timer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  private enforcing = false;
  private readonly sealer: Limiter;
  private readonly scratch: Scratch;
  /** Called when a console has a new sealed segment to upload. */
  onSealed: (c: ConsoleSpool) => void = () => {};
  /** Called just before a console's active log is sealed. */
  beforeSeal: (c: ConsoleSpool) => void = () => {};

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
    if (!c) { c = new ConsoleSpool(name, this.opts, this.sealer, this.scratch); this.consoles.set(name, c); }
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

  /** Appends a console's output (see ConsoleSpool.append) and seals at `segmentBytes`. */
  append(c: ConsoleSpool, data: Buffer, ts: number): number {
    const o = c.append(data, ts);
    if (c.activeBytes >= this.opts.segmentBytes) void this.sealConsole(c);
    return o;
  }

  /** Seals what is due and keeps the spool under its cap. */
  tick(now = Date.now()): void {
    for (const c of this.consoles.values()) if (c.due(now)) this.sealConsole(c);
    this.enforceCap();
  }

  /** Seals a console's active log now (also after it reached `segmentBytes`). */
  sealConsole(c: ConsoleSpool): Promise<void> {
    this.beforeSeal(c);
    const p = c.seal();
    p.then(() => { this.onSealed(c); this.enforceCap(); }, () => {});
    return p;
  }

  get diskBytes(): number { let n = 0; for (const c of this.consoles.values()) n += c.diskBytes; return n; }

  private enforceCap(): void {
    if (this.enforcing || this.diskBytes <= this.opts.capBytes) return;
    this.enforcing = true;
    void (async () => {
      try {
        while (this.diskBytes > this.opts.capBytes) {
          let oldest: ConsoleSpool | undefined, t = Infinity;
          for (const c of this.consoles.values()) {
            const s = c.sealed.find((x) => !x.gap);
            if (s && s.t0 < t) { t = s.t0; oldest = c; }
          }
          if (!oldest) break;
          await oldest.dropOldest(`relay spool full (cap ${this.opts.capBytes} bytes) while the cloud did not take uploads`);
        }
      } finally { this.enforcing = false; }
    })();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.syncTimer);
    for (const c of this.consoles.values()) { c.sync(); await c.close(); }
  }
}
