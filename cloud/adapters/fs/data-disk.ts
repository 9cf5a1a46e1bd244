// The embedded cloud's data disk as a state, not a crash. Every filesystem adapter under one data
// directory shares one DataDisk (dataDisk(dir)): a write that fails for lack of space (ENOSPC,
// EDQUOT) puts the disk in the full state, said once in the log and on /healthz, and comes back to
// the writer as StorageFull (HTTP 507, a WebSocket error); the adapters then refuse what they must
// store durably (segments, audit records, tokens, rules) and keep what is a cache (the hot tail)
// in memory only. The state ends by itself when a probe (statfs every `probeMs` while full, and
// after a write that succeeded) finds room again; no restart is needed. Writes are tried all the
// while (a refused write costs a system call), so storing resumes with the first byte of room.
//
// Also the write helpers every fs adapter uses (protocol/atomic-file.ts, shared with the relay and
// the CLI), so that no write is taken as done unless all of it reached the file.
import fs from 'node:fs';
import path from 'node:path';
import { StorageFull } from '../../../protocol/errors.ts';
import { writeFileAtomic } from '../../../protocol/atomic-file.ts';
import type { Log } from '../../../protocol/log.ts';

export { syncDir, writeAllSync, writeFileAtomic } from '../../../protocol/atomic-file.ts';

/** How often a full disk is looked at for room again (ms), unless set (ServerLimits.diskProbeMs). */
export const DISK_PROBE_MS = 1000;
/** Room (bytes) the probe wants to see before it calls the disk writable again. */
const PROBE_ROOM = 256 * 1024;

export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export class DataDisk {
  /** Where the state is said (the server sets its logger). */
  log: Log = (l) => console.error(`cloud: ${l}`);
  probeMs = DISK_PROBE_MS;
  private full?: { since: number; what: string; code: string; refused: number };
  private probe?: NodeJS.Timeout;

  constructor(readonly dir: string) {}

  /** A write of `what` failed with `e`: StorageFull when the disk has no room (entering the full
   *  state, logged once), `e` itself otherwise. The caller throws what it gets (or, for a cache,
   *  drops the data). */
  failed(what: string, e: unknown): Error {
    if (!isNoSpace(e)) return e instanceof Error ? e : new Error(String(e));
    const code = (e as NodeJS.ErrnoException).code!;
    if (!this.full) {
      this.full = { since: Date.now(), what, code, refused: 0 };
      this.log(`DATA DISK FULL: ${this.dir} (${code} writing ${what}): live output is kept in memory only and re-sent or uploaded by the relays, ` +
        'segment uploads are refused with 507 (relays keep them in their spools and retry), actions that need an audit record are refused; ' +
        'storing resumes by itself once there is room (free space on that disk)', { level: 'error' });
    }
    if (!this.probe) { this.probe = setInterval(() => this.look(), this.probeMs); this.probe.unref(); }
    this.full.refused++;
    return new StorageFull(`the cloud's data disk is full (${code} writing ${what}): nothing was stored; retry once an operator has freed space on ${this.dir}`);
  }

  /** A write succeeded: a full disk may have room again (the probe looks now: a small write can
   *  still fit in a file's last page when the disk has none). */
  wrote(): void { if (this.full) this.look(); }

  /** What /healthz says about the disk: undefined while it takes writes. */
  problem(): string | undefined {
    const f = this.full;
    return f && `data disk full since ${new Date(f.since).toISOString()} (${f.code} writing ${f.what}; ${f.refused} write(s) refused): free space on ${this.dir}`;
  }

  close(): void { clearInterval(this.probe); this.probe = undefined; }

  /** At start: a disk without room is said at once (and on /healthz), not at the first write. */
  lookAtStart(): void {
    const room = this.room();
    if (room === undefined || room >= PROBE_ROOM) return;
    this.failed(`nothing yet: ${room} bytes free at start`, Object.assign(new Error('no room'), { code: 'ENOSPC' }));
    this.full!.refused--;
  }

  private room(): number | undefined {
    try { const s = fs.statfsSync(this.dir); return s.bavail * s.bsize; } catch { return undefined; }
  }

  private look(): void {
    const room = this.room();
    if (room !== undefined && room >= PROBE_ROOM) this.recovered(`${room} bytes free`);
  }

  private recovered(why: string): void {
    const f = this.full!;
    this.full = undefined;
    this.close();
    this.log(`data disk ${this.dir} has room again (${why}) after ${((Date.now() - f.since) / 1000).toFixed(1)} s full, ${f.refused} write(s) refused meanwhile: storing resumed`, { level: 'warn' });
  }
}

const disks = new Map<string, DataDisk>();
/** The DataDisk of a data directory: one per directory, shared by its adapters. */
export function dataDisk(dir: string): DataDisk {
  const key = path.resolve(dir);
  let d = disks.get(key);
  if (!d) disks.set(key, d = new DataDisk(key));
  return d;
}

/** writeFileAtomic for a file of the data directory that a request changes (tokens, rules): a
 *  full disk is StorageFull (and the disk's full state), any other failure as it is. */
export function saveFile(file: string, data: string, what: string): void {
  const disk = dataDisk(path.dirname(file));
  try { writeFileAtomic(file, data); } catch (e) { throw disk.failed(`${what} ${file}`, e); }
  disk.wrote();
}
