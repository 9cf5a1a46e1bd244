// Filesystem AuditHeadStore: the head of each console's audit chain (core/audit-chain.ts) in
// DATA/audit-heads/<console>.json, `{"seq":N,"hash":"<64 hex>","time":ms}`, kept apart from the
// records in DATA/audit/ so records cut off the end of a chain are detected. Each move writes a
// temporary file and renames it over the old one (atomic: a crash leaves the old head or the new
// one, never half of either). One process writes (the embedded cloud): the heads are cached.
import fs from 'node:fs';
import path from 'node:path';
import type { AuditHead, AuditHeadStore } from '../../core/ports.ts';

export const HEADS_DIR = 'audit-heads';

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

  async advance(console: string, fromSeq: number, to: AuditHead): Promise<boolean> {
    if ((this.read(console)?.seq ?? 0) !== fromSeq) return false;
    const file = path.join(this.dir, `${console}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ seq: to.seq, hash: to.hash, time: to.time }) + '\n');
    fs.renameSync(tmp, file);
    this.cache.set(console, { seq: to.seq, hash: to.hash, time: to.time });
    return true;
  }

  private read(console: string): AuditHead | undefined {
    if (!this.cache.has(console)) this.cache.set(console, readFsAuditHead(this.root, console));
    return this.cache.get(console);
  }
}
