// Filesystem HotTail: the embedded cloud's copy of live output not sealed in a segment yet.
// Layout under <data>/hot/<console>/:
//   <start>.bin   the bytes of a contiguous run from offset <start> (16 digits)
//   <start>.ts    one 16-byte record per chunk: f64 offset within the .bin, f64 arrival time (ms)
// A run is split into files of at most `fileBytes` so that sealed parts can be deleted whole.
// Appends are gathered in memory and written every `flushMs` (200 ms; or at 64 KiB, or before a read): the
// hot tail is a cache, and the relay's spool is what makes the log durable. A cloud that crashes
// reports a lower stored end on restart and the relay simply sends that part again (or uploads it
// in a segment). Never fsync'ed.
//
// A full disk (data-disk.ts) is a state here, never a throw out of the flush timer: a flush that
// cannot write all it gathered cuts both files back to what they held before it and forgets the
// gathered bytes, so the end this store reports (the welcome's stored end, what a segment is
// checked against) never claims a byte it does not have; the relay's segment upload brings them
// (viewers were sent them live already, and place output by offset). A run whose file could not be
// started at all is not started. A .ts record beyond its .bin (a crash between the two writes) is
// dropped when the files are opened again.
import fs from 'node:fs';
import path from 'node:path';
import type { HotTail } from '../../core/ports.ts';
import { dataDisk, writeAllSync, type DataDisk } from './data-disk.ts';
import { checkConsoleName, isConsoleName } from '../../../protocol/names.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../../protocol/private-files.ts';

interface HotFile {
  start: number; bytes: number; bin: string; ts: string;
  /** Its latest chunk time (times may step back: the last chunk's is not always the latest). */
  maxTs: number;
  /** What the files hold on disk (bytes, records, last time): a failed flush goes back to it. */
  disk: { bytes: number; recs: number; maxTs: number };
  recs: number;
}
interface ConsoleHot {
  dir: string;
  files: HotFile[];
  fd?: { bin: number; ts: number; file: HotFile };
  /** Appended to fd.file but not written yet. */
  bin: Buffer[];
  ts: Buffer[];
  pending: number;
}
const REC = 16;
const FLUSH_BYTES = 64 * 1024;

export class FsHotTail implements HotTail {
  private readonly root: string;
  private readonly cons = new Map<string, ConsoleHot>();
  private readonly timer: NodeJS.Timeout;
  private readonly disk: DataDisk;
  private lastError?: string;

  /** `fileBytes`: bytes per file before a run continues in a new one (default 1 MiB); `flushMs`:
   *  longest an append waits in memory (default 200 ms). */
  constructor(dataDir: string, private readonly fileBytes = 1024 * 1024, flushMs = 200) {
    this.root = path.join(dataDir, 'hot');
    this.disk = dataDisk(dataDir);
    privateDir(this.root);
    this.timer = setInterval(() => { for (const c of this.cons.values()) this.flush(c); }, flushMs);
    this.timer.unref();
  }

  /** Writes what appends gathered for the open file; never throws. When not all of it can be
   *  written (a full disk), both files are cut back to what they held and the gathered bytes are
   *  forgotten (see the header). */
  private flush(c: ConsoleHot): void {
    if (!c.pending || !c.fd) return;
    const { file: f, bin, ts } = c.fd;
    try {
      writeAllSync(bin, c.bin);
      writeAllSync(ts, c.ts);
      f.disk = { bytes: f.bytes, recs: f.recs, maxTs: f.maxTs };
      this.disk.wrote();
    } catch (e) {
      const err = this.disk.failed(`live output of ${path.basename(c.dir)} to ${f.bin}`, e);
      if (err === e) this.failedOther(`${f.bin}: ${err.message}`);
      this.rollBack(c, f);
    } finally {
      c.bin = []; c.ts = []; c.pending = 0;
    }
  }

  /** Says a write error other than a full disk (a failing disk): once until the message changes. */
  private failedOther(what: string): void {
    if (what === this.lastError) return;
    this.lastError = what;
    this.disk.log(`hot tail: ${what}: live output not written is kept only as the relays' uploads (said once)`, { level: 'error' });
  }

  /** Cuts `f` back to what its files held before the failed flush; a file left empty is closed
   *  and removed (the run it began was never stored). */
  private rollBack(c: ConsoleHot, f: HotFile): void {
    Object.assign(f, { bytes: f.disk.bytes, recs: f.disk.recs, maxTs: f.disk.maxTs });
    try {
      if (c.fd?.file === f) { fs.ftruncateSync(c.fd.bin, f.bytes); fs.ftruncateSync(c.fd.ts, f.recs * REC); }
      if (f.bytes) return;
    } catch { /* cannot cut back (a failing disk): the file is dropped whole */ }
    this.drop(c, f);
  }

  /** Closes and removes one file of a console's runs. */
  private drop(c: ConsoleHot, f: HotFile): void {
    if (c.fd?.file === f) { fs.closeSync(c.fd.bin); fs.closeSync(c.fd.ts); c.fd = undefined; }
    c.files = c.files.filter((x) => x !== f);
    fs.rmSync(f.bin, { force: true });
    fs.rmSync(f.ts, { force: true });
  }

  private open(console: string): ConsoleHot {
    let c = this.cons.get(console);
    if (c) return c;
    const dir = path.join(this.root, checkConsoleName(console));
    const files: HotFile[] = [];
    if (fs.existsSync(dir)) {
      for (const f of fs.readdirSync(dir)) {
        const m = /^(\d{16})\.bin$/.exec(f);
        if (!m) continue;
        const bin = path.join(dir, f), ts = bin.replace(/\.bin$/, '.ts');
        const bytes = fs.statSync(bin).size;
        const tsBytes = fs.existsSync(ts) ? fs.statSync(ts).size : 0;
        let recs = Math.floor(tsBytes / REC);
        const last = Buffer.alloc(REC);
        if (recs) {
          const fd = fs.openSync(ts, 'r');
          try {
            // Records of chunks the .bin does not hold (cut off by a crash or a full disk) go.
            for (; recs > 0; recs--) { fs.readSync(fd, last, 0, REC, (recs - 1) * REC); if (last.readDoubleLE(0) < bytes) break; }
          } finally { fs.closeSync(fd); }
        }
        if (recs * REC !== tsBytes) fs.truncateSync(ts, recs * REC);
        if (!recs || !bytes) { fs.rmSync(bin, { force: true }); fs.rmSync(ts, { force: true }); continue; }
        const hf: HotFile = { start: Number(m[1]), bytes, maxTs: -Infinity, bin, ts, recs, disk: { bytes, recs, maxTs: -Infinity } };
        const idx = this.index(hf);
        for (let k = 1; k < recs * 2; k += 2) if (idx[k] > hf.maxTs) hf.maxTs = idx[k];
        hf.disk.maxTs = hf.maxTs;
        files.push(hf);
      }
    }
    files.sort((a, b) => a.start - b.start);
    c = { dir, files, bin: [], ts: [], pending: 0 };
    this.cons.set(console, c);
    return c;
  }

  async append(console: string, offset: number, ts: number, data: Buffer): Promise<void> {
    const c = this.open(console);
    const last = c.files.at(-1);
    const end = last ? last.start + last.bytes : 0;
    if (last && offset < end) {
      if (offset + data.length <= end) return;
      data = data.subarray(end - offset);
      offset = end;
    }
    if (!data.length) return;
    let f = last && offset === end && last.bytes < this.fileBytes ? last : undefined;
    if (c.fd?.file !== f || !f) {
      this.flush(c);
      if (c.fd) { fs.closeSync(c.fd.bin); fs.closeSync(c.fd.ts); c.fd = undefined; }
      const base = path.join(c.dir, String(f?.start ?? offset).padStart(16, '0'));
      const next = f ?? { start: offset, bytes: 0, recs: 0, maxTs: ts, bin: `${base}.bin`, ts: `${base}.ts`, disk: { bytes: 0, recs: 0, maxTs: ts } };
      let bin: number | undefined;
      try {
        privateDir(c.dir);
        bin = fs.openSync(next.bin, 'a', PRIVATE_FILE_MODE);
        c.fd = { bin, ts: fs.openSync(next.ts, 'a', PRIVATE_FILE_MODE), file: next };
      } catch (e) {
        if (bin !== undefined) fs.closeSync(bin);
        const err = this.disk.failed(`live output of ${console} to ${next.bin}`, e);
        if (err === e) this.failedOther(`${next.bin}: ${err.message}`);
        return; // not stored: the end stays where it is, the segment upload brings these bytes
      }
      if (!f) c.files.push(f = next);
    }
    const rec = Buffer.allocUnsafe(REC);
    rec.writeDoubleLE(f.bytes, 0);
    rec.writeDoubleLE(ts, 8);
    c.bin.push(data);
    c.ts.push(rec);
    c.pending += data.length;
    f.bytes += data.length;
    f.recs++;
    if (ts > f.maxTs) f.maxTs = ts;
    if (c.pending >= FLUSH_BYTES) this.flush(c);
  }

  async end(console: string): Promise<number> {
    const f = this.open(console).files.at(-1);
    return f ? f.start + f.bytes : 0;
  }

  async runs(console: string): Promise<{ start: number; end: number }[]> {
    const out: { start: number; end: number }[] = [];
    for (const f of this.open(console).files) {
      const prev = out.at(-1);
      if (prev && prev.end === f.start) prev.end += f.bytes;
      else out.push({ start: f.start, end: f.start + f.bytes });
    }
    return out;
  }

  private index(f: HotFile): Float64Array {
    let b = fs.readFileSync(f.ts);
    if (b.byteOffset % 8) b = Buffer.from(b); // a Float64Array view needs 8-byte alignment
    return new Float64Array(b.buffer, b.byteOffset, Math.floor(b.length / 8));
  }

  async read(console: string, from: number, to: number): Promise<{ offset: number; ts: number; data: Buffer }[]> {
    const out: { offset: number; ts: number; data: Buffer }[] = [];
    const c = this.open(console);
    this.flush(c);
    for (const f of c.files) {
      const a = Math.max(from, f.start), b = Math.min(to, f.start + f.bytes);
      if (a >= b) continue;
      const idx = this.index(f);
      const n = idx.length / 2;
      // Last record starting at or before a.
      let lo = 0, hi = n - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (idx[mid * 2] <= a - f.start) lo = mid; else hi = mid - 1; }
      const data = Buffer.allocUnsafe(b - a);
      const fd = fs.openSync(f.bin, 'r');
      try { fs.readSync(fd, data, 0, b - a, a - f.start); } finally { fs.closeSync(fd); }
      for (let k = lo; k < n; k++) {
        const rs = f.start + idx[k * 2];
        const re = k + 1 < n ? f.start + idx[(k + 1) * 2] : f.start + f.bytes;
        if (rs >= b) break;
        const s = Math.max(rs, a), e = Math.min(re, b);
        if (s < e) out.push({ offset: s, ts: idx[k * 2 + 1], data: data.subarray(s - a, e - a) });
      }
    }
    return out;
  }

  async offsetAt(console: string, time: number): Promise<number | undefined> {
    const c = this.open(console);
    this.flush(c);
    for (const f of c.files) {
      if (f.maxTs < time) continue;
      const idx = this.index(f);
      for (let k = 0; k < idx.length / 2; k++) if (idx[k * 2 + 1] >= time) return f.start + idx[k * 2];
    }
    return undefined;
  }

  async trim(console: string, below: number): Promise<void> {
    const c = this.open(console);
    this.flush(c);
    for (const f of c.files.filter((x) => x.start + x.bytes <= below)) this.drop(c, f);
  }

  async consoles(): Promise<string[]> {
    return fs.readdirSync(this.root).filter((n) => isConsoleName(n) && this.open(n).files.length > 0);
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.cons.values()) this.flush(c);
    for (const c of this.cons.values()) if (c.fd) { fs.closeSync(c.fd.bin); fs.closeSync(c.fd.ts); c.fd = undefined; }
    this.cons.clear();
  }
}
