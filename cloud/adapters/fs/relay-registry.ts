// Filesystem RelayRegistry: relays.json, rewritten lazily (lazy-json-file.ts); what it holds is
// said again by each relay's next hello and status. Connections do not survive a restart: `conn`
// is dropped when loading (the relay was last seen then, at the latest). One process and no await
// between reading and changing a record: each call is atomic.
import path from 'node:path';
import type { RelayRecord, RelayRegistry } from '../../core/ports.ts';
import { privateDir } from '../../../protocol/private-files.ts';
import { LazyJsonFile } from './lazy-json-file.ts';
import { saveFile } from './data-disk.ts';

export class FsRelayRegistry implements RelayRegistry {
  private readonly recs = new Map<string, RelayRecord>();
  private readonly file: LazyJsonFile<RelayRecord[]>;

  constructor(root: string, saveMs = 200) {
    privateDir(root);
    this.file = new LazyJsonFile(root, path.join(root, 'relays.json'), 'relay registry', () => [...this.recs.values()], saveMs);
    for (const r of this.file.load() ?? []) { delete r.conn; this.recs.set(r.name, r); }
  }

  async get(name: string): Promise<RelayRecord | undefined> { const r = this.recs.get(name); return r && copy(r); }
  async list(): Promise<RelayRecord[]> { return [...this.recs.values()].map(copy); }

  async connected(name: string, conn: string, about: Pick<RelayRecord, 'version' | 'protocol' | 'os' | 'arch' | 'boot' | 'features'>, now: number): Promise<void> {
    const old = this.recs.get(name);
    const moving = old?.conn !== undefined && old.boot === about.boot && old.connectedSince !== undefined;
    const { version: _v, protocol: _p, os: _o, arch: _a, boot: _b, features: _f, ...kept } = old ?? { name };
    this.recs.set(name, { ...kept, ...defined(about), conn, connectedSince: moving ? old.connectedSince : now, lastSeen: now });
    this.file.saveSoon();
  }

  async status(name: string, spool: { bytes: number; oldestAt?: number }, now: number, minMs: number): Promise<boolean> {
    const r = this.recs.get(name);
    if (!r || (r.spool && now - r.spool.at < minMs && now >= r.spool.at)) return false;
    r.spool = { ...defined(spool), at: now };
    r.lastSeen = now;
    this.file.saveSoon();
    return true;
  }

  async uploaded(name: string, now: number): Promise<void> {
    const r = this.recs.get(name);
    if (!r || (r.lastUpload ?? 0) >= now) return;
    r.lastUpload = now;
    this.file.saveSoon();
  }

  async disconnected(name: string, conn: string, now: number): Promise<void> {
    const r = this.recs.get(name);
    if (r?.conn !== conn) return;
    delete r.conn;
    r.lastSeen = now;
    this.file.saveSoon();
  }

  async setLocal(name: string, off: { by: string; at: number } | undefined): Promise<RelayRecord> {
    const old = this.recs.get(name);
    const r: RelayRecord = { ...(old ?? { name }) };
    if (off) r.localOff = { ...off }; else delete r.localOff;
    // An admin's decision, which no relay says again: on disk before the answer (a full disk
    // refuses it, StorageFull, and nothing changes), not up to saveMs later.
    this.recs.set(name, r);
    try { saveFile(this.file.file, JSON.stringify([...this.recs.values()], null, 1), 'the relay registry'); } catch (e) {
      if (old) this.recs.set(name, old); else this.recs.delete(name);
      throw e;
    }
    return copy(r);
  }

  /** Writes pending changes now (once: a failure is logged). */
  close(): void { this.file.close(); }
}

const copy = (r: RelayRecord): RelayRecord => ({ ...r, ...(r.spool ? { spool: { ...r.spool } } : {}), ...(r.localOff ? { localOff: { ...r.localOff } } : {}), ...(r.features ? { features: [...r.features] } : {}) });

/** `o` without its undefined fields (a stored record never holds one). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
