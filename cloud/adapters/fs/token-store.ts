// Filesystem TokenStore: tokens.json holds only SHA-256 hashes of the secrets. The file is
// re-read when it changes on disk, so `cloudcons token create --data DIR` works while a cloud
// process serves the same directory. Replaced atomically (data-disk.ts writeFileAtomic): a change
// that cannot be written (a full disk: StorageFull) is not made, in memory either.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Unauthorized } from '../../../protocol/errors.ts';
import { checkUserName, tokenName } from '../../../protocol/principal.ts';
import { shownName } from '../../../protocol/safe-text.ts';
import type { Principal, TokenInfo, TokenStore } from '../../core/ports.ts';
import { privateDir } from '../../../protocol/private-files.ts';
import { saveFile } from './data-disk.ts';

interface Entry extends TokenInfo { hash: string }

export function hashToken(token: string): string { return createHash('sha256').update(token).digest('hex'); }

/** cloudcons tokens: `ccu_` (user) or `ccr_` (relay) and 24 random bytes, base64url. */
export const TOKEN_RE = /^cc[ur]_[A-Za-z0-9_-]{20,100}$/;

export function newToken(kind: 'user' | 'relay'): { token: string; id: string } {
  return { token: `cc${kind === 'user' ? 'u' : 'r'}_${randomBytes(24).toString('base64url')}`, id: randomBytes(6).toString('hex') };
}

/** The principal of a stored token, or Unauthorized saying why it no longer counts. Its name in
 *  normal form (protocol/principal.ts): a token stored as `Alice` signs in as `alice`, and one whose
 *  name is no user's (`relay:x`, `@sre`, `sso:bob`, a look-alike: written before names were checked
 *  this strictly) signs in as nobody. */
export function principalOf(e: TokenInfo, now: number): Principal {
  const name = checkUserName(e.name);
  const who = `token ${e.id} (${e.kind} ${name.name ?? shownName(e.name)})`;
  if (e.revoked) throw new Unauthorized(`${who} was revoked at ${new Date(e.revoked.at).toISOString()} by ${e.revoked.by}`);
  if (e.expires !== undefined && now >= e.expires) throw new Unauthorized(`${who} expired at ${new Date(e.expires).toISOString()}: ask an admin for a new one (cloudcons token create)`);
  if (name.why !== undefined) throw new Unauthorized(`${who} cannot sign in: its name ${name.why}; ask an admin for a token with a valid name`);
  return { kind: e.kind, name: name.name, admin: e.admin, tokenId: e.id, ...(e.expires !== undefined ? { expires: e.expires } : {}) };
}

export const tokenInfo = ({ hash: _h, ...info }: Entry): TokenInfo => info;

export class FsTokenStore implements TokenStore {
  private readonly file: string;
  private entries: Entry[] = [];
  private mtime = -1;

  constructor(root: string) {
    privateDir(root);
    this.file = path.join(root, 'tokens.json');
  }

  private load(): void {
    let st: fs.Stats;
    try { st = fs.statSync(this.file); } catch { this.entries = []; return; }
    if (st.mtimeMs === this.mtime) return;
    this.entries = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Entry[];
    this.mtime = st.mtimeMs;
  }

  /** Writes `next` as the entries, then takes them (nothing changes when the write fails). */
  private save(next: Entry[]): void {
    saveFile(this.file, JSON.stringify(next, null, 1), 'the token store');
    this.entries = next;
    this.mtime = fs.statSync(this.file).mtimeMs;
  }

  async verify(token: string, now = Date.now()): Promise<Principal | undefined> {
    if (!TOKEN_RE.test(token)) return undefined;
    this.load();
    const h = hashToken(token);
    const e = this.entries.find((x) => x.hash === h);
    return e && principalOf(e, now);
  }

  /** `made`: a token from newToken to store (one already handed out: the first admin token is
   *  written to its file before the store has it, cli/run-cloud.ts bootstrapAdmin). */
  async create(p: { kind: 'user' | 'relay'; name: string; admin?: boolean; expires?: number }, made = newToken(p.kind)): Promise<{ token: string; id: string; expires?: number }> {
    const name = tokenName(p.name);
    this.load();
    const { token, id } = made;
    this.save([...this.entries, { id, hash: hashToken(token), kind: p.kind, name, admin: !!p.admin, created: Date.now(), ...(p.expires !== undefined ? { expires: p.expires } : {}) }]);
    return { token, id, expires: p.expires };
  }

  async list(): Promise<TokenInfo[]> {
    this.load();
    return this.entries.map(tokenInfo).sort((a, b) => b.created - a.created);
  }

  async info(id: string): Promise<TokenInfo | undefined> {
    this.load();
    const e = this.entries.find((x) => x.id === id);
    return e && tokenInfo(e);
  }

  async revoke(id: string, by: string, now: number): Promise<TokenInfo | undefined> {
    this.load();
    let e = this.entries.find((x) => x.id === id);
    if (!e) return undefined;
    if (!e.revoked) {
      const was = e;
      e = { ...e, revoked: { at: now, by } };
      this.save(this.entries.map((x) => (x === was ? e! : x)));
    }
    return tokenInfo(e);
  }
}
