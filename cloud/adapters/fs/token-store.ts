// Filesystem TokenStore: tokens.json holds only SHA-256 hashes of the secrets. The file is
// re-read when it changes on disk, so `cloudcons token create --data DIR` works while a cloud
// process serves the same directory.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Principal, TokenStore } from '../../core/ports.ts';

interface Entry { id: string; hash: string; kind: 'user' | 'relay'; name: string; admin: boolean; created: number }

export function hashToken(token: string): string { return createHash('sha256').update(token).digest('hex'); }

export class FsTokenStore implements TokenStore {
  private readonly file: string;
  private entries: Entry[] = [];
  private mtime = -1;

  constructor(root: string) {
    fs.mkdirSync(root, { recursive: true });
    this.file = path.join(root, 'tokens.json');
  }

  private load(): void {
    let st: fs.Stats;
    try { st = fs.statSync(this.file); } catch { this.entries = []; return; }
    if (st.mtimeMs === this.mtime) return;
    this.entries = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Entry[];
    this.mtime = st.mtimeMs;
  }

  async verify(token: string): Promise<Principal | undefined> {
    if (!/^cc[ur]_[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
    this.load();
    const h = hashToken(token);
    const e = this.entries.find((x) => x.hash === h);
    return e && { kind: e.kind, name: e.name, admin: e.admin, tokenId: e.id };
  }

  async create(p: { kind: 'user' | 'relay'; name: string; admin?: boolean }): Promise<{ token: string; id: string }> {
    this.load();
    const token = `cc${p.kind === 'user' ? 'u' : 'r'}_${randomBytes(24).toString('base64url')}`;
    const id = randomBytes(6).toString('hex');
    this.entries.push({ id, hash: hashToken(token), kind: p.kind, name: p.name, admin: !!p.admin, created: Date.now() });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.entries, null, 1), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.mtime = fs.statSync(this.file).mtimeMs;
    return { token, id };
  }
}
