// SSH public keys as users hand them in (`cloudcons keys add FILE`): one OpenSSH public key line
// (`ssh-ed25519 AAAA... alice@laptop`) or an authorized_keys-style file of several. Pure: text in,
// keys or the problem of each line out. The cloud keeps these keys per user and sends them to
// relays for local SSH access (issue 17); the relay's SSH server (ssh2) checks signatures with them.
//
// Accepted: ssh-ed25519, ssh-rsa (2048 to 8192 bits; OpenSSH signs with rsa-sha2-256/512 over the
// same key), ecdsa-sha2-nistp256/384/521: what ssh2 verifies. Refused, each with its line named:
// private keys (a user who pastes id_ed25519 must hear so, not have it stored), lines with
// authorized_keys options in front (`from=...`, `command=...`: the cloud's rules decide, not
// options), certificates, security keys (sk-*: ssh2 cannot check them), ssh-dss (OpenSSH dropped
// it), blobs that do not hold a key of their type, and lines or files over the size limits.
// The fingerprint is what `ssh-keygen -lf` prints: `SHA256:` + unpadded base64 of the blob's SHA-256.
import { createHash } from 'node:crypto';

export const SSH_KEY_TYPES = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'] as const;
export type SshKeyType = typeof SSH_KEY_TYPES[number];

/** The longest key line accepted (an 8192-bit RSA key's line is about 1.4 KB). */
export const SSH_KEY_LINE_MAX = 4096;
/** The longest comment kept. */
export const SSH_KEY_COMMENT_MAX = 256;
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 8192;

export interface SshPublicKey {
  type: SshKeyType;
  /** The key in OpenSSH wire format, base64 (what the line holds). */
  blob: string;
  fingerprint: string;
  comment?: string;
}

/** `SHA256:` + unpadded base64 of the blob's SHA-256, as `ssh-keygen -lf` prints it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** A fingerprint as a user types it (`SHA256:...`, or without the prefix), or undefined. */
export function normalFingerprint(raw: string): string | undefined {
  const s = raw.trim().replace(/^SHA256:/i, '');
  return /^[A-Za-z0-9+/]{43}$/.test(s) ? `SHA256:${s}` : undefined;
}

/** Reads the wire format's strings (uint32 length + bytes) one after the other. */
function fields(blob: Buffer, n: number): Buffer[] | undefined {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    if (at + 4 > blob.length) return undefined;
    const len = blob.readUInt32BE(at);
    if (at + 4 + len > blob.length) return undefined;
    out.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return at === blob.length ? out : undefined;
}

/** Why `blob` does not hold a public key of `type`, or undefined when it does. */
function blobProblem(type: SshKeyType, blob: Buffer): string | undefined {
  const bad = `the base64 part does not hold an ${type} public key`;
  const parts = fields(blob, type === 'ssh-ed25519' ? 2 : 3);
  if (!parts) return `${bad} (truncated or with extra bytes: was the line cut or two keys run together?)`;
  if (parts[0].toString('latin1') !== type) return `${bad}: it says it is ${JSON.stringify(parts[0].toString('latin1').slice(0, 40))}`;
  if (type === 'ssh-ed25519') return parts[1].length === 32 ? undefined : `${bad} (an ed25519 key is 32 bytes, this one ${parts[1].length})`;
  if (type === 'ssh-rsa') {
    const n = parts[2];
    let i = 0;
    while (i < n.length && n[i] === 0) i++;
    const bits = i < n.length ? (n.length - i - 1) * 8 + (32 - Math.clz32(n[i])) : 0;
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) return `an RSA key of ${bits} bits: ${RSA_MIN_BITS} to ${RSA_MAX_BITS} are accepted (ssh-keygen -t ed25519 makes a better one)`;
    return parts[1].length && parts[1].length <= 8 ? undefined : `${bad} (bad public exponent)`;
  }
  const curve = type.slice('ecdsa-sha2-'.length);
  const point = { nistp256: 65, nistp384: 97, nistp521: 133 }[curve];
  if (parts[1].toString('latin1') !== curve) return `${bad}: its curve is ${JSON.stringify(parts[1].toString('latin1').slice(0, 40))}`;
  return parts[2].length === point && parts[2][0] === 4 ? undefined : `${bad} (an uncompressed ${curve} point is ${point} bytes)`;
}

/** One public key line (no options), or why it is not one. */
export function parseSshKeyLine(line: string): { key: SshPublicKey; why?: undefined } | { key?: undefined; why: string } {
  const text = line.trim();
  if (text.length > SSH_KEY_LINE_MAX) return { why: `longer than ${SSH_KEY_LINE_MAX} characters: not one public key` };
  if (/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text) || /PRIVATE KEY-----$/.test(text)) {
    return { why: 'a PRIVATE key: never hand it out; give the public one (the .pub file beside it, or ssh-keygen -y -f KEY)' };
  }
  if (/^-----BEGIN /.test(text) || /^---- BEGIN SSH2 PUBLIC KEY/.test(text)) return { why: 'a PEM or RFC 4716 block: give the key in OpenSSH format (ssh-keygen -i -f FILE converts it)' };
  const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(text);
  const type = m?.[1] ?? text.split(/\s/)[0];
  if (!(SSH_KEY_TYPES as readonly string[]).includes(type)) {
    if (/^(sk-|.*-cert-v01@openssh\.com$)/.test(type)) return { why: `a ${type} key: security-key keys and certificates are not supported (the relay's SSH server cannot check them); use an ed25519, RSA or ECDSA key` };
    if (type === 'ssh-dss') return { why: 'a DSA key: OpenSSH no longer accepts them; make an ed25519 key (ssh-keygen -t ed25519)' };
    // `from="10.0.0.0/8",no-pty ssh-ed25519 AAAA...`: the key type comes later on the line.
    if (text.split(/\s+/).slice(1).some((f) => (SSH_KEY_TYPES as readonly string[]).includes(f) || /^(sk-|ssh-dss$)/.test(f))) {
      return { why: 'authorized_keys options before the key (from=, command=, no-pty, ...) are not taken: the access rules decide; give the key alone (TYPE BASE64 [COMMENT])' };
    }
    return { why: `unknown key type ${JSON.stringify(type.slice(0, 40))}: one of ${SSH_KEY_TYPES.join(', ')} (an OpenSSH public key line: TYPE BASE64 [COMMENT])` };
  }
  if (!m) return { why: `${type} without its base64 part: an OpenSSH public key line is TYPE BASE64 [COMMENT]` };
  const b64 = m[2];
  const blob = Buffer.from(b64, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0 || blob.toString('base64') !== b64) return { why: 'the second field is not valid base64 (was the line cut or wrapped?)' };
  const why = blobProblem(type as SshKeyType, blob);
  if (why) return { why };
  const comment = m[3]?.trim();
  if (comment && (comment.length > SSH_KEY_COMMENT_MAX || /[^\x20-\x7e]/.test(comment))) return { why: `the comment must be at most ${SSH_KEY_COMMENT_MAX} printable ASCII characters` };
  return { key: { type: type as SshKeyType, blob: b64, fingerprint: sshFingerprint(blob), ...(comment ? { comment } : {}) } };
}

/** Every key of an authorized_keys-style text (blank lines and `#` comments skipped), or the
 *  problem of each bad line, numbered from 1. Keys repeated in the text are taken once. */
export function parseSshKeys(text: string, maxBytes: number): { keys: SshPublicKey[]; problems: string[] } {
  const size = Buffer.byteLength(text);
  if (size > maxBytes) return { keys: [], problems: [`${size} bytes: more than the ${maxBytes} bytes a key file may have (an authorized_keys of many keys? add them in parts)`] };
  const keys = new Map<string, SshPublicKey>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || line.trim().startsWith('#')) return;
    const r = parseSshKeyLine(line);
    if (r.why !== undefined) problems.push(`line ${i + 1}: ${r.why}`);
    else if (!keys.has(r.key.fingerprint)) keys.set(r.key.fingerprint, r.key);
  });
  // A private key file is many lines: one message for it, not one per line.
  const priv = problems.find((p) => p.includes('PRIVATE key'));
  if (priv) return { keys: [], problems: [priv] };
  if (!keys.size && !problems.length) problems.push('no public key in it (an OpenSSH public key line: TYPE BASE64 [COMMENT])');
  return { keys: [...keys.values()], problems };
}
