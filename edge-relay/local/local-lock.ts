// The write lock the relay holds itself while it is cut off from the cloud: one writer per
// console among the local sessions. Each time it is taken (attach read-write, force) it gets a
// new fence epoch from a counter kept in the spool (`local-epoch`, written and fsynced before the
// lock is granted), so an epoch is never used twice, not even across a restart or a crash: the
// audit trail tells the writers of an outage apart by it.
import fs from 'node:fs';
import path from 'node:path';

export const EPOCH_FILE = 'local-epoch';

export interface LockHolder {
  session: string;
  user: string;
  fingerprint: string;
  since: number;
  epoch: number;
}

export class LocalLocks {
  private readonly file: string;
  private epoch: number;
  private readonly held = new Map<string, LockHolder>();

  /** `dir`: the spool directory. Throws an Error naming the file when it holds something else
   *  than a counter (a damaged one is not silently restarted from 0). */
  constructor(dir: string) {
    this.file = path.join(dir, EPOCH_FILE);
    let text = '';
    try { text = fs.readFileSync(this.file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.file}: cannot read the local lock's epoch counter: ${(e as Error).message}`);
    }
    this.epoch = text.trim() === '' ? 0 : Number(text.trim());
    if (!Number.isSafeInteger(this.epoch) || this.epoch < 0) throw new Error(`${this.file}: not an epoch counter (${JSON.stringify(text.slice(0, 40))}); set it to a number above every epoch the audit trail shows, or remove it if there was none`);
  }

  holder(console: string): LockHolder | undefined { return this.held.get(console); }

  /** Takes `console`'s lock for `who`: granted when free (or `force`), with a new epoch (on disk
   *  before this returns; throws when it cannot be written, and the lock is not granted). Returns
   *  the holder it took it from (force), or `busy` with the holder when not granted. */
  take(console: string, who: Omit<LockHolder, 'since' | 'epoch'>, force: boolean): { ok: true; holder: LockHolder; bumped?: LockHolder } | { ok: false; holder: LockHolder } {
    const cur = this.held.get(console);
    if (cur && cur.session === who.session) return { ok: true, holder: cur };
    if (cur && !force) return { ok: false, holder: cur };
    const holder = { ...who, since: Date.now(), epoch: this.nextEpoch() };
    this.held.set(console, holder);
    return { ok: true, holder, ...(cur ? { bumped: cur } : {}) };
  }

  /** Gives `console`'s lock up if `session` holds it; true if it did. */
  release(console: string, session: string): boolean {
    if (this.held.get(console)?.session !== session) return false;
    this.held.delete(console);
    return true;
  }

  /** The counter plus one, durable: written to a temporary file, fsynced, renamed over. */
  private nextEpoch(): number {
    const n = this.epoch + 1;
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try { fs.writeSync(fd, `${n}\n`); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, this.file);
    try { const d = fs.openSync(path.dirname(this.file), 'r'); try { fs.fsyncSync(d); } finally { fs.closeSync(d); } } catch { /* not every filesystem syncs a folder */ }
    this.epoch = n;
    return n;
  }
}
