// Filesystem AccessStore: access.json in the data directory ({ version, doc }), replaced
// atomically (data-disk.ts writeFileAtomic: a full disk is StorageFull and changes nothing) and
// re-read when it changes on disk (another process may set the rules).
import fs from 'node:fs';
import path from 'node:path';
import type { AccessStore } from '../../core/ports.ts';
import { privateDir } from '../../../protocol/private-files.ts';
import { saveFile } from './data-disk.ts';

export class FsAccessStore implements AccessStore {
  private readonly file: string;
  private cached: { doc?: unknown; version: number } = { version: 0 };
  private mtime = -1;

  constructor(root: string) {
    privateDir(root);
    this.file = path.join(root, 'access.json');
  }

  async get(): Promise<{ doc?: unknown; version: number }> {
    let st: fs.Stats;
    try { st = fs.statSync(this.file); } catch { return { version: 0 }; }
    if (st.mtimeMs !== this.mtime) {
      this.cached = JSON.parse(fs.readFileSync(this.file, 'utf8')) as { doc?: unknown; version: number };
      this.mtime = st.mtimeMs;
    }
    return this.cached;
  }

  async put(doc: unknown, expect: number): Promise<boolean> {
    if ((await this.get()).version !== expect) return false;
    const next = { version: expect + 1, doc };
    saveFile(this.file, JSON.stringify(next, null, 1), 'the access rules');
    this.cached = next;
    this.mtime = fs.statSync(this.file).mtimeMs;
    return true;
  }
}
