// Filesystem ConsoleRegistry: consoles.json, rewritten on every change (console changes are rare).
// Relay connections do not survive a restart, so `relayConn` is dropped when loading.
import fs from 'node:fs';
import path from 'node:path';
import type { ConsoleRecord, ConsoleRegistry } from '../../core/ports.ts';

export class FsConsoleRegistry implements ConsoleRegistry {
  private readonly file: string;
  private readonly recs = new Map<string, ConsoleRecord>();

  constructor(root: string) {
    fs.mkdirSync(root, { recursive: true });
    this.file = path.join(root, 'consoles.json');
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
  async put(rec: ConsoleRecord): Promise<void> { this.recs.set(rec.name, { ...rec }); this.save(); }

  async dropRelayConn(relayConn: string, reason: string, now: number): Promise<ConsoleRecord[]> {
    const out: ConsoleRecord[] = [];
    for (const r of this.recs.values()) {
      if (r.relayConn !== relayConn) continue;
      delete r.relayConn;
      Object.assign(r, { state: 'down', since: now, reason });
      out.push({ ...r });
    }
    if (out.length) this.save();
    return out;
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify([...this.recs.values()], null, 1));
    fs.renameSync(tmp, this.file);
  }
}
