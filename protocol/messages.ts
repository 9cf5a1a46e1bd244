// Wire messages between relay <-> cloud and client <-> cloud.
//
// Every message is one JSON object in one WebSocket TEXT frame (API Gateway drops binary frames).
// Every message carries `v` (protocol version) and `t` (type). Console bytes travel base64-encoded
// in `d`, at most MAX_RAW_CHUNK raw bytes per message, so a frame stays under API Gateway's 32 KB.
// The full format is documented in protocol/README.md.
import { z } from 'zod';
import { NAME_MAX, NAME_RE } from './names.ts';
import { safeText } from './safe-text.ts';
import { FENCE_RULE, MAX_FENCE, MAX_STREAM_OFFSET, MAX_TIME_MS, TIME_RULE } from './bounds.ts';
import { parsePrincipal } from './principal.ts';
import { SSH_KEY_LINE_MAX, SSH_KEY_TYPES } from './ssh-key.ts';

export const PROTOCOL_VERSION = 1;
/** Highest offset an `out` may start at (bounds.ts MAX_STREAM_OFFSET): its end stays far below
 *  the safe integers, and below what a `welcome` may say (a stored end above that would make every
 *  later `welcome` invalid). */
export const MAX_OUT_OFFSET = MAX_STREAM_OFFSET - 32 * 1024;

const name = z.string().min(1).max(NAME_MAX).regex(NAME_RE, 'console names use letters, digits and . _ : @ -');
/** Canonical base64 (what Buffer#toString('base64') writes): decoded and encoded again, natively,
 *  it must come back the same. ~6x faster than the equivalent regex on a 30 KB payload (15 vs
 *  85 µs here), and every output message is checked by the cloud and again by each viewer. */
const isBase64 = (s: string) => s.length % 4 === 0 && Buffer.from(s, 'base64').toString('base64') === s;
const b64 = z.string().max(32 * 1024).refine(isBase64, 'must be base64');
const offset = z.number().int().nonnegative();
/** The message for a number outside `rule`, naming what was sent. */
const outside = (rule: string) => ({ error: (i: { input?: unknown }) => `must be ${rule}, got ${JSON.stringify(i.input)?.slice(0, 40)}` });
const fence = z.number(outside(FENCE_RULE)).int(outside(FENCE_RULE)).min(0, outside(FENCE_RULE)).max(MAX_FENCE, outside(FENCE_RULE));
/** A time a relay read something (ms since the epoch): the segment format's rule, so replay with
 *  timestamps, export and grep can show every stored time. */
const time = z.number(outside(TIME_RULE)).min(0, outside(TIME_RULE)).max(MAX_TIME_MS, outside(TIME_RULE));
const v = z.literal(PROTOCOL_VERSION);
const breakSeq = z.string().regex(/^[0-9a-z]$/, 'break sequence is one of 0-9 a-z');
const size = z.number().int().min(1).max(1000);
/** Text a relay writes for people (reasons, details, break names): its control, bidi and invisible
 *  characters arrive shown escaped (safe-text.ts), so no screen or log that prints it obeys them.
 *  Cleaned, not refused: an honest relay's reason may quote a tool's multi-line error. */
const relayText = (max: number) => z.string().max(max).transform(safeText);
/** The label a client gives itself (`cli`, `web`): printable ASCII, else the attach is refused. */
const clientLabel = z.string().max(64).regex(/^[\x20-\x7e]*$/, 'a client name is printable ASCII');

export const consoleState = z.enum(['up', 'down']);
export type ConsoleState = z.infer<typeof consoleState>;

export const consoleInfo = z.object({
  name,
  type: z.string().min(1).max(32).transform(safeText),
  state: consoleState,
  since: time,
  reason: relayText(1024).optional(),
  /** Whether this console type can change its terminal size (pty-backed consoles can). */
  resizable: z.boolean().optional(),
  /** The newest fence this relay has seen for the console (so a restarted cloud never reuses one). */
  fence: fence.optional(),
  /** Opened only while someone watches (the cloud then says when, with `watch`, in every mode). */
  ondemand: z.boolean().optional(),
  /** Break sequences the console offers (^Ecl?), and which one `0` sends. */
  breaks: z.array(z.object({ id: breakSeq, text: relayText(256), confirm: z.boolean().optional() })).max(36).optional(),
  defaultBreak: breakSeq.optional(),
});
export type ConsoleInfo = z.infer<typeof consoleInfo>;

/** Bounds of the local-access snapshot (`access`, cloud -> relay): the cloud splits one snapshot
 *  into parts of at most `partBytes` of JSON (a frame holds 32 KiB), a user's keys and rights over
 *  several parts if need be; a relay takes at most `parts` parts of one snapshot. */
export const ACCESS_LIMITS = { partBytes: 24 * 1024, parts: 4096, usersPerPart: 512, keysPerEntry: 64, rightsPerEntry: 10_000 };
/** A user as the cloud names them (protocol/principal.ts): `alice`, or `sso:alice`. */
const userName = z.string().max(140).refine((u) => { const { ref } = parsePrincipal(u); return !!ref && (ref.kind === 'user' || ref.kind === 'sso') && u === (ref.kind === 'sso' ? `sso:${ref.name}` : ref.name); },
  'a user name in normal form (alice, or sso:alice)');
export const accessKey = z.object({
  type: z.enum(SSH_KEY_TYPES),
  blob: z.string().min(4).max(SSH_KEY_LINE_MAX).refine(isBase64, 'must be base64'),
  fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'SHA256: and 43 base64 characters'),
});
export const accessUser = z.object({
  user: userName,
  keys: z.array(accessKey).max(ACCESS_LIMITS.keysPerEntry),
  /** Per console of the relay: `rw` (attach, force, break) or `ro` (spy). */
  rights: z.record(name, z.enum(['rw', 'ro'])).refine((r) => Object.keys(r).length <= ACCESS_LIMITS.rightsPerEntry, `at most ${ACCESS_LIMITS.rightsPerEntry} consoles per entry`),
});
export type AccessUser = z.infer<typeof accessUser>;
/** Records one `audit` message carries at most. */
export const MAX_LOCAL_AUDIT_RECS = 64;
/** Raw input bytes one local audit record carries at most (the journal splits longer input). */
export const MAX_LOCAL_AUDIT_INPUT = 4096;
const journalId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a journal id is 1 to 64 letters, digits, _ and -');
const journalSeq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** A local user name as the local audit carries it. */
export const LOCAL_USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@+:-]*$/;
/** One record of a relay's local audit journal (edge-relay/local/audit-journal.ts). */
export const localAuditRec = z.object({
  seq: journalSeq,
  what: z.string().max(32).regex(/^[a-z]+(\.[a-z]+)*$/, 'what happened is dotted lowercase (input, signin.refused)'),
  /** The local user name (the cloud names it in the audit: relay-side.ts localUser). */
  user: z.string().min(1).max(128).regex(LOCAL_USER_RE, 'a local user name is ASCII letters, digits and . _ @ + : -, starting with a letter or digit'),
  source: z.enum(['relay.yaml', 'cloud']).optional(),
  fp: z.string().max(64).regex(/^SHA256:[A-Za-z0-9+/]+$/, 'a key fingerprint is SHA256:<base64>').optional(),
  session: z.string().min(1).max(64).regex(/^[\x21-\x7e]+$/, 'a session id is printable ASCII'),
  ts: time,
  o: offset.max(MAX_STREAM_OFFSET).optional(),
  detail: relayText(1024).optional(),
  d: z.string().max(Math.ceil(MAX_LOCAL_AUDIT_INPUT / 3) * 4).refine(isBase64, 'must be base64')
    .refine((s) => Buffer.byteLength(s, 'base64') <= MAX_LOCAL_AUDIT_INPUT, `at most ${MAX_LOCAL_AUDIT_INPUT} bytes of input a record`).optional(),
});
export type LocalAuditRec = z.infer<typeof localAuditRec>;

// ---------------------------------------------------------------- relay -> cloud
export const relayToCloud = z.discriminatedUnion('t', [
  /** `relay`: the name in the relay's config, which must be its token's (absent: it has none
   *  configured and takes its token's, which the welcome says). `version`, `os`, `arch`: what the
   *  relay runs (for `cloudcons relays`); optional, as older relays send none. */
  z.object({
    v, t: z.literal('hello'), relay: name.optional(), boot: z.string().min(1).max(64), consoles: z.array(consoleInfo).max(10000),
    version: z.string().min(1).max(64).regex(/^[0-9A-Za-z.+_-]+$/, 'a version is letters, digits and . + _ -').optional(),
    os: relayText(128).optional(),
    arch: z.string().min(1).max(32).regex(/^[0-9A-Za-z_]+$/, 'an architecture is letters, digits and _ (x64, arm64)').optional(),
    /** What the relay understands beyond the base protocol: `access` (it keeps the cloud's
     *  local-access snapshot). A cloud sends such messages only to a relay that says so. Unknown
     *  words are ignored (a newer relay). */
    features: z.array(z.string().max(32)).max(32).optional(),
  }),
  /** How the relay is doing, every statusMs: its spool's backlog, output not yet stored by the
   *  cloud (`bytes`, and the age of its oldest byte in ms, absent when there is none). */
  z.object({ v, t: z.literal('status'), spool: z.object({ bytes: z.number().int().min(0).max(MAX_STREAM_OFFSET), oldestMs: z.number().int().min(0).max(MAX_TIME_MS).optional() }) }),
  /** `removed`: the relay's config no longer has it (a reload) and what it captured is uploaded:
   *  the cloud keeps its record (down) but no longer counts it as published by that connection. */
  z.object({ v, t: z.literal('console'), info: consoleInfo, removed: z.literal(true).optional() }),
  /** Output: bytes `d` that start at byte offset `o` of console `c`'s stream, read at time `ts` (ms). */
  /** `o` leaves room for `d`: every end offset the cloud derives (o + bytes) stays a safe integer. */
  z.object({ v, t: z.literal('out'), c: name, o: offset.max(MAX_OUT_OFFSET), ts: time, d: b64 }),
  /** The relay refused an input or break (stale fence, console down...). */
  z.object({ v, t: z.literal('rejected'), c: name, fence, session: z.string().max(64), what: z.enum(['in', 'break', 'resize']), reason: relayText(256) }),
  /** A break was sent to the device. */
  z.object({ v, t: z.literal('break-sent'), c: name, fence, session: z.string().max(64), seq: breakSeq }),
  /** Something that happened to a console, for the audit trail: initcmd.start, initcmd.end, idle,
   *  flapping, manual.down, manual.up. */
  z.object({ v, t: z.literal('event'), c: name, what: z.string().regex(/^[a-z]+(\.[a-z]+)?$/).max(32), detail: relayText(1024) }),
  /** Records of the relay's local audit journal of console `c` (edge-relay/local/audit-journal.ts):
   *  what local sessions did while the cloud was away, oldest first, consecutive seqs of journal
   *  `journal`. The cloud chains each seq once (a resend is not a second entry) and answers
   *  `audit-ok`. */
  z.object({ v, t: z.literal('audit'), c: name, journal: journalId, recs: z.array(localAuditRec).min(1).max(MAX_LOCAL_AUDIT_RECS) }),
  z.object({ v, t: z.literal('ping'), id: z.number().int() }),
  z.object({ v, t: z.literal('pong'), id: z.number().int() }),
]);
export type RelayToCloud = z.infer<typeof relayToCloud>;

// ---------------------------------------------------------------- cloud -> relay
export const cloudToRelay = z.discriminatedUnion('t', [
  /** Answer to hello: per console, the offset up to which the cloud has stored output. `live`:
   *  whether the relay streams every console's output (`always`, the default) or only consoles
   *  being watched (`watched`: the ones in `watched`, then as `watch` messages say). `quietBatchMs`:
   *  gather live output of a console nobody typed on in the last 2 s this long into one message
   *  (each message costs on API Gateway; a writer's echo still goes at once). */
  /** `relay`: the relay's name, its token's (a relay without a configured name takes it). */
  z.object({ v, t: z.literal('welcome'), relay: name.optional(), ends: z.record(z.string(), offset.max(MAX_STREAM_OFFSET)), live: z.enum(['always', 'watched']).optional(), watched: z.array(name).max(10000).optional(), quietBatchMs: z.number().int().min(0).max(60_000).optional() }),
  /** Someone started (`on`) or stopped watching a console: stream its output live from `from` (the
   *  cloud's stored end), or stop streaming it. `once`: send what there is from `from` now, without
   *  streaming on (a replay of an unwatched console wants what is not sealed yet). */
  z.object({ v, t: z.literal('watch'), c: name, on: z.boolean(), from: offset.optional(), once: z.boolean().optional() }),
  z.object({ v, t: z.literal('in'), c: name, fence, session: z.string().max(64), d: b64 }),
  z.object({ v, t: z.literal('break'), c: name, fence, session: z.string().max(64), seq: breakSeq }),
  z.object({ v, t: z.literal('resize'), c: name, fence, session: z.string().max(64), cols: size, rows: size }),
  /** The cloud learned a fence for the console (lock taken); older fences are stale from now on. */
  z.object({ v, t: z.literal('fence'), c: name, fence }),
  /** Take a console down by hand (closed until `up`) or bring it up (also ends a flap hold). */
  z.object({ v, t: z.literal('ctl'), c: name, op: z.enum(['down', 'up']), by: z.string().min(1).max(128) }),
  /** Local access (issue 17): who may sign in at the relay with which SSH key, and with what right
   *  on which of its consoles, as the cloud's access rules decide now; `enabled`: local access is
   *  allowed at this relay (`cloudcons relay-local`). One snapshot is parts 1..`parts` with one `id`,
   *  sent in order; a user may appear in several parts (their keys and rights add up). The relay
   *  replaces what it keeps once the last part came; a part of another id starts over. */
  z.object({ v, t: z.literal('access'), id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, '1 to 32 of A-Z a-z 0-9 _ -'),
    part: z.number().int().min(1).max(ACCESS_LIMITS.parts), parts: z.number().int().min(1).max(ACCESS_LIMITS.parts), enabled: z.boolean(),
    users: z.array(accessUser).max(ACCESS_LIMITS.usersPerPart) }).refine((m) => m.part <= m.parts, { message: 'part must be at most parts', path: ['part'] }),
  /** The local audit records of console `c`, journal `journal`, up to `seq` are in its audit chain:
   *  the relay removes them from its journal. */
  z.object({ v, t: z.literal('audit-ok'), c: name, journal: journalId, seq: journalSeq }),
  z.object({ v, t: z.literal('error'), code: z.string(), message: z.string() }),
  z.object({ v, t: z.literal('ping'), id: z.number().int() }),
  z.object({ v, t: z.literal('pong'), id: z.number().int() }),
]);
export type CloudToRelay = z.infer<typeof cloudToRelay>;

// ---------------------------------------------------------------- client -> cloud
export const attachMode = z.enum(['rw', 'spy', 'force']);
export type AttachMode = z.infer<typeof attachMode>;

export const clientToCloud = z.discriminatedUnion('t', [
  /** Attach to a console. `rw` takes the lock if free (else joins as spy), `force` takes it over.
   *  History first: the last `tail` lines, or everything from output offset `from` (a client that
   *  reconnects passes the end of what it has shown, so it misses nothing). */
  z.object({ v, t: z.literal('attach'), c: name, mode: attachMode, tail: z.number().int().min(0).max(100000).optional(), from: offset.optional(), cols: size.optional(), rows: size.optional(), client: clientLabel.optional() }),
  z.object({ v, t: z.literal('in'), d: b64 }),
  z.object({ v, t: z.literal('lock'), op: z.enum(['take', 'force', 'spy']) }),
  z.object({ v, t: z.literal('break'), seq: breakSeq }),
  z.object({ v, t: z.literal('resize'), cols: size, rows: size }),
  z.object({ v, t: z.literal('who') }),
  z.object({ v, t: z.literal('replay'), lines: z.number().int().min(1).max(100000) }),
  z.object({ v, t: z.literal('ping'), id: z.number().int() }),
  z.object({ v, t: z.literal('pong'), id: z.number().int() }),
]);
export type ClientToCloud = z.infer<typeof clientToCloud>;

export const viewer = z.object({ session: z.string(), user: z.string(), mode: z.enum(['rw', 'spy']), since: z.number(), client: z.string().optional() });
export type Viewer = z.infer<typeof viewer>;

// ---------------------------------------------------------------- cloud -> client
export const cloudToClient = z.discriminatedUnion('t', [
  z.object({ v, t: z.literal('attached'), c: name, session: z.string(), user: z.string(), mode: z.enum(['rw', 'spy']), fence: fence.optional(), writer: z.string().optional(), state: consoleState, type: z.string(),
    /** The console's break sequences (for ^Ecl?), as its relay published them. */
    breaks: consoleInfo.shape.breaks, defaultBreak: breakSeq.optional(),
    /** What this user may do on the console (the access rules' actions: attach, force, break,
     *  replay, audit, ...), for a client to offer only those; the cloud checks each anyway. */
    rights: z.array(z.string().max(16)).max(32).optional() }),
  /** Live output from offset `o`. */
  z.object({ v, t: z.literal('out'), o: offset, d: b64 }),
  /** History requested with attach `tail` (kind attach) or `replay`; `d` is one chunk, `last` marks
   *  the final one, which carries `end`: the output offset the history reaches. A client drops
   *  live bytes below `end` that arrived before the history, so the seam has no gap and no overlap. */
  z.object({ v, t: z.literal('history'), kind: z.enum(['attach', 'replay']), d: b64, last: z.boolean(), end: offset.optional() }),
  /** Your mode changed: after a lock op, or `bumped` when another user forced the lock. */
  z.object({ v, t: z.literal('mode'), mode: z.enum(['rw', 'spy']), fence: fence.optional(), bumpedBy: z.string().optional(), writer: z.string().optional() }),
  z.object({ v, t: z.literal('who'), viewers: z.array(viewer) }),
  z.object({ v, t: z.literal('state'), state: consoleState, reason: z.string().optional() }),
  /** You missed `bytes` bytes of live output because your connection could not keep up. */
  z.object({ v, t: z.literal('missed'), bytes: z.number().int().positive() }),
  /** A human-readable notice (a lock refused, someone attached, a break was sent). */
  z.object({ v, t: z.literal('notice'), text: z.string() }),
  z.object({ v, t: z.literal('error'), code: z.string(), message: z.string() }),
  z.object({ v, t: z.literal('ping'), id: z.number().int() }),
  z.object({ v, t: z.literal('pong'), id: z.number().int() }),
]);
export type CloudToClient = z.infer<typeof cloudToClient>;

// Messages as the sender builds them: `v` is added by `encode`.
type WithoutV<T> = T extends unknown ? Omit<T, 'v'> : never;
export type Out<T> = WithoutV<T>;
