// Filesystem AuditStore: audit/<console>.jsonl, one JSON record per line, appended synchronously
// (so a record is on disk before the input it describes is forwarded). Records are hash-chained
// per console (core/audit-chain.ts), the chain's head kept in audit-heads/ (audit-heads.ts): an
// append writes the head (announcing the record), the record, the head again (moved to it), three
// writes of a few microseconds. Appends of one console run one at a time (they would interleave
// across awaits otherwise); the file and the head are fsynced at every seal. A file that grew by
// other hands than this store's is read again before the next append, which then finds a record
// the head does not prove where its own belongs, and fails closed.
//
// Audit first, and never on a torn line: a record is written whole or not at all. A write that
// stops short (a full disk: data-disk.ts) is cut back off the file at once and the append fails
// with StorageFull, so what the record describes is refused (the head keeps announcing a record
// that was never stored: verify calls that an interrupted append, and the next append takes its
// seq). A torn last line found when the file is opened (a crash in the middle of a write: that
// append never resolved) is copied to audit/<console>.jsonl.torn-<ms> and cut off, and the log
// says so; while the copy cannot be written, appends are refused. A record whose seq does not
// follow the file's last one is refused (nothing is ever appended over a gap). verify tells a
// torn last line (a crash) from records missing or cut off (a deletion).
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { StorageFull } from '../../../protocol/errors.ts';
import { checkConsoleName, isConsoleName, CLOUD_STREAM } from '../../../protocol/names.ts';
import { appendChained, chainOptions, SkippedSeq, type ChainBackend, type ChainOptions } from '../../core/audit-chain.ts';
import { resealChain } from '../../core/audit-reseal.ts';
import { ChainWalker, readHead, type AuditVerifyResult, type HeadRead } from '../../core/audit-walker.ts';
import type { AuditHead, AuditRecord, AuditStore } from '../../core/ports.ts';
import { FsAuditHeadStore, fsAuditHeadConsoles, readFsAuditHead } from './audit-heads.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../../protocol/private-files.ts';
import { dataDisk, writeAllSync, writeFileAtomic, type DataDisk } from './data-disk.ts';

/** The tail read to find the last record when a file is opened (records are at most ~40 KB). */
const TAIL_BYTES = 1024 * 1024;

export class FsAuditStore implements AuditStore {
  private readonly dir: string;
  readonly heads: FsAuditHeadStore;
  private readonly opts: ChainOptions;
  private readonly files = new Map<string, AuditFile>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly disk: DataDisk;

  constructor(private readonly root: string, opts: Partial<ChainOptions> = {}) {
    this.dir = path.join(root, 'audit');
    this.disk = dataDisk(root);
    privateDir(this.dir);
    this.heads = new FsAuditHeadStore(root);
    this.opts = chainOptions(opts, process.env);
  }

  private readonly backend: ChainBackend = {
    heads: { get: (c) => this.heads.get(c), advance: (c, from, to) => this.heads.advance(c, from, to) },
    create: async (rec) => {
      const f = this.open(rec.console);
      const last = f.last?.seq ?? 0;
      if (last >= rec.seq!) return false;
      // A skipped seq: the head proves records the file no longer has (cut off the end), and
      // appending would bury that.
      if (last < rec.seq! - 1) throw new SkippedSeq(rec.console, rec.seq!, last, `audit/${rec.console}.jsonl`);
      const line = Buffer.from(JSON.stringify(rec) + '\n');
      try { writeAllSync(f.fd, [line]); } catch (e) {
        // Whatever part of the line reached the file goes again: the next record must not land on it.
        try { fs.ftruncateSync(f.fd, f.size); } catch { this.forget(rec.console); } // (then open() finds the torn line)
        const err = this.disk.failed(`audit record seq ${rec.seq} of ${rec.console}`, e);
        throw err instanceof StorageFull ? new StorageFull(`${err.message}; the ${rec.type} it would record was refused`) : err;
      }
      this.disk.wrote();
      f.last = rec;
      f.size += line.length;
      return true;
    },
    at: async (c, seq) => {
      const f = this.open(c);
      if (f.last?.seq === seq) return f.last;
      return parseLines(fs.readFileSync(this.file(c), 'utf8')).find((r) => r.seq === seq);
    },
    anyStored: async (c) => this.open(c).last !== undefined,
    sealed: async (c) => { fs.fsyncSync(this.open(c).fd); this.heads.sync(c); },
  };

  append(rec: AuditRecord): Promise<void> {
    return this.serial(rec.console, async () => { await appendChained(this.backend, rec, this.opts); });
  }

  close(): void {
    for (const f of this.files.values()) fs.closeSync(f.fd);
    this.files.clear();
    this.heads.close();
  }

  async list(console: string, opts: { limit?: number; since?: number } = {}): Promise<AuditRecord[]> {
    const file = this.file(console);
    if (!fs.existsSync(file)) return [];
    let recs = parseLines(fs.readFileSync(file, 'utf8'));
    if (opts.since !== undefined) recs = recs.filter((r) => r.time >= opts.since!);
    if (opts.limit !== undefined) recs = recs.slice(-opts.limit);
    return recs;
  }

  /** The chain as it stands between two appends: head and file length taken together, then the
   *  file read up to that length (appends meanwhile are not waited for). */
  async verify(console: string): Promise<AuditVerifyResult> {
    return verifyFsAudit(this.root, console, await this.snapshot(console));
  }

  async consoles(): Promise<string[]> { return fsAuditConsoles(this.root); }

  async reseal(console: string, by: string, now: number) {
    return resealChain({
      head: () => readHead(() => readFsAuditHead(this.root, console)),
      walk: async (head) => verifyFsAudit(this.root, console, { ...(await this.snapshot(console)), head }),
      reset: async (to) => { this.forget(console); await this.heads.reset(console, to); },
      append: (rec) => this.serial(console, () => appendChained(this.backend, rec, this.opts)),
    }, console, by, now);
  }

  private snapshot(console: string): Promise<{ size: number; head: HeadRead }> {
    return this.serial(console, async () => ({
      size: fs.existsSync(this.file(console)) ? fs.statSync(this.file(console)).size : 0,
      // From the file, not the cache: a head changed or removed by other hands is what verify is for.
      head: await readHead(() => readFsAuditHead(this.root, console)),
    }));
  }

  private file(console: string): string { return auditFile(this.root, console); }

  /** Closes a console's file: its last record is read from the file again at the next append. */
  private forget(console: string): void {
    const f = this.files.get(console);
    if (f) { fs.closeSync(f.fd); this.files.delete(console); }
  }

  /** The console's file, open for appending, and its last record (read once from the file's end,
   *  and again when the file's size is not what this store wrote). */
  private open(console: string): AuditFile {
    let f = this.files.get(console);
    if (f && fs.fstatSync(f.fd).size === f.size) return f;
    if (f) this.forget(console); // grown (or cut) by other hands: look again
    const file = this.file(console);
    let last: AuditRecord | undefined;
    if (fs.existsSync(file)) {
      const fd = fs.openSync(file, 'r+');
      try {
        const size = fs.fstatSync(fd).size;
        const start = Math.max(0, size - TAIL_BYTES);
        const tail = Buffer.alloc(size - start);
        fs.readSync(fd, tail, 0, tail.length, start);
        const nl = tail.lastIndexOf(0x0a);
        if (tail.length && nl !== tail.length - 1 && (nl >= 0 || start === 0)) this.cutTorn(console, fd, start + nl + 1, tail.subarray(nl + 1));
        const recs = parseLines(tail.subarray(0, nl + 1).toString('utf8'));
        last = recs.findLast((r) => typeof r.seq === 'number')
          ?? (start > 0 ? parseLines(fs.readFileSync(file, 'utf8')).findLast((r) => typeof r.seq === 'number') : undefined);
      } finally { fs.closeSync(fd); }
    }
    const fd = fs.openSync(file, 'a', PRIVATE_FILE_MODE);
    f = { fd, last, size: fs.fstatSync(fd).size };
    this.files.set(console, f);
    return f;
  }

  /** Keeps a copy of a torn last line (`torn`, at `at`), then cuts it off the file: a partial
   *  line was never acknowledged (its append threw or never returned), and the next record must
   *  not land on it. StorageFull (appends refused) while the copy cannot be written. */
  private cutTorn(console: string, fd: number, at: number, torn: Buffer): void {
    const keep = `${this.file(console)}.torn-${Date.now()}`;
    try { writeFileAtomic(keep, torn); } catch (e) {
      const err = this.disk.failed(`a copy of the torn last line of audit/${console}.jsonl`, e);
      throw err instanceof StorageFull ? new StorageFull(`${err.message}: audit/${console}.jsonl ends in a torn line (${torn.length} bytes of an append that never completed) that is cut off only once a copy of it is kept; until then nothing is appended`) : err;
    }
    fs.ftruncateSync(fd, at);
    this.disk.log(`audit of ${console}: the last line of audit/${console}.jsonl was torn (${torn.length} bytes of an append that never completed: a crash or a full disk; it was never acknowledged, so what it described did not go ahead): cut off, a copy kept in ${path.relative(this.root, keep)}`, { level: 'warn' });
  }

  private serial<T>(console: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(console) ?? Promise.resolve()).then(fn);
    const done = run.catch(() => {});
    this.queues.set(console, done);
    void done.then(() => { if (this.queues.get(console) === done) this.queues.delete(console); });
    return run;
  }
}

interface AuditFile { fd: number; last?: AuditRecord; size: number }

function parseLines(text: string): AuditRecord[] {
  return text.split('\n').filter(Boolean).flatMap((l) => {
    try { return [JSON.parse(l) as AuditRecord]; } catch { return []; } // listing skips what verify reports
  });
}

/** The audit file of a console under the data directory `root` (the name checked: it makes the path). */
function auditFile(root: string, console: string): string {
  return path.join(root, 'audit', `${checkConsoleName(console, 'console', { cloudStream: true })}.jsonl`);
}

/** Consoles with an audit file or a chain head under the data directory `root` (files whose
 *  names are not console names are not the cloud's: left out). */
export function fsAuditConsoles(root: string): string[] {
  let files: string[] = [];
  try { files = fs.readdirSync(path.join(root, 'audit')).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -6)); } catch { /* none */ }
  return [...new Set([...files, ...fsAuditHeadConsoles(root)])].filter((c) => c === CLOUD_STREAM || isConsoleName(c)).sort();
}

/** Verifies a console's chain in the data directory `root`, read only (`cloudcons audit verify
 *  --data DIR`). `snap`: the head and the file length to check against; without it the head is
 *  read before and after the file (a cloud may be appending meanwhile). Reads the file as a stream. */
export async function verifyFsAudit(root: string, console: string, snap?: { size: number; head: HeadRead }): Promise<AuditVerifyResult> {
  const file = auditFile(root, console);
  const head = snap ? snap.head : await readHead(() => readFsAuditHead(root, console));
  const whole = snap ? snap.size : fs.existsSync(file) ? fs.statSync(file).size : 0;
  // A last line without its newline is an append that never completed (a crash, a full disk):
  // not a record, and not walked; said apart from records that are missing.
  const tornAt = whole > 0 ? lastLineEnd(file, whole) : 0;
  const size = tornAt < whole ? tornAt : whole;
  const w = new ChainWalker(console);
  if (head && !(head instanceof Error)) w.watch(head.seq);
  let n = 0;
  if (size > 0) {
    const lines = readline.createInterface({ input: fs.createReadStream(file, { end: size - 1 }), crlfDelay: Infinity });
    for await (const line of lines) {
      n++;
      if (!line) continue;
      const where = `audit/${console}.jsonl line ${n}`;
      let rec: AuditRecord;
      try { rec = JSON.parse(line) as AuditRecord; } catch { w.push({ bad: `not JSON: ${JSON.stringify(line.slice(0, 80))}`, where }); continue; }
      w.push(typeof rec === 'object' && rec ? { rec, where } : { bad: `not a record: ${JSON.stringify(line.slice(0, 80))}`, where });
    }
  }
  const r = w.finish(head, snap ? undefined : await readHead(() => readFsAuditHead(root, console)));
  if (size < whole) {
    const where = `audit/${console}.jsonl line ${n + 1}`;
    r.torn = { where, bytes: whole - size };
    const what = `the last line (${where}, ${whole - size} bytes) is torn: an append that never completed (a crash or a full disk while writing it)`;
    if (r.headState === 'cut' && r.broken && head && !(head instanceof Error) && head.seq === (r.end?.seq ?? 0) + 1) {
      r.broken.detail += `; ${what}, and the head was moved past it (written by a cloud that did not check its writes): not a deletion; cloudcons audit reseal ${console} moves the head back to seq ${r.end?.seq ?? 0}`;
    } else if (r.ok) {
      r.note = `${r.note ? `${r.note}; ` : ''}${what}, never acknowledged, so what it described did not go ahead; the cloud cuts it off (keeping a copy) before its next append`;
    }
  }
  return r;
}

/** Where the last complete line of the first `size` bytes of `file` ends (just after its newline;
 *  `size` when the file ends with one, 0 when there is none). */
function lastLineEnd(file: string, size: number): number {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0;) {
      const start = Math.max(0, end - buf.length);
      fs.readSync(fd, buf, 0, end - start, start);
      const nl = buf.subarray(0, end - start).lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return 0;
  } finally { fs.closeSync(fd); }
}
