// Filesystem ConsoleRegistry: consoles.json, rewritten lazily (lazy-json-file.ts: at most every
// `saveMs` after a change; records are re-announced by relays anyway). Relay connections do not
// survive a restart, so `relayConn` is dropped when loading.
import path from 'node:path';
import type { ConsoleRecord, ConsoleRegistry } from '../../core/ports.ts';
import { checkConsoleName } from '../../../protocol/names.ts';
import { privateDir } from '../../../protocol/private-files.ts';
import { LazyJsonFile } from './lazy-json-file.ts';

export class FsConsoleRegistry implements ConsoleRegistry {
  private readonly recs = new Map<string, ConsoleRecord>();
  private readonly file: LazyJsonFile<ConsoleRecord[]>;

  constructor(root: string, saveMs = 200) {
    privateDir(root);
    this.file = new LazyJsonFile(root, path.join(root, 'consoles.json'), 'console registry', () => [...this.recs.values()], saveMs);
    for (const r of this.file.load() ?? []) {
      const wasUp = !!r.relayConn;
      delete r.relayConn;
      if (wasUp || r.state === 'up') Object.assign(r, { state: 'down', reason: `relay ${r.relay} not connected since the cloud restarted` });
      this.recs.set(r.name, r);
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

  private saveSoon(): void { this.file.saveSoon(); }

  /** Writes pending changes now (once: a failure is logged). */
  close(): void { this.file.close(); }
}
