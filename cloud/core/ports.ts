// The cloud core's ports. The core keeps no state of its own between calls: everything it knows
// lives behind these interfaces, so the same core runs inside one long-lived process (memory + fs
// adapters) and as stateless Lambda invocations (DynamoDB + S3 adapters). Each port has one
// contract suite in test/contracts that every adapter passes.
import type { ConsoleInfo, ConsoleState } from '../../protocol/messages.ts';
import type { AuditVerifyResult } from './audit-walker.ts';

// ------------------------------------------------------------------------------------------ lock
export interface Lock {
  console: string;
  /** Session holding the lock, or undefined when free (released or never taken). */
  session?: string;
  user?: string;
  /** Fence token of the current (or last) holder. Strictly increases with every acquisition, and
   *  never passes MAX_FENCE (2^48, protocol/bounds.ts): far below 2^53, where +1 stops counting. */
  fence: number;
  /** Lease end in ms since the epoch; a lock past it counts as free. */
  expiresAt: number;
}

/** A holder whose lease lapsed: who, with which fence, and when the lease ended. */
export interface LapsedHolder { session: string; user: string; fence: number; expiresAt: number }

export type AcquireResult =
  | { ok: true; lock: Lock;
    /** The holder that was forced out, if any. */ bumped?: { session: string; user: string };
    /** The holder whose lease had lapsed (no renewal for leaseMs) when this acquisition replaced
     *  it, with its fence and when it lapsed: the caller audits `lock.expired` for it and tells it.
     *  Also set when that holder is the acquirer itself (its old lease lapsed; a new fence now). */
    lapsed?: LapsedHolder }
  | { ok: false; lock: Lock };

/** The single write lock per console: a lease with a fence. */
export interface LockStore {
  /** Current lock of a console; a console never locked gives `{ fence: 0, expiresAt: 0 }`. */
  get(console: string): Promise<Lock>;
  /** Takes the lock for `session`. Without `force` it succeeds only if the lock is free, expired or
   *  already held by the same session with a lease that has not lapsed (then it is renewed and
   *  keeps its fence; a lapsed holder taking it again gets a new fence and `lapsed`). Every successful
   *  acquisition by a different session increments the fence, and so does `force` by the holder
   *  itself (a re-fence). Atomic against concurrent callers: of N racing acquirers exactly one wins.
   *  Throws Conflict if the fence is at MAX_FENCE (only a seed can put it there). */
  acquire(console: string, holder: { session: string; user: string }, opts: { force: boolean; leaseMs: number; now: number }): Promise<AcquireResult>;
  /** Extends the lease if `session` still holds the lock with `fence` and its lease has not lapsed
   *  (`expiresAt > now`); false otherwise. A lapsed lease is never revived: its holder must acquire
   *  again (a new fence), so a writer that went silent cannot go on typing as if nothing happened. */
  renew(console: string, session: string, fence: number, leaseMs: number, now: number): Promise<boolean>;
  /** Frees the lock if `session` holds it with `fence` (the fence is kept); false otherwise. Repeating it is safe. */
  release(console: string, session: string, fence: number): Promise<boolean>;
  /** Makes sure the next acquisition gets a fence above `fence` (learned from a relay after a cloud
   *  restart, so a fence is never reused). Never lowers the fence. Throws BadParameter for a fence
   *  that is not a whole number from 0 to MAX_FENCE (2^48). */
  seedFence(console: string, fence: number): Promise<void>;
}

// -------------------------------------------------------------------------------------- sessions
export interface Session {
  id: string;
  console: string;
  user: string;
  mode: 'rw' | 'spy';
  /** Fence of the lock while mode is rw. */
  fence?: number;
  since: number;
  /** Connection the session talks over (a WebSocket id). */
  conn: string;
  client?: string;
  /** Who signed in on the connection (no secret in it): the rights of the session are decided
   *  again with it when the access rules change, for every live message and at the periodic
   *  re-check, and `who.expires` ends it. Absent on sessions stored before it existed: they are
   *  checked as the bare user name (no groups, not admin). */
  who?: Principal;
}

/** Attached viewers and writers per console. */
export interface SessionStore {
  put(s: Session): Promise<void>;
  get(id: string): Promise<Session | undefined>;
  /** Removes a session; unknown ids are ignored. */
  delete(id: string): Promise<void>;
  /** Sessions of one console, oldest first: called for every live chunk (the fan-out), so it
   *  must be cheap. */
  byConsole(console: string): Promise<Session[]>;
  /** Sessions riding on one connection (normally one): called for every message a client sends. */
  byConn(conn: string): Promise<Session[]>;
}

// -------------------------------------------------------------------------------------- consoles
export interface ConsoleRecord {
  name: string;
  type: string;
  state: ConsoleState;
  since: number;
  reason?: string;
  relay: string;
  /** Connection of the relay that publishes the console, while it is connected. */
  relayConn?: string;
  resizable?: boolean;
  /** Opened by its relay only while watched: the cloud sends `watch` for it in every live mode. */
  ondemand?: boolean;
  breaks?: ConsoleInfo['breaks'];
  defaultBreak?: string;
  /** Taken down by hand (`cloudcons console down`): told to its relay again when it reconnects. */
  adminDown?: { by: string; at: number };
  /** The console shows a password prompt now: input is audited redacted (secret-prompt.ts). */
  secretPrompt?: boolean;
  /** The last local audit record (issue 17) of the console's relay chained: its journal and seq
   *  there (relay-side.ts: an upload sent again is not chained twice); `pending`, while records up
   *  to that seq are being chained (a crash leaves it: the next upload looks in the chain). */
  localAudit?: { journal: string; seq: number; pending?: number };
  /** The highest write-lock fence this cloud handed out or accepted for the console. Kept here as
   *  well as in the lock store, which the embedded cloud holds in memory only: a relay's claim to
   *  have seen a fence far above it is refused (relay-side.ts relayHello). */
  fence?: number;
}

/** Known consoles. Survives restarts in durable adapters so a console of a relay that is down
 *  is still listed (as down) and its log still replayable. A name belongs to the relay in its
 *  record (`relay`) until an admin moves or removes it: the core writes through putIf, so no
 *  other relay can take it, by racing or otherwise. */
export interface ConsoleRegistry {
  get(name: string): Promise<ConsoleRecord | undefined>;
  list(): Promise<ConsoleRecord[]>;
  /** Creates or replaces a record whoever it belongs to (set-up and tests; the core uses putIf). */
  put(rec: ConsoleRecord): Promise<void>;
  /** Stores `rec` only if the stored record of `rec.name` belongs to relay `owner` now, or, with
   *  `owner` null, only if there is none: atomic against concurrent callers (of two relays
   *  claiming a free name at once exactly one gets it, and a write that read the record before an
   *  admin moved it cannot undo the move). False, storing nothing, otherwise. */
  putIf(rec: ConsoleRecord, owner: string | null): Promise<boolean>;
  /** Removes the record of `name` if it belongs to relay `owner` and no relay connection publishes
   *  it (no `relayConn`); atomic like putIf. False, removing nothing, otherwise (also when there is
   *  no record). Output and audit records are not the registry's: they stay. */
  remove(name: string, owner: string): Promise<boolean>;
  /** Marks every console published over `relayConn` down (the relay went away). Returns them. */
  dropRelayConn(relayConn: string, reason: string, now: number): Promise<ConsoleRecord[]>;
}

// ---------------------------------------------------------------------------------------- relays
/** What the cloud knows of a relay (`cloudcons relays`): what it runs, as its last hello said; whether
 *  and since when it is connected; its spool's backlog as its last `status` said; its last upload. */
export interface RelayRecord {
  name: string;
  /** The cloudcons version, wire protocol version, OS and architecture its hello said (absent:
   *  an older relay that says none). */
  version?: string;
  protocol?: number;
  os?: string;
  arch?: string;
  /** The boot id of the relay process that said hello last (a restart changes it). */
  boot?: string;
  /** What its hello said it understands beyond the base protocol (`access`: local-access
   *  snapshots). */
  features?: string[];
  /** Its connection while connected (the newest, during a make-before-break move). */
  conn?: string;
  /** Connected without a break since (kept while it moves to a new connection; the last time
   *  it connected, once it is gone). */
  connectedSince?: number;
  /** When it last said anything the registry keeps (hello, status), or went away. */
  lastSeen?: number;
  /** Its spool's backlog as last reported (`at`, the cloud's clock): output not stored by the
   *  cloud yet, in bytes, and when its oldest byte was read (`oldestAt`, the report's age made a
   *  time on the cloud's clock, so the two clocks need not agree). */
  spool?: { bytes: number; oldestAt?: number; at: number };
  /** When the cloud last stored a segment it uploaded. */
  lastUpload?: number;
  /** Local (break-glass) SSH access at the relay turned off by an admin (`cloudcons relay-local
   *  off`), by whom and when; absent: on (the default). */
  localOff?: { by: string; at: number };
}

/** Known relays. Survives restarts in durable adapters (a relay that is down is still listed,
 *  with when it was last seen); `conn` does not (the embedded cloud drops it when loading). Each
 *  call changes only the fields it names, atomically against the others (a status and an upload
 *  of the same relay may be handled at once, by different Lambdas). */
export interface RelayRegistry {
  get(name: string): Promise<RelayRecord | undefined>;
  /** Every record, in no particular order. */
  list(): Promise<RelayRecord[]>;
  /** A hello over `conn`: sets what the relay runs (fields it did not send are removed), its
   *  connection and lastSeen. connectedSince becomes `now` unless the same relay process (boot)
   *  is still connected over another connection (it is moving, make-before-break). Creates the
   *  record if there is none. */
  connected(name: string, conn: string, about: Pick<RelayRecord, 'version' | 'protocol' | 'os' | 'arch' | 'boot' | 'features'>, now: number): Promise<void>;
  /** A status: stores the backlog (and lastSeen) unless the one stored was reported less than
   *  `minMs` before `now` (a relay that sends too many: false, nothing stored). Creates nothing:
   *  false when there is no record (a status before any hello). */
  status(name: string, spool: { bytes: number; oldestAt?: number }, now: number, minMs: number): Promise<boolean>;
  /** A segment of the relay's was stored at `now`: lastUpload moves forward (never back). Creates
   *  nothing. */
  uploaded(name: string, now: number): Promise<void>;
  /** Connection `conn` of the relay closed: if it is the relay's connection, the relay is not
   *  connected any more (lastSeen `now`); else (it had moved to a newer one) nothing changes.
   *  Repeating it is harmless. */
  disconnected(name: string, conn: string, now: number): Promise<void>;
  /** Turns local access at the relay off (`off`: who and when) or on again (undefined). Creates the
   *  record if there is none (an admin may decide before the relay first connects); a hello keeps
   *  it. Returns the record as stored. */
  setLocal(name: string, off: { by: string; at: number } | undefined): Promise<RelayRecord>;
}

// -------------------------------------------------------------------------------------- SSH keys
/** One SSH public key of a user (`cloudcons keys add`), for local access at the relays. */
export interface SshKeyRecord {
  /** ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521 (protocol/ssh-key.ts). */
  type: string;
  /** The key in OpenSSH wire format, base64. */
  blob: string;
  /** `SHA256:...` as ssh-keygen -lf prints it: unique among one user's keys. */
  fingerprint: string;
  comment?: string;
  addedAt: number;
  /** Who added it: the user, or an admin for them. */
  addedBy: string;
}

/** Users' SSH public keys: DATA/ssh-keys.json embedded, one DynamoDB item per user on AWS. */
export interface KeyStore {
  /** A user's keys, in the order added, and a version that counts changes (0: never had any). */
  get(user: string): Promise<{ keys: SshKeyRecord[]; version: number }>;
  /** Stores `keys` as the user's (an empty list: none) if their version is still `expect`; false
   *  when someone changed them meanwhile (nothing stored). Atomic against concurrent callers. */
  put(user: string, keys: SshKeyRecord[], expect: number): Promise<boolean>;
  /** Every user that has keys, with them, in no particular order (the relays' snapshots). */
  all(): Promise<{ user: string; keys: SshKeyRecord[] }[]>;
}

// ---------------------------------------------------------------------------------------- output
/** A console's stored output as one byte stream with absolute offsets, read by the core, the HTTP
 *  API and the viewers' catch-up. Implemented by LogStore (log-store.ts) over sealed segments
 *  (SegmentStore) plus the hot tail of live output not sealed yet (HotTail). */
export interface OutputStore {
  /** Stores live output that starts at `offset`. Bytes below the stored end are duplicates and
   *  skipped (de-duplication by offset); a start above the end leaves a hole that the relay's
   *  segment upload fills. Returns the stored end (exclusive) after the call. */
  append(console: string, offset: number, ts: number, data: Buffer): Promise<{ end: number }>;
  /** Stored end offset (exclusive) of a console; 0 for an unknown one. */
  end(console: string): Promise<number>;
  /** The last `lines` lines of output as raw bytes (what a terminal would need to redraw them). */
  tail(console: string, lines: number): Promise<Buffer>;
  /** Raw bytes [from, to) as stored (lost and not yet uploaded bytes are absent). */
  read(console: string, from: number, to: number): Promise<Buffer>;
  /** Up to `max` contiguous bytes at or after `from`: if `from` lies in a gap (or in a range not
   *  uploaded yet) the data starts after it (`offset` says where), and it stops before the next
   *  one. Empty at the end. */
  readAt(console: string, from: number, max: number): Promise<{ offset: number; data: Buffer }>;
  /** Consoles with any stored output. */
  consoles(): Promise<string[]>;
}

/** Immutable objects by key: sealed segments (filesystem embedded, S3 on AWS). */
export interface SegmentStore {
  /** Creates `key` unless it exists (If-None-Match: *): 'exists' leaves the stored bytes alone.
   *  Durable when the promise resolves. */
  put(key: string, body: Buffer): Promise<'created' | 'exists'>;
  /** Bytes [start, end) of an object, or all of it. Throws NotFound for a missing key. */
  get(key: string, range?: { start: number; end: number }): Promise<Buffer>;
  /** Objects whose key starts with `prefix`, with their sizes, sorted by key. */
  list(prefix: string): Promise<{ key: string; size: number }[]>;
  /** The next path component of every key under `prefix` (S3's CommonPrefixes with '/'). */
  children(prefix: string): Promise<string[]>;
  /** Removes an object; a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** A URL a relay can PUT `key` to itself (S3: presigned, create-only, exactly `size` bytes with
   *  that sha256). Stores without one (the filesystem) take uploads through the cloud. */
  presignPut?(key: string, opts: { size: number; sha256?: Buffer; expiresInS?: number }): Promise<{ url: string; headers: Record<string, string> }>;
}

/** Live output of a console that is not in a sealed segment yet, with chunk times. Held as
 *  contiguous runs; a hole between runs is output still on its way in a segment upload. */
export interface HotTail {
  /** Appends bytes starting at `offset`, which must be >= the newest run's end: at its end it
   *  extends that run, above it it starts a new one. `knownEnd`: the end as the caller read it
   *  just before (a hint an adapter may use to skip reading it again). */
  append(console: string, offset: number, ts: number, data: Buffer, knownEnd?: number): Promise<void>;
  /** Runs [start, end) in offset order. */
  runs(console: string): Promise<{ start: number; end: number }[]>;
  /** End of the newest run (0 if none): called for every live message, so it must be cheap. */
  end(console: string): Promise<number>;
  /** Chunks (with their arrival times) overlapping [from, to), clipped to it, in order. */
  read(console: string, from: number, to: number): Promise<{ offset: number; ts: number; data: Buffer }[]>;
  /** Offset of the first chunk (in offset order) stamped at or after `time`, if any. Times are the
   *  relay's and may step backwards: never assume they grow with offsets. */
  offsetAt(console: string, time: number): Promise<number | undefined>;
  /** Optional, for a cloud whose live messages can be handled out of order (API Gateway hands a
   *  connection's messages to concurrent Lambdas): stores the parts of a chunk below the end that
   *  no stored chunk covers (a chunk overtaken by later ones) and returns them. Without it, a
   *  chunk below the end counts as a resend. */
  fill?(console: string, offset: number, ts: number, data: Buffer): Promise<{ offset: number; data: Buffer }[]>;
  /** Forgets runs (or whole files of them) that lie entirely below `offset`. */
  trim(console: string, below: number): Promise<void>;
  /** Optional, for a cloud of several processes (Lambda containers) that each cache a console's
   *  segment listing: a number that changes whenever any of them changes the console's segments
   *  (indexChanged after a commit, an expiry, a compaction). A listing cached under another
   *  number is listed again. Without it the cache is trusted (one process writes: embedded). */
  indexVersion?(console: string): Promise<number>;
  /** Moves the version on; returns the new one. */
  indexChanged?(console: string): Promise<number>;
  consoles(): Promise<string[]>;
}

// ----------------------------------------------------------------------------------------- audit
export interface AuditRecord {
  time: number;
  console: string;
  /** Dotted lowercase event type. In a console's trail:
   *  - sessions: session.attach, session.detach, session.ended (its user may no longer spy the
   *    console, or its token stopped counting), session.refused (maxSessionsPerConsole);
   *  - input and breaks: input, input.denied, input.undelivered (audited, then no relay connection
   *    took it), input.dropped (the relay refused it; also break.dropped, resize.dropped), break,
   *    break.denied, break.undelivered, resize.denied;
   *  - the write lock: lock.take, lock.force, lock.bumped, lock.refused, lock.denied, lock.refence,
   *    lock.release, lock.expired (a writer's lease lapsed: the old holder), lock.revoked (a writer
   *    who may no longer attach was moved to spy);
   *  - the console: console.up, console.down, console.<event> (what its relay reports: flapping,
   *    idle, initcmd.start, manual.down, spool.full, spool.ok, ...), console.down.request, console.up.request,
   *    console.remove, console.move; output.gap, output.conflict; relay.refused, relay.fence;
   *  - access.denied, export.
   *  In the cloud's own stream (CLOUD_STREAM): auth.signin, auth.failure, auth.refused (connection
   *  limit), auth.ended, token.create, token.revoke, access.change, access.denied (admin actions),
   *  console.remove, console.move, relay.name, relay.refused, relay.fence, relay.ignored,
   *  relay.audit.limited, relay.audit.suppressed.
   *  Every chain: audit.seal, audit.reseal (audit-chain.ts, audit-reseal.ts). */
  type: string;
  user?: string;
  session?: string;
  fence?: number;
  /** Input bytes, base64. */
  data?: string;
  detail?: string;
  /** Output offset at the time of the event, to interleave audit with output. */
  offset?: number;
  /** `local`: recorded at the console's relay by a local (break-glass) session while the cloud was
   *  away (issue 17), uploaded from its audit journal and chained when the link came back. `time`
   *  is then when the cloud chained it, `relayTime` when it happened on the relay's clock, `relay`
   *  which relay, `journal` + `jseq` its place in that relay's journal (each is chained once). */
  via?: 'local';
  relayTime?: number;
  relay?: string;
  fingerprint?: string;
  journal?: string;
  jseq?: number;
  /** Hash chain (audit-chain.ts), set by the store: position in the console's chain (1, 2, ...),
   *  hash of the record before, SHA-256 of this record's canonical form. Absent on records
   *  written before chaining existed. */
  seq?: number;
  prev?: string;
  hash?: string;
}

/** The newest position of a console's audit chain, kept outside the audit store (so records cut
 *  off the end, and records added after it, are detected): DATA/audit-heads/ embedded, DynamoDB
 *  items on AWS. `pending`: an append announced before its record is written (audit-chain.ts): the
 *  head proves that record too, and nothing else beyond `seq`. seq 0 (hash 64 zeros) with a
 *  pending append: the first record of the chain is being written. */
export interface AuditHead { seq: number; hash: string; time: number; pending?: PendingAppend }

/** The record an append is about to write: its seq (head seq + 1), hash and time. `rec` is the
 *  record itself where several writers share a chain (DynamoDB), so that another one can finish
 *  the append; a store with one writer keeps only seq, hash and time. */
export interface PendingAppend { seq: number; hash: string; time: number; rec?: AuditRecord }

export interface AuditHeadStore {
  /** The head; undefined when the console has none. Throws UnreadableHead (audit-chain.ts) when
   *  one is stored but cannot be read (not JSON, not a head): appends then fail closed. */
  get(console: string): Promise<AuditHead | undefined>;
  /** Replaces the head with `to` if it is `from` now (the same seq, hash and pending hash;
   *  undefined: no head yet); false if it is not (another writer moved it). Atomic against
   *  concurrent callers. */
  advance(console: string, from: AuditHead | undefined, to: AuditHead): Promise<boolean>;
  /** Sets the head whatever it is now (`cloudcons audit reseal`: a lost or unreadable head). */
  reset(console: string, to: AuditHead): Promise<void>;
}

export interface AuditStore {
  /** Appends one record; durable when the promise resolves (the head's last move may still be
   *  on its way: settle). Records of one console keep order. Fails (the caller does not go on with
   *  what the record describes) when the chain's head is unreadable or a record the head does not
   *  prove lies where the next one belongs. */
  append(rec: AuditRecord): Promise<void>;
  /** Records of a console, oldest first, the newest `limit` when given. */
  list(console: string, opts?: { limit?: number; since?: number }): Promise<AuditRecord[]>;
  /** Checks the console's whole chain against its head (`cloudcons audit verify`). An unreadable
   *  head is reported in the result (problem `unreadable head`), not thrown. */
  verify?(console: string): Promise<AuditVerifyResult>;
  /** Consoles with audit records or a chain head, where the store can list them (the fs one). */
  consoles?(): Promise<string[]>;
  /** `cloudcons audit reseal`: a head that no longer matches intact records (lost, unreadable,
   *  restored from another time, or records cut off) is set to the last stored record, and an
   *  `audit.reseal` record saying from where to where, by whom, and what could not be known goes
   *  on the chain. Refused (Conflict) while the records themselves are broken (that is evidence),
   *  when the last record is not the one the head proves (a replacement), or on an intact chain. */
  reseal?(console: string, by: string, now: number): Promise<{ from?: AuditHead; to: AuditHead; record: AuditRecord }>;
  /** Waits for head moves that appends left running after their record was stored (DynamoDB: the
   *  move comes after the input was forwarded). A Lambda invocation awaits it before it ends; a
   *  move that never happens is finished by the next append. */
  settle?(): Promise<void>;
}

// ---------------------------------------------------------------------------------------- tokens
export interface Principal {
  /** What the connection may speak: the user API and sessions, or the relay protocol. */
  kind: 'user' | 'relay';
  /** The name rules, sessions, write locks and the audit know the principal by, in normal form
   *  (protocol/principal.ts): `alice` for a token user, `sso:alice` for a user signed in with
   *  OpenID Connect (never the same person as token user alice), the relay's name (`edge1`) for a
   *  relay token (`principalLabel()` writes it `relay:edge1`). A user's name can never read as a
   *  group (`@ops`), another kind (`sso:`, `relay:`) or a look-alike: they are refused at sign-in. */
  name: string;
  admin: boolean;
  /** Token id, or `oidc:<issuer>#<sub>` for a user signed in with an OpenID Connect ID token. */
  tokenId: string;
  /** Groups the user belongs to (from the token, or the OIDC groups claim): ACL rules name them. */
  groups?: string[];
  /** How the principal proved itself. Absent means a cloudcons bearer token. */
  via?: 'token' | 'oidc';
  /** When the token (or ID token) stops counting, ms since the epoch: an open connection is
   *  closed then (embedded: a timer; Lambda: at its next message or live output), as after a
   *  revocation; input is refused from then on. */
  expires?: number;
}

/** A token as listed: everything but the secret (which is never stored, only its SHA-256). */
export interface TokenInfo {
  id: string;
  kind: 'user' | 'relay';
  name: string;
  admin: boolean;
  created: number;
  /** Refused from this time on (ms since the epoch); absent: never expires. */
  expires?: number;
  revoked?: { at: number; by: string };
}

export interface TokenStore {
  /** The principal a bearer token stands for, or undefined (unknown or malformed). A known token
   *  that expired or was revoked throws Unauthorized saying so (and since when), and so does one
   *  whose stored name is no valid name (principalOf in adapters/fs/token-store.ts). */
  verify(token: string, now?: number): Promise<Principal | undefined>;
  /** Creates a token; returns the secret once (only its hash is stored). The name is stored in
   *  normal form; one that is no user's or relay's throws BadParameter (protocol/principal.ts tokenName). */
  create(p: { kind: 'user' | 'relay'; name: string; admin?: boolean; expires?: number }): Promise<{ token: string; id: string; expires?: number }>;
  /** Every token, newest first, without secrets. Revoked ones are kept (and listed) for the record. */
  list(): Promise<TokenInfo[]>;
  /** One token by id (undefined if unknown): an open connection's token is checked again with it. */
  info(id: string): Promise<TokenInfo | undefined>;
  /** Revokes a token by id (at once, for every cloud process); undefined for an unknown id. Revoking twice keeps the first time. */
  revoke(id: string, by: string, now: number): Promise<TokenInfo | undefined>;
}

// ---------------------------------------------------------------------------------- access rules
/** The access rules document (acl.ts), stored as checked JSON with a version that counts changes. */
export interface AccessStore {
  /** The stored document (`doc` absent: never set) and its version (0 when never set). */
  get(): Promise<{ doc?: unknown; version: number }>;
  /** Stores `doc` as version `expect + 1` if the stored version is still `expect`; false if
   *  someone changed it meanwhile. */
  put(doc: unknown, expect: number): Promise<boolean>;
}

// -------------------------------------------------------------------------------------- identity
/** What the web viewer needs to sign a user in at the identity provider (Authorization Code flow
 *  with PKCE, no client secret): served by GET /v1/auth/config. */
export interface WebSignIn { issuer: string; clientId: string; authorizationEndpoint: string; tokenEndpoint: string; scopes: string }

/** Users signed in elsewhere: an OpenID Connect ID token (a JWT) from the configured issuer
 *  (cloud/adapters/oidc.ts). Stateless (keys are cached per process), so it is configuration, not
 *  state: each Lambda container builds its own. */
export interface IdentityVerifier {
  /** The user the token stands for (`via: 'oidc'`, never a relay). Throws Unauthorized saying what
   *  is wrong (expired, wrong audience, bad signature, no user claim, ...), or ConnectionProblem
   *  when the issuer cannot be reached to fetch its keys. */
  verify(jwt: string): Promise<Principal>;
  /** The endpoints and client id for the web viewer's sign-in, if it can offer one. */
  webSignIn?(): Promise<WebSignIn>;
}

// ----------------------------------------------------------------------------------- connections
export interface SendOptions {
  /** The message is live output of `console` at `offset` carrying `bytes` bytes. A sender may hold
   *  such messages back from a connection that cannot keep up and deliver the same bytes later
   *  from the OutputStore (in offset order, nothing twice), or tell the viewer what it missed. */
  live?: { console: string; offset: number; bytes: number };
}

/** Who is signed in on the open WebSocket connections: the node server's sockets embedded, the
 *  connection items written at $connect on AWS. It lets a revocation close every connection opened
 *  with the token at once, in whichever process the revocation is made. */
export interface ConnectionDirectory {
  /** The open connections of a principal (by kind and name), each with the principal it signed in
   *  as (its tokenId tells which token). A connection that just closed may still be listed (AWS:
   *  until its $disconnect is handled); closing it again is harmless. */
  of(who: Pick<Principal, 'kind' | 'name'>): Promise<{ conn: string; who: Principal }[]>;
}

/** Sending to a connection: a socket write embedded, an @connections post on AWS. */
export interface ConnectionSender {
  /** Sends one encoded message. Returns false if the connection is gone (the caller cleans up). */
  send(conn: string, frame: string, opts?: SendOptions): Promise<boolean>;
  /** Closes a connection with a reason; unknown connections are ignored. */
  close(conn: string, code: number, reason: string): Promise<void>;
  /** Resolves true once the connection can take more history (what was sent to it is mostly on
   *  its way), false when it is gone (closed, or closed here for reading nothing for too long).
   *  Senders that finish each send before returning (an @connections post) leave it out. */
  drained?(conn: string): Promise<boolean>;
}

export interface Clock { now(): number }

export interface CloudPorts {
  locks: LockStore;
  sessions: SessionStore;
  consoles: ConsoleRegistry;
  relays: RelayRegistry;
  /** Sealed segments and the hot tail: the core reads them as one OutputStore (LogStore). */
  segments: SegmentStore;
  hot: HotTail;
  audit: AuditStore;
  tokens: TokenStore;
  /** Optional single sign-on: bearer values shaped like a JWT go here instead of `tokens`.
   *  Unset, only cloudcons tokens are accepted. */
  identity?: IdentityVerifier;
  access: AccessStore;
  /** Users' SSH public keys for local access at the relays (ssh-keys.ts). */
  keys: KeyStore;
  sender: ConnectionSender;
  /** Optional: without it a revoked token's open connections end at their next re-check
   *  (tokenRecheckMs) instead of at once; their input is refused at once either way. */
  connections?: ConnectionDirectory;
  clock: Clock;
  /** Optional: what keeps the cloud from doing all its work now (the embedded cloud's full data
   *  disk), each a sentence saying what to do; /healthz reports them. Cheap: no I/O. */
  health?: { problems(): string[] };
}
