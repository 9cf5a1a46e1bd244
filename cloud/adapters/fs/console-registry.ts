// Filesystem ConsoleRegistry: consoles.json, rewritten at most every `saveMs` after a change (a relay
// with 1000 consoles announces them all at once; records are re-announced by relays anyway).
// Relay connections do not survive a restart, so `relayConn` is dropped when loading. Replaced
// atomically (data-disk.ts writeFileAtomic); a save that fails (a full disk) is logged once and
// tried again every `saveMs` (at least 1 s) until it succeeds: never a throw out of the timer.
import fs from 'node:fs';
import path from 'node:path';
import type { ConsoleRecord, ConsoleRegistry } from '../../core/ports.ts';
import { checkConsoleName } from '../../../protocol/names.ts';
import { privateDir } from '../../../protocol/private-files.ts';
import { dataDisk, writeFileAtomic, type DataDisk } from './data-disk.ts';

export class FsConsoleRegistry implements ConsoleRegistry {
  private readonly file: string;
  private readonly recs = new Map<string, ConsoleRecord>();
  private timer?: NodeJS.Timeout;
  private readonly disk: DataDisk;
  /** A save failed and is being retried (said once). */
  private failing = false;

  constructor(root: string, private readonly saveMs = 200) {
    privateDir(root);
    this.file = path.join(root, 'consoles.json');
    this.disk = dataDisk(root);
    if (fs.existsSync(this.file)) {
      for (const r of JSON.parse(fs.readFileSync(this.file, 'utf8')) as ConsoleRecord[]) {
        const wasUp = !!r.relayConn;
        delete r.relayConn;
        if (wasUp || r.state === 'up') Object.assign(r, { state: 'down', reason: `relay ${r.relay} not connected since the cloud restarted` });
        this.recs.set(r.name, r);
      }
    }
  }

  async get(name: string): Promise<ConsoleRecord | undefined> { const r = this.recs.get(name); return r && { ...r }; }
  async list(): Promise<ConsoleRecord[]> { return [...this.recs.values()].map((r) => ({ ...r })); }
  async put(rec: ConsoleRecord): Promise<void> { this.recs.set(checkConsoleName(rec.name), { ...rec }); this.saveSoon(); }

  // One process, and no await between the check and the change: atomic.
  async putIf(rec: ConsoleRecord, owner: string | null): Promise<boolean> {
    if ((this.recs.get(rec.name)?.relay ?? null) !== owner) return false;
    await this.put(rec);
    return true;
  }

  async remove(name: string, owner: string): Promise<boolean> {
    const cur = this.recs.get(name);
    if (!cur || cur.relay !== owner || cur.relayConn) return false;
    this.recs.delete(name);
    this.saveSoon();
    return true;
  }

  async dropRelayConn(relayConn: string, reason: string, now: number): Promise<ConsoleRecord[]> {
    const out: ConsoleRecord[] = [];
    for (const r of this.recs.values()) {
      if (r.relayConn !== relayConn) continue;
      delete r.relayConn;
      Object.assign(r, { state: 'down', since: now, reason });
      out.push({ ...r });
    }
    if (out.length) this.saveSoon();
    return out;
  }

  private saveSoon(delay = this.saveMs): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.save(); }, delay);
    this.timer.unref();
  }

  /** Writes pending changes now (once: a failure is logged). */
  close(): void { if (this.timer) { clearTimeout(this.timer); this.timer = undefined; this.save(false); } }

  private save(retry = true): void {
    try {
      writeFileAtomic(this.file, JSON.stringify([...this.recs.values()], null, 1));
      this.disk.wrote();
      if (this.failing) this.disk.log(`console registry ${this.file} saved again`, { level: 'warn' });
      this.failing = false;
    } catch (e) {
      const err = this.disk.failed(`the console registry ${this.file}`, e);
      if (!this.failing) this.disk.log(`console registry ${this.file} not saved: ${err.message}; the consoles as they are now stay in memory and are saved once the write succeeds${retry ? ' (tried again every second)' : ''}`, { level: 'error' });
      this.failing = true;
      if (retry) this.saveSoon(Math.max(this.saveMs, 1000));
    }
  }
}
