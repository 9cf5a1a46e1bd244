// Filesystem AuditStore: audit/<console>.jsonl, one JSON record per line, appended synchronously
// (so a record is on disk before the input it describes is forwarded).
import fs from 'node:fs';
import path from 'node:path';
import type { AuditRecord, AuditStore } from '../../core/ports.ts';

export class FsAuditStore implements AuditStore {
  private readonly dir: string;
  constructor(root: string) {
    this.dir = path.join(root, 'audit');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  private readonly fds = new Map<string, number>();

  async append(rec: AuditRecord): Promise<void> {
    let fd = this.fds.get(rec.console);
    if (fd === undefined) {
      fd = fs.openSync(path.join(this.dir, `${rec.console}.jsonl`), 'a');
      this.fds.set(rec.console, fd);
    }
    fs.writeSync(fd, JSON.stringify(rec) + '\n');
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }

  async list(console: string, opts: { limit?: number; since?: number } = {}): Promise<AuditRecord[]> {
    const file = path.join(this.dir, `${console}.jsonl`);
    if (!fs.existsSync(file)) return [];
    let recs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
      try { return [JSON.parse(l) as AuditRecord]; } catch { return []; } // a torn last line after a crash
    });
    if (opts.since !== undefined) recs = recs.filter((r) => r.time >= opts.since!);
    if (opts.limit !== undefined) recs = recs.slice(-opts.limit);
    return recs;
  }
}
