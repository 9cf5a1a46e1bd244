// SSH keys at the relay: OpenSSH public key lines (relay.yaml's local.users, authorized_keys
// files), their fingerprints as OpenSSH prints them, and the relay's own host key (made at first
// start, then reused, so clients' known_hosts stay right across restarts and upgrades).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';

/** Key types a local user's key may be (what OpenSSH's ssh-keygen makes, and security keys). */
const KEY_TYPES = new Set(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com']);

export interface PublicKey {
  type: string;
  /** The key in SSH wire format (what the line's base64 holds). */
  blob: Buffer;
  comment: string;
  fingerprint: string;
}

/** `SHA256:` and the unpadded base64 of the blob's sha256, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** One OpenSSH public key line, `TYPE BASE64 [comment]`; undefined when it is not one (options
 *  in front, as authorized_keys may have them, are not taken: the relay would not enforce them). */
export function parsePublicKeyLine(line: string): PublicKey | undefined {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(line);
  if (!m || !KEY_TYPES.has(m[1])) return undefined;
  const blob = Buffer.from(m[2], 'base64');
  // The blob starts with its own type: a line whose two disagree (or a cut-off blob) is broken.
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (4 + n > blob.length || blob.toString('latin1', 4, 4 + n) !== m[1]) return undefined;
  return { type: m[1], blob, comment: m[3] ?? '', fingerprint: fingerprint(blob) };
}

/** The keys of an authorized_keys file (blank lines and # comments skipped); throws an Error
 *  naming the file and every line it cannot take. */
export function readAuthorizedKeys(file: string): PublicKey[] {
  const text = fs.readFileSync(file, 'utf8');
  const keys: PublicKey[] = [];
  const bad: number[] = [];
  text.split('\n').forEach((l, i) => {
    if (!l.trim() || l.trim().startsWith('#')) return;
    const k = parsePublicKeyLine(l);
    if (k) keys.push(k); else bad.push(i + 1);
  });
  if (bad.length) throw new Error(`${file}: line${bad.length > 1 ? 's' : ''} ${bad.join(', ')}: not an OpenSSH public key line (TYPE BASE64 comment; options in front are not supported)`);
  return keys;
}

/** Whether `signature` over `data` was made by the key `blob` (hash `hashAlgo` for rsa-sha2-*). */
export function verifySignature(blob: Buffer, data: Buffer, signature: Buffer, hashAlgo?: string): boolean {
  const key = ssh2.utils.parseKey(blob);
  if (key instanceof Error) return false;
  return (key as unknown as { verify(d: Buffer, s: Buffer, h?: string): boolean | Error }).verify(data, signature, hashAlgo) === true;
}

export interface HostKey {
  /** The private key, OpenSSH format (what ssh2's Server takes). */
  private: string;
  /** `ssh-ed25519 AAAA...`: a known_hosts entry is `[host]:port ` and this. */
  publicLine: string;
  fingerprint: string;
  /** Made now (the file did not exist). */
  made: boolean;
}

/** The relay's host key at `file`: read, or (missing) made as ed25519 and written with mode 0600
 *  (its folder made 0700 if missing), created exclusively so two starts never write two keys.
 *  Throws an Error naming the file when it cannot be read, made or is not a private key. */
export function loadHostKey(file: string): HostKey {
  let text: string | undefined;
  let made = false;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`local.ssh.hostKey ${file}: cannot read it: ${(e as Error).message}`);
  }
  if (text === undefined) {
    const k = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'cloudcons relay host key' });
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.writeFileSync(file, k.private, { mode: 0o600, flag: 'wx' });
      made = true;
      text = k.private;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`local.ssh.hostKey ${file}: cannot make it: ${(e as Error).message} (make it with ssh-keygen -t ed25519 -N '' -f ${file}, or give another path)`);
      text = fs.readFileSync(file, 'utf8'); // another start made it meanwhile
    }
  }
  const key = ssh2.utils.parseKey(text);
  if (key instanceof Error || !key.isPrivateKey()) throw new Error(`local.ssh.hostKey ${file}: not an unencrypted private key (${key instanceof Error ? key.message : 'a public key'}); make one with ssh-keygen -t ed25519 -N '' -f ${file}`);
  const blob = key.getPublicSSH();
  return { private: text, publicLine: `${key.type} ${blob.toString('base64')}`, fingerprint: fingerprint(blob), made };
}
