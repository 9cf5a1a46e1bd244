// Filesystem HotTail: the embedded cloud's copy of live output not sealed in a segment yet.
// Layout under <data>/hot/<console>/:
//   <start>.bin   the bytes of a contiguous run from offset <start> (16 digits)
//   <start>.ts    one 16-byte record per chunk: f64 offset within the .bin, f64 arrival time (ms)
// A run is split into files of at most `fileBytes` so that sealed parts can be deleted whole.
// Appends are gathered in memory and written every `flushMs` (200 ms; or at 64 KiB, or before a read): the
// hot tail is a cache, and the relay's spool is what makes the log durable. A cloud that crashes
// reports a lower stored end on restart and the relay simply sends that part again (or uploads it
// in a segment). Never fsync'ed.
import fs from 'node:fs';
import path from 'node:path';
import type { HotTail } from '../../core/ports.ts';
import { checkConsoleName, isConsoleName } from '../../../protocol/names.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../../protocol/private-files.ts';

/** `maxTs`: its latest chunk time (times may step back: the last chunk's is not always the latest). */
interface HotFile { start: number; bytes: number; maxTs: number; bin: string; ts: string }
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

  /** `fileBytes`: bytes per file before a run continues in a new one (default 1 MiB); `flushMs`:
   *  longest an append waits in memory (default 200 ms). */
  constructor(dataDir: string, private readonly fileBytes = 1024 * 1024, flushMs = 200) {
    this.root = path.join(dataDir, 'hot');
    privateDir(this.root);
    this.timer = setInterval(() => { for (const c of this.cons.values()) this.flush(c); }, flushMs);
    this.timer.unref();
  }

  /** Writes what appends gathered for the open file. */
  private flush(c: ConsoleHot): void {
    if (!c.pending || !c.fd) return;
    fs.writevSync(c.fd.bin, c.bin);
    fs.writevSync(c.fd.ts, c.ts);
    c.bin = []; c.ts = []; c.pending = 0;
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
        const whole = tsBytes - (tsBytes % REC);
        if (whole !== tsBytes) fs.truncateSync(ts, whole);
        if (!whole || !bytes) { fs.rmSync(bin, { force: true }); fs.rmSync(ts, { force: true }); continue; }
        const hf: HotFile = { start: Number(m[1]), bytes, maxTs: -Infinity, bin, ts };
        const idx = this.index(hf);
        for (let k = 1; k < idx.length; k += 2) if (idx[k] > hf.maxTs) hf.maxTs = idx[k];
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
    if (!f) {
      privateDir(c.dir);
      const base = path.join(c.dir, String(offset).padStart(16, '0'));
      f = { start: offset, bytes: 0, maxTs: ts, bin: `${base}.bin`, ts: `${base}.ts` };
      c.files.push(f);
    }
    if (c.fd?.file !== f) {
      this.flush(c);
      if (c.fd) { fs.closeSync(c.fd.bin); fs.closeSync(c.fd.ts); }
      c.fd = { bin: fs.openSync(f.bin, 'a', PRIVATE_FILE_MODE), ts: fs.openSync(f.ts, 'a', PRIVATE_FILE_MODE), file: f };
    }
    const rec = Buffer.allocUnsafe(REC);
    rec.writeDoubleLE(f.bytes, 0);
    rec.writeDoubleLE(ts, 8);
    c.bin.push(data);
    c.ts.push(rec);
    c.pending += data.length;
    if (c.pending >= FLUSH_BYTES) this.flush(c);
    f.bytes += data.length;
    if (ts > f.maxTs) f.maxTs = ts;
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
    c.files = c.files.filter((f) => {
      if (f.start + f.bytes > below) return true;
      if (c.fd?.file === f) { fs.closeSync(c.fd.bin); fs.closeSync(c.fd.ts); c.fd = undefined; }
      fs.rmSync(f.bin, { force: true });
      fs.rmSync(f.ts, { force: true });
      return false;
    });
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
