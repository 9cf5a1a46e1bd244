// A JSON file of the data directory that holds state kept in memory and re-announced by relays
// anyway (consoles.json, relays.json): rewritten at most every `saveMs` after a change (a relay with
// 1000 consoles announces them all at once), replaced atomically (data-disk.ts writeFileAtomic). A
// save that fails (a full disk) is logged once and tried again every `saveMs` (at least 1 s) until
// it succeeds: never a throw out of the timer.
import fs from 'node:fs';
import { dataDisk, writeFileAtomic, type DataDisk } from './data-disk.ts';

export class LazyJsonFile<T> {
  private timer?: NodeJS.Timeout;
  private readonly disk: DataDisk;
  /** A save failed and is being retried (said once). */
  private failing = false;

  /** `what` names the file in the log ("console registry"); `data` gives what to write. */
  constructor(root: string, readonly file: string, private readonly what: string, private readonly data: () => T, private readonly saveMs = 200) {
    this.disk = dataDisk(root);
  }

  /** What the file holds, or undefined when there is none. */
  load(): T | undefined {
    return fs.existsSync(this.file) ? JSON.parse(fs.readFileSync(this.file, 'utf8')) as T : undefined;
  }

  saveSoon(delay = this.saveMs): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.save(); }, delay);
    this.timer.unref();
  }

  /** Writes pending changes now (once: a failure is logged). */
  close(): void { if (this.timer) { clearTimeout(this.timer); this.timer = undefined; this.save(false); } }

  private save(retry = true): void {
    try {
      writeFileAtomic(this.file, JSON.stringify(this.data(), null, 1));
      this.disk.wrote();
      if (this.failing) this.disk.log(`${this.what} ${this.file} saved again`, { level: 'warn' });
      this.failing = false;
    } catch (e) {
      const err = this.disk.failed(`the ${this.what} ${this.file}`, e);
      if (!this.failing) this.disk.log(`${this.what} ${this.file} not saved: ${err.message}; what it holds now stays in memory and is saved once the write succeeds${retry ? ' (tried again every second)' : ''}`, { level: 'error' });
      this.failing = true;
      if (retry) this.saveSoon(Math.max(this.saveMs, 1000));
    }
  }
}
