// Filesystem AuditHeadStore: the head of each console's audit chain (core/audit-chain.ts) in
// DATA/audit-heads/<console>.json, `{"seq":N,"hash":"<64 hex>","time":ms}`, kept apart from the
// records in DATA/audit/ so records cut off the end of a chain are detected. Each move overwrites
// the file in place with one fixed-size write (HEAD_BYTES, padded with spaces) through a file
// descriptor kept open: a few microseconds, where a temporary file and a rename cost ~0.3 ms on
// every keystroke audited. A write this small lies within one page, so a reader sees the old head
// or the new one; a power loss that tore it leaves JSON that does not parse, which appends and
// verify report (they fail closed) rather than trust. One process writes (the embedded cloud):
// the heads are cached.
import fs from 'node:fs';
import path from 'node:path';
import type { AuditHead, AuditHeadStore } from '../../core/ports.ts';

export const HEADS_DIR = 'audit-heads';
/** Size of a head file: its JSON (about 110 bytes) padded with spaces and a newline. */
const HEAD_BYTES = 192;

/** A console's head as stored under `root`, read without creating anything (offline verify). */
export function readFsAuditHead(root: string, console: string): AuditHead | undefined {
  let text: string;
  try { text = fs.readFileSync(path.join(root, HEADS_DIR, `${console}.json`), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const h = JSON.parse(text) as AuditHead;
  if (!Number.isInteger(h?.seq) || typeof h.hash !== 'string') throw new Error(`${path.join(root, HEADS_DIR, `${console}.json`)} is not an audit head {seq, hash, time}`);
  return h;
}

/** Consoles with a head file under `root`. */
export function fsAuditHeadConsoles(root: string): string[] {
  try { return fs.readdirSync(path.join(root, HEADS_DIR)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)); } catch { return []; }
}

export class FsAuditHeadStore implements AuditHeadStore {
  private readonly dir: string;
  private readonly cache = new Map<string, AuditHead | undefined>();

  constructor(private readonly root: string) {
    this.dir = path.join(root, HEADS_DIR);
    fs.mkdirSync(this.dir, { recursive: true });
  }

  async get(console: string): Promise<AuditHead | undefined> { return this.read(console); }

  private readonly fds = new Map<string, number>();

  async advance(console: string, fromSeq: number, to: AuditHead): Promise<boolean> {
    if ((this.read(console)?.seq ?? 0) !== fromSeq) return false;
    this.write(console, to);
    return true;
  }

  async reset(console: string, to: AuditHead): Promise<void> { this.write(console, to); }

  private write(console: string, to: AuditHead): void {
    let fd = this.fds.get(console);
    if (fd === undefined) {
      fd = fs.openSync(path.join(this.dir, `${console}.json`), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      fs.ftruncateSync(fd, HEAD_BYTES); // a head of another size (an older format) ends here
      this.fds.set(console, fd);
    }
    const text = JSON.stringify({ seq: to.seq, hash: to.hash, time: to.time });
    fs.writeSync(fd, Buffer.from(text.padEnd(HEAD_BYTES - 1, ' ') + '\n'), 0, HEAD_BYTES, 0);
    this.cache.set(console, { seq: to.seq, hash: to.hash, time: to.time });
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }

  private read(console: string): AuditHead | undefined {
    if (!this.cache.has(console)) this.cache.set(console, readFsAuditHead(this.root, console));
    return this.cache.get(console);
  }
}
