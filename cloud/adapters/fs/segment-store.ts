// Filesystem SegmentStore: each key is a file under <data>/segments/<key>. Create-only puts go
// through a temporary file that is fdatasync'ed and then hard-linked to the key (link fails if
// the key exists: If-None-Match: * without a race), and the directory is fsync'ed, and so is the
// parent of each folder the put made (a new day's folder), else a power loss could take the new
// folder, and the segment in it, after the relay was told it is stored and deleted its copy.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { NotFound, StorageFull, BadParameter } from '../../../protocol/errors.ts';
import type { SegmentStore } from '../../core/ports.ts';
import { shownName } from '../../../protocol/safe-text.ts';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, privateDir } from '../../../protocol/private-files.ts';

export class FsSegmentStore implements SegmentStore {
  readonly root: string;
  constructor(dataDir: string) {
    this.root = path.join(dataDir, 'segments');
    privateDir(this.root);
  }

  private file(key: string): string { return path.join(this.root, inside(key)); }

  async put(key: string, body: Buffer): Promise<'created' | 'exists'> {
    const file = this.file(key);
    if (fs.existsSync(file)) return 'exists';
    const dir = path.dirname(file);
    const tmp = path.join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
    // Asynchronous (thread pool): a flush to disk must not stall live output on the event loop.
    try {
      const made = await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
      const fh = await fsp.open(tmp, 'wx', PRIVATE_FILE_MODE);
      try { await fh.writeFile(body); await fh.datasync(); } finally { await fh.close(); }
      try { await fsp.link(tmp, file); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists'; throw e; }
      await syncDir(dir);
      if (made) for (let d = dir; d !== path.dirname(made) && d.length > this.root.length;) await syncDir(d = path.dirname(d));
      return 'created';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new StorageFull(`segment store ${this.root} is full (${code}): ${key} not stored`);
      throw e;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Buffer> {
    let fd: number;
    try { fd = fs.openSync(this.file(key), 'r'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFound(`no segment ${key}`);
      throw e;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.min(range?.start ?? 0, size), end = Math.min(range?.end ?? size, size);
      const buf = Buffer.allocUnsafe(Math.max(0, end - start));
      let n = 0;
      while (n < buf.length) { const r = fs.readSync(fd, buf, n, buf.length - n, start + n); if (!r) break; n += r; }
      return buf.subarray(0, n);
    } finally { fs.closeSync(fd); }
  }

  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    inside(prefix, true);
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
    const out: { key: string; size: number }[] = [];
    const walk = (rel: string) => {
      let ents: fs.Dirent[];
      try { ents = fs.readdirSync(path.join(this.root, rel), { withFileTypes: true }); } catch { return; }
      for (const e of ents) {
        const k = rel + e.name;
        if (e.name.startsWith('.tmp-')) continue;
        if (e.isDirectory()) { if (prefix.startsWith(k + '/') || (k + '/').startsWith(prefix)) walk(k + '/'); }
        else if (k.startsWith(prefix)) out.push({ key: k, size: fs.statSync(path.join(this.root, k)).size });
      }
    };
    walk(base);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async children(prefix: string): Promise<string[]> {
    const dir = path.join(this.root, inside(prefix, true));
    try {
      return fs.readdirSync(dir).filter((n) => !n.startsWith('.tmp-')).sort();
    } catch { return []; }
  }

  async delete(key: string): Promise<void> {
    fs.rmSync(this.file(key), { force: true });
  }
}

/** `key`, or with `prefix` a listing prefix, when it stays inside the store: no empty, `.` or `..`
 *  part (so no leading `/` either); a prefix may be empty or end in `/` (the folder itself). Else
 *  BadParameter. */
function inside(key: string, prefix = false): string {
  const parts = key.split('/');
  if (parts.some((p, i) => p === '.' || p === '..' || (p === '' && !(prefix && i === parts.length - 1)))) {
    throw new BadParameter(`bad object key${prefix ? ' prefix' : ''} ${shownName(key)}`);
  }
  return key;
}

async function syncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try { await dh.sync(); } finally { await dh.close(); }
}
