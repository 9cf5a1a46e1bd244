// Local (break-glass) access at the relay (issue 17): the seams between its parts.
//   - who may sign in with which SSH key, and with what rights on which console: an AccessSource.
//     Two of them: the `local.users` block of relay.yaml (emergency users of this relay only),
//     and the cloud's last word (users' keys kept in the cloud and the access rules resolved for
//     this relay's consoles, cached on the relay's disk for the outage). `combineSources` asks
//     each in turn.
//   - what happened, for the console's audit trail: LocalAudit (durable before input reaches the
//     device; uploaded and chained into the console's audit when the link is back).
//   - the SSH server (edge-relay/local/ssh-server.ts) uses both.

/** What a signed-in local user may do on one console. */
export type LocalRight = 'rw' | 'ro';

/** A user signed in at the relay with one key. */
export interface LocalPrincipal {
  user: string;
  /** The key's fingerprint as OpenSSH prints it (`SHA256:` + unpadded base64 of its sha256). */
  fingerprint: string;
  /** Where the key was found: relay.yaml's local.users, or the cloud's copy. */
  source: 'relay.yaml' | 'cloud';
  /** This user's right on `console` (undefined: none; the console is not even listed). */
  right(console: string): LocalRight | undefined;
}

/** One source of local identities. */
export interface AccessSource {
  /** The principal `user` signs in as with public key `key` (OpenSSH wire format: the blob an
   *  `ssh-ed25519 AAAA...` line holds, base64-decoded), or undefined when that key is not one of
   *  that user's here. */
  lookup(user: string, key: Buffer): LocalPrincipal | undefined;
  /** False when an admin turned local access off for this relay (`cloudcons relay-local off`). */
  enabled(): boolean;
}

/** The first source that knows the user's key wins; local access is off when any source says so
 *  (the cloud's "off" also closes relay.yaml's emergency users: an admin's decision). */
export function combineSources(...sources: AccessSource[]): AccessSource {
  return {
    lookup: (user, key) => { for (const s of sources) { const p = s.lookup(user, key); if (p) return p; } return undefined; },
    enabled: () => sources.every((s) => s.enabled()),
  };
}

/** What a local session did, for the console's audit trail. */
export interface LocalAuditRecord {
  console: string;
  /** signin, signin.refused, attach, detach, lock, force, input, break, ... */
  what: string;
  user: string;
  fingerprint?: string;
  /** Where the user's key came from (LocalPrincipal.source): the cloud names a `cloud` user as
   *  the cloud's user of that name, any other as `local:<user>@<relay>`. Absent: relay.yaml. */
  source?: LocalPrincipal['source'];
  /** The SSH session's id (one per connection and channel). */
  session: string;
  /** When it happened at the relay (ms since the epoch). */
  ts: number;
  /** Human text (why refused, the break's name); keystrokes go in `data`, redacted as the cloud
   *  redacts them. */
  detail?: string;
  data?: Buffer;
}

export interface LocalAudit {
  /** Writes `r` to the relay's spool; durable when it returns (input is forwarded after it). */
  record(r: LocalAuditRecord): void;
}
