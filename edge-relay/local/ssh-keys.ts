// SSH keys at the relay: OpenSSH public key lines (relay.yaml's local.users, authorized_keys
// files), their fingerprints as OpenSSH prints them, and the relay's own host key (made at first
// start, then reused, so clients' known_hosts stay right across restarts and upgrades).
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { parseSshKeyLine, sshFingerprint } from '../../protocol/ssh-key.ts';
import { syncDir, writeFileAtomic } from '../../protocol/atomic-file.ts';

export interface PublicKey {
  type: string;
  /** The key in SSH wire format (what the line's base64 holds). */
  blob: Buffer;
  comment: string;
  fingerprint: string;
}

/** `SHA256:` and the unpadded base64 of the blob's sha256, as `ssh-keygen -lf` prints it. */
export const fingerprint = sshFingerprint;

/** One OpenSSH public key line, `TYPE BASE64 [comment]`, checked as the cloud checks the keys
 *  users give it (protocol/ssh-key.ts: the types ssh2 can verify, the blob's own type and fields;
 *  options in front, as authorized_keys may have them, are not taken: the relay would not enforce
 *  them), or why not. */
export function publicKeyLine(line: string): { key: PublicKey; why?: undefined } | { key?: undefined; why: string } {
  const r = parseSshKeyLine(line);
  if (!r.key) return { why: r.why };
  const blob = Buffer.from(r.key.blob, 'base64');
  return { key: { type: r.key.type, blob, comment: r.key.comment ?? '', fingerprint: r.key.fingerprint } };
}

/** The key of one line, or undefined when it is not one (publicKeyLine says why). */
export function parsePublicKeyLine(line: string): PublicKey | undefined { return publicKeyLine(line).key; }

/** The keys of an authorized_keys file (blank lines and # comments skipped); throws an Error
 *  naming the file and every line it cannot take, with why. */
export function readAuthorizedKeys(file: string): PublicKey[] {
  const text = fs.readFileSync(file, 'utf8');
  const keys: PublicKey[] = [];
  const bad: string[] = [];
  text.split('\n').forEach((l, i) => {
    if (!l.trim() || l.trim().startsWith('#')) return;
    const k = publicKeyLine(l);
    if (k.key) keys.push(k.key); else bad.push(`line ${i + 1}: ${k.why}`);
  });
  if (bad.length) throw new Error(`${file}: ${bad.join('; ')}`);
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
      // Whole or not at all (a crash mid-write would leave a key file no start can read), and
      // never over one another start made meanwhile: written and synced beside it, then linked.
      const tmp = `${file}.new-${process.pid}`;
      writeFileAtomic(tmp, k.private, 0o600);
      try { fs.linkSync(tmp, file); } finally { fs.rmSync(tmp, { force: true }); }
      syncDir(path.dirname(file));
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
