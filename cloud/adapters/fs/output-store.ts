// Filesystem OutputStore for the embedded cloud. Layout under the data directory:
//   consoles/<name>/output.bin   every stored byte, in offset order (gaps are not in this file)
//   consoles/<name>/gaps.jsonl   one {"offset","bytes","ts","reason"} line per explicit loss
// A console's offset space = bytes in output.bin + bytes of all gaps, so an offset maps to a file
// position by subtracting the gaps below it. Writes are synchronous appends to the page cache:
// durable across a process crash (kill -9) when the call returns; `fsyncMs` bounds what a power
// loss can take. (The sealed-segment store of the log pipeline replaces this layout.)
import fs from 'node:fs';
import path from 'node:path';
import type { OutputStore } from '../../core/ports.ts';

interface Gap { offset: number; bytes: number; ts: number; reason: string }
interface ConsoleLog { fd: number; fileBytes: number; gaps: Gap[]; dir: string; dirty: boolean }

export class FsOutputStore implements OutputStore {
  private readonly logs = new Map<string, ConsoleLog>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly root: string, opts: { fsyncMs?: number } = {}) {
    fs.mkdirSync(path.join(root, 'consoles'), { recursive: true });
    this.timer = setInterval(() => this.flush(), opts.fsyncMs ?? 1000);
    this.timer.unref();
  }

  private open(console: string): ConsoleLog {
    let log = this.logs.get(console);
    if (log) return log;
    const dir = path.join(this.root, 'consoles', console);
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(path.join(dir, 'output.bin'), 'a+');
    const gapsFile = path.join(dir, 'gaps.jsonl');
    const gaps: Gap[] = fs.existsSync(gapsFile)
      ? fs.readFileSync(gapsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Gap)
      : [];
    log = { fd, fileBytes: fs.fstatSync(fd).size, gaps, dir, dirty: false };
    this.logs.set(console, log);
    return log;
  }

  private endOf(log: ConsoleLog): number { return log.fileBytes + log.gaps.reduce((n, g) => n + g.bytes, 0); }

  async end(console: string): Promise<number> {
    if (!this.logs.has(console) && !fs.existsSync(path.join(this.root, 'consoles', console))) return 0;
    return this.endOf(this.open(console));
  }

  async append(console: string, offset: number, ts: number, data: Buffer): Promise<{ end: number; gap?: { offset: number; bytes: number } }> {
    const log = this.open(console);
    let end = this.endOf(log);
    let gap: { offset: number; bytes: number } | undefined;
    if (offset > end) {
      gap = { offset: end, bytes: offset - end };
      this.addGap(log, { ...gap, ts, reason: 'output missing between relay and cloud' });
      end = offset;
    }
    const skip = end - offset;
    if (skip < data.length) {
      const part = data.subarray(skip);
      fs.writeSync(log.fd, part);
      log.fileBytes += part.length;
      log.dirty = true;
      end += part.length;
    }
    return { end, gap };
  }

  async gap(console: string, offset: number, bytes: number, ts: number, reason: string): Promise<number> {
    const log = this.open(console);
    const end = this.endOf(log);
    const from = Math.max(offset, end);
    const to = offset + bytes;
    if (from > end) this.addGap(log, { offset: end, bytes: from - end, ts, reason: 'output missing between relay and cloud' });
    if (to > from) this.addGap(log, { offset: from, bytes: to - from, ts, reason });
    return this.endOf(log);
  }

  private addGap(log: ConsoleLog, g: Gap): void {
    log.gaps.push(g);
    fs.appendFileSync(path.join(log.dir, 'gaps.jsonl'), JSON.stringify(g) + '\n');
  }

  async tail(console: string, lines: number): Promise<Buffer> {
    if (!(await this.end(console))) return Buffer.alloc(0);
    const log = this.open(console);
    const block = 64 * 1024;
    let pos = log.fileBytes;
    let found = 0;
    const parts: Buffer[] = [];
    // Output that ends with a newline: that newline closes the last line, it does not start one.
    let skipFinalNl = true;
    while (pos > 0) {
      const n = Math.min(block, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      fs.readSync(log.fd, buf, 0, n, pos);
      for (let i = n - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a) { skipFinalNl = false; continue; }
        if (skipFinalNl && pos + i === log.fileBytes - 1) continue;
        if (++found === lines) { parts.unshift(buf.subarray(i + 1)); return Buffer.concat(parts); }
      }
      parts.unshift(buf);
    }
    return Buffer.concat(parts);
  }

  async read(console: string, from: number, to: number): Promise<Buffer> {
    const log = this.open(console);
    const pos = (o: number) => o - log.gaps.filter((g) => g.offset < o).reduce((n, g) => n + Math.min(g.bytes, o - g.offset), 0);
    const a = pos(from), b = Math.min(pos(to), log.fileBytes);
    if (b <= a) return Buffer.alloc(0);
    const buf = Buffer.alloc(b - a);
    fs.readSync(log.fd, buf, 0, b - a, a);
    return buf;
  }

  async readAt(console: string, from: number, max: number): Promise<{ offset: number; data: Buffer }> {
    const log = this.open(console);
    let start = from;
    for (const g of log.gaps) if (g.offset <= start && start < g.offset + g.bytes) start = g.offset + g.bytes;
    const nextGap = log.gaps.filter((g) => g.offset >= start).reduce((m, g) => Math.min(m, g.offset), Infinity);
    const to = Math.min(start + max, nextGap, this.endOf(log));
    return { offset: start, data: await this.read(console, start, to) };
  }

  async consoles(): Promise<string[]> {
    return fs.readdirSync(path.join(this.root, 'consoles'));
  }

  flush(): void {
    for (const log of this.logs.values()) if (log.dirty) { fs.fdatasyncSync(log.fd); log.dirty = false; }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
    for (const log of this.logs.values()) fs.closeSync(log.fd);
    this.logs.clear();
  }
}
