// Filesystem KeyStore: DATA/ssh-keys.json ({ user: { version, keys } }), replaced atomically
// (data-disk.ts saveFile: a full disk is StorageFull and changes nothing, in memory either) before
// put returns: a key added or revoked is on disk when the user hears so. One process and no await
// between reading and writing: put's version check is atomic.
import fs from 'node:fs';
import path from 'node:path';
import type { KeyStore, SshKeyRecord } from '../../core/ports.ts';
import { privateDir } from '../../../protocol/private-files.ts';
import { saveFile } from './data-disk.ts';

type Stored = Record<string, { version: number; keys: SshKeyRecord[] }>;

export class FsKeyStore implements KeyStore {
  private readonly file: string;
  private data: Stored;

  constructor(root: string) {
    privateDir(root);
    this.file = path.join(root, 'ssh-keys.json');
    this.data = fs.existsSync(this.file) ? JSON.parse(fs.readFileSync(this.file, 'utf8')) as Stored : {};
  }

  async get(user: string): Promise<{ keys: SshKeyRecord[]; version: number }> {
    const u = this.data[user];
    return { keys: (u?.keys ?? []).map((k) => ({ ...k })), version: u?.version ?? 0 };
  }

  async put(user: string, keys: SshKeyRecord[], expect: number): Promise<boolean> {
    if ((this.data[user]?.version ?? 0) !== expect) return false;
    const next: Stored = { ...this.data, [user]: { version: expect + 1, keys: keys.map((k) => ({ ...k })) } };
    saveFile(this.file, JSON.stringify(next, null, 1), 'the SSH keys');
    this.data = next;
    return true;
  }

  async all(): Promise<{ user: string; keys: SshKeyRecord[] }[]> {
    return Object.entries(this.data).filter(([, u]) => u.keys.length).map(([user, u]) => ({ user, keys: u.keys.map((k) => ({ ...k })) }));
  }
}
