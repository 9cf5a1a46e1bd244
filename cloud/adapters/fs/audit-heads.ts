// Filesystem AuditHeadStore: the head of each console's audit chain (core/audit-chain.ts) in
// DATA/audit-heads/<console>.json, `{"seq":N,"hash":"<64 hex>","time":ms}` and, while an append
// is between announcing its record and moving the head to it, `"pending":{"seq":N+1,"hash":...,
// "time":ms}` (one writer: the record itself is not kept). Apart from the records in DATA/audit/,
// so records cut off the end of a chain, or added after it, are detected. Each change overwrites
// the file in place with one fixed-size write (HEAD_BYTES, padded with spaces) through a file
// descriptor kept open: a few microseconds, where a temporary file and a rename cost ~0.3 ms on
// every keystroke audited. A write this small lies within one page, so a reader sees the old head
// or the new one; a power loss that tore it leaves a file that does not parse, which appends and
// verify report as an unreadable head (appends fail closed) rather than trust. Heads of the older
// 192-byte format (no pending) read the same and take the new size at their first change. One
// process writes (the embedded cloud): the heads are cached, and read from the file again when it
// is no longer what this store wrote (one stat per read), so a head edited, replaced or removed by
// other hands stops appends instead of being written over.
//
// A head write is checked for completeness; one that fails (a full disk: StorageFull) leaves the
// head as it was and fails the append, before its record is written. A new head file is written
// before it is sized (an empty file, from a crash between its creation and its first write, reads
// as no head: a console with records and no head fails closed all the same), and one whose first
// write failed is removed rather than left as zeros that read as an unreadable head.
import fs from 'node:fs';
import path from 'node:path';
import { checkedHead, sameHead, UnreadableHead } from '../../core/audit-chain.ts';
import { checkConsoleName } from '../../../protocol/names.ts';
import type { AuditHead, AuditHeadStore } from '../../core/ports.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../../protocol/private-files.ts';
import { dataDisk, writeAllSync } from './data-disk.ts';

export const HEADS_DIR = 'audit-heads';
/** Size of a head file: its JSON (about 230 bytes with a pending append) padded with spaces and a newline. */
const HEAD_BYTES = 512;

/** A console's head as stored under `root`, read without creating anything (offline verify).
 *  Throws UnreadableHead when the file is not a head. */
export function readFsAuditHead(root: string, console: string): AuditHead | undefined {
  const where = `${HEADS_DIR}/${console}.json`;
  let text: string;
  try { text = fs.readFileSync(headFile(root, console), 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new UnreadableHead(where, `cannot be read (${code ?? (e as Error).message})`);
  }
  if (text === '') return undefined; // created, never written: see the header
  let v: unknown;
  try { v = JSON.parse(text); } catch { throw new UnreadableHead(where, `not JSON: ${JSON.stringify(text.trimEnd().slice(0, 80))}`); }
  return checkedHead(v, where);
}

/** The head file of a console (the name checked: it makes the path). */
function headFile(root: string, console: string): string {
  return path.join(root, HEADS_DIR, `${checkConsoleName(console, 'console', { cloudStream: true })}.json`);
}

/** Consoles with a head file under `root`. */
export function fsAuditHeadConsoles(root: string): string[] {
  try { return fs.readdirSync(path.join(root, HEADS_DIR)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)); } catch { return []; }
}

export class FsAuditHeadStore implements AuditHeadStore {
  private readonly dir: string;
  /** The head last read or written, and the file's identity then (inode, size, mtime). */
  private readonly cache = new Map<string, { head: AuditHead | undefined; stamp: string }>();
  private readonly fds = new Map<string, { fd: number; ino: number }>();

  constructor(private readonly root: string) {
    this.dir = path.join(root, HEADS_DIR);
    privateDir(this.dir);
  }

  async get(console: string): Promise<AuditHead | undefined> { return this.read(console); }

  /** Compared with the head as last read or written (get, once per append, looks at the file). */
  async advance(console: string, from: AuditHead | undefined, to: AuditHead): Promise<boolean> {
    const cur = this.cache.get(console);
    if (!sameHead(cur ? cur.head : this.read(console), from)) return false;
    this.write(console, to);
    return true;
  }

  async reset(console: string, to: AuditHead): Promise<void> { this.write(console, to); }

  private write(console: string, to: AuditHead): void {
    const p = to.pending;
    const head: AuditHead = { seq: to.seq, hash: to.hash, time: to.time, ...(p ? { pending: { seq: p.seq, hash: p.hash, time: p.time } } : {}) };
    const buf = Buffer.from(JSON.stringify(head).padEnd(HEAD_BYTES - 1, ' ') + '\n');
    const disk = dataDisk(this.root);
    let f = this.fds.get(console);
    try {
      if (f === undefined) {
        const fd = fs.openSync(this.file(console), fs.constants.O_RDWR | fs.constants.O_CREAT, PRIVATE_FILE_MODE);
        const st = fs.fstatSync(fd);
        try { writeAllSync(fd, [buf], 0); } catch (e) {
          fs.closeSync(fd);
          if (st.size === 0) fs.rmSync(this.file(console), { force: true }); // this write made it: no head, not zeros
          throw e;
        }
        if (st.size !== HEAD_BYTES) fs.ftruncateSync(fd, HEAD_BYTES); // a head of another size (an older format) ends here
        this.fds.set(console, f = { fd, ino: st.ino });
      } else writeAllSync(f.fd, [buf], 0);
    } catch (e) { throw disk.failed(`the audit chain head ${HEADS_DIR}/${console}.json`, e); }
    disk.wrote();
    // The file's identity is taken after a settled head only (what the next append's get finds);
    // after an announcement the append goes on from the cache.
    this.cache.set(console, { head, stamp: p ? '' : stampOf(fs.fstatSync(f.fd)) });
  }

  /** Flushes a console's head to disk (at a seal, with the records). */
  sync(console: string): void {
    const f = this.fds.get(console);
    if (f !== undefined) fs.fsyncSync(f.fd);
  }

  close(): void {
    for (const f of this.fds.values()) fs.closeSync(f.fd);
    this.fds.clear();
  }

  private file(console: string): string { return headFile(this.root, console); }

  /** The cached head while the file is what this store last saw; else the file read again (an
   *  unreadable head is not cached: it is refused again until a reseal writes one). */
  private read(console: string): AuditHead | undefined {
    const st = fs.statSync(this.file(console), { throwIfNoEntry: false });
    const stamp = stampOf(st);
    const hit = this.cache.get(console);
    if (hit?.stamp === stamp) return hit.head;
    const f = this.fds.get(console);
    if (f && f.ino !== st?.ino) { fs.closeSync(f.fd); this.fds.delete(console); } // replaced or removed: write the file that is there
    this.cache.delete(console);
    const head = readFsAuditHead(this.root, console);
    this.cache.set(console, { head, stamp });
    return head;
  }
}

function stampOf(st: fs.Stats | undefined): string { return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'none'; }
