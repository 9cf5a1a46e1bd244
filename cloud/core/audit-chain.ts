// The audit hash chain: what makes an edit, a deletion, a reordering, a cut-off end or an added
// record of a console's audit trail detectable (`cloudcons audit verify`). Pure logic, no I/O: the
// audit stores (adapters/fs/audit-store.ts, adapters/aws/dynamo-audit-store.ts) append through
// appendChained() and feed what they hold to a ChainWalker (audit-walker.ts); resealChain
// (audit-reseal.ts) is the admin's way past a broken head.
//
// The chain, per console:
//   - every record carries `seq` (1, 2, 3 ... without gaps), `prev` (the `hash` of the record with
//     seq - 1; 64 zeros for seq 1) and `hash`, the SHA-256 (lowercase hex) of the record's
//     canonical serialisation: the record as JSON, `hash` itself left out, keys sorted by their
//     UTF-16 code units at every level, absent (undefined) fields left out, no whitespace, strings
//     and numbers as JSON.stringify writes them, UTF-8 bytes. So `hash` covers the content, the
//     position (`seq`) and, through `prev`, every record before.
//   - the head, the newest (seq, hash, time), is also kept OUTSIDE the audit store (AuditHeadStore:
//     DATA/audit-heads/<console>.json embedded, the DynamoDB item `audithead#<console>` on AWS).
//     Records cut off the end leave the chain shorter than its head: detected. The head proves
//     every record the chain may end with, so a record added after it is detected too: an append
//     (1) announces its record in the head (`pending`: its seq and hash, on DynamoDB the record
//     itself), (2) writes the record, (3) moves the head to it. A crash after (1) leaves an
//     announced record that was never written (an interrupted append: what it described never went
//     ahead, since the caller goes on only once the record is stored); after (2), a last record
//     the head announces (the head lags by one). verify accepts both and says so. A record beyond
//     the head that the head does not announce is an addition: broken. Appends never adopt one:
//     they fail closed (the input is not forwarded) until an admin reseals.
//   - a seal is a chained checkpoint record, type `audit.seal`, written in place of the record that
//     would get a seq divisible by `sealEvery` (default 1000): its detail `sealed N records, head
//     <hash>` states the count and head hash of the chain before it, in the record stream itself
//     (an auditor can note it down or publish it). Embedded, the audit file is also fsynced at a
//     seal. On AWS each archive object (S3, Object Lock) is a sealed immutable batch whose key
//     names the seq range and the hash it ends at (adapters/aws/s3-audit-archive.ts).
//   - records written before chaining existed have no `seq`: they are counted as unchained records
//     before the chain starts, not as broken.
//
// Concurrent appends (several Lambdas on one console) all go through the head: announcing is a
// conditional write (the head must be what the writer read), so one writer at a time holds the
// next seq; a writer that finds another's announced record not stored yet stores it for it (the
// announcement carries the record on DynamoDB) and moves the head on, then announces its own. The
// record itself is written create-only, so nothing is ever overwritten. A lost race backs off a
// random while and retries.
import { createHash } from 'node:crypto';
import { Conflict } from '../../protocol/errors.ts';
import type { AuditHead, AuditHeadStore, AuditRecord } from './ports.ts';

export const GENESIS = '0'.repeat(64);
export const SEAL_TYPE = 'audit.seal';

export interface ChainOptions {
  /** A seal record takes every seq divisible by this; 0 = no seals. Default 1000. */
  sealEvery: number;
  /** Rounds of read head / announce / write / move an append tries before it fails (lost races
   *  count). Default 64. */
  maxAttempts: number;
}
export const CHAIN_DEFAULTS: ChainOptions = { sealEvery: 1000, maxAttempts: 64 };

/** The chain options of a store: `opts`, else the environment (CLOUDCONS_AUDIT_SEAL_EVERY,
 *  CLOUDCONS_AUDIT_MAX_ATTEMPTS: the embedded cloud and the Lambda functions alike), else the
 *  defaults. */
export function chainOptions(opts: Partial<ChainOptions> = {}, env: Record<string, string | undefined> = {}): ChainOptions {
  const num = (name: string, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    sealEvery: opts.sealEvery ?? num('CLOUDCONS_AUDIT_SEAL_EVERY', 0) ?? CHAIN_DEFAULTS.sealEvery,
    maxAttempts: opts.maxAttempts ?? num('CLOUDCONS_AUDIT_MAX_ATTEMPTS', 1) ?? CHAIN_DEFAULTS.maxAttempts,
  };
}

/** A head that is stored but cannot be read (not JSON, not a head). `where` names the file or item. */
export class UnreadableHead extends Conflict {
  constructor(readonly where: string, why: string) {
    super(`the audit chain head ${where} is unreadable: ${why}`);
  }
}

/** A record lies where the next record of the chain belongs, and the head does not prove it. */
export class UnprovenRecord extends Conflict {
  constructor(console: string, seq: number, headSeq: number) {
    super(`audit of ${console}: seq ${seq} already holds a record that the chain's head (seq ${headSeq}) does not prove: ` +
      `it was added outside cloudcons; nothing more is appended (input is not forwarded) until an admin has looked ` +
      `(cloudcons audit verify ${console}, then cloudcons audit reseal ${console})`);
  }
}

/** The record before the one to store is not there (records cut off the end that the head
 *  proves): storing it would leave a gap in the seqs that reads like a deletion, so no store does. */
export class SkippedSeq extends Conflict {
  constructor(console: string, seq: number, last: number | undefined, where: string) {
    super(`audit of ${console}: the head proves seq ${seq - 1}, but ${where} ${last === undefined ? `does not hold it` : `ends at seq ${last}`}: records were cut off; ` +
      `nothing more is appended (input is not forwarded) until an admin has looked (cloudcons audit verify ${console}, then cloudcons audit reseal ${console})`);
  }
}

/** The canonical serialisation the hash is taken over (see the header). */
export function canonical(v: unknown, top = true): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonical(x, false))).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && !(top && k === 'hash')).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k], false)}`).join(',')}}`;
}

export function recordHash(rec: AuditRecord): string {
  return createHash('sha256').update(canonical(rec), 'utf8').digest('hex');
}

/** `rec` placed after `head` (undefined: first in the chain): with seq, prev and hash. */
export function chained(rec: AuditRecord, head: AuditHead | undefined): AuditRecord & { seq: number; prev: string; hash: string } {
  const { seq: _s, prev: _p, hash: _h, ...plain } = rec;
  const r = { ...plain, seq: (head?.seq ?? 0) + 1, prev: head?.hash ?? GENESIS };
  return { ...r, hash: recordHash(r) };
}

export function sealDetail(head: { seq: number; hash: string }): string {
  return `sealed ${head.seq} records, head ${head.hash}`;
}

export function headOf(rec: AuditRecord): AuditHead {
  return { seq: rec.seq!, hash: rec.hash!, time: rec.time };
}

/** `v` as a head, checked field by field (a head file or item may have been edited by hand);
 *  UnreadableHead naming `where` when it is not one. */
export function checkedHead(v: unknown, where: string): AuditHead {
  const h = v as Partial<AuditHead> | null;
  const hex = (x: unknown) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
  const bad = (why: string) => new UnreadableHead(where, `${why}, not an audit head {seq, hash, time[, pending]}`);
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw bad(`it holds ${Array.isArray(h) ? 'an array' : String(h === null ? null : typeof h)}`);
  if (!Number.isSafeInteger(h.seq) || h.seq! < 0 || !hex(h.hash) || !Number.isFinite(h.time)) throw bad(`seq ${JSON.stringify(h.seq)}, hash ${JSON.stringify(h.hash)?.slice(0, 70)}, time ${JSON.stringify(h.time)}`);
  const head: AuditHead = { seq: h.seq!, hash: h.hash!, time: h.time! };
  const p = h.pending;
  if (p !== undefined) {
    if (typeof p !== 'object' || p === null || p.seq !== head.seq + 1 || !hex(p.hash) || !Number.isFinite(p.time)) throw bad(`its pending append ${JSON.stringify(p)?.slice(0, 200)} is not {seq: ${head.seq + 1}, hash, time}`);
    head.pending = { seq: p.seq, hash: p.hash, time: p.time, ...(p.rec ? { rec: p.rec } : {}) };
  }
  return head;
}

/** Whether two heads are the same state (seq, hash and the announced append): what a conditional
 *  head write compares. */
export function sameHead(a: AuditHead | undefined, b: AuditHead | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.seq === b.seq && a.hash === b.hash && a.pending?.seq === b.pending?.seq && a.pending?.hash === b.pending?.hash;
}

/** What a store gives appendChained. */
export interface ChainBackend {
  heads: Pick<AuditHeadStore, 'get' | 'advance'>;
  /** Stores `rec` at (rec.console, rec.seq) unless a record with that seq is stored: false then.
   *  Atomic against other writers (a conditional put; one process: appends serialised). */
  create(rec: AuditRecord): Promise<boolean>;
  /** The stored record at `seq`, if any. */
  at(console: string, seq: number): Promise<AuditRecord | undefined>;
  /** Whether any chained record of the console is stored (where appends go: the newest one). */
  anyStored(console: string): Promise<boolean>;
  /** Called after a seal record is stored and the head moved to it (the fs store fsyncs). */
  sealed?(console: string): Promise<void>;
}

/** Appends `rec` to its console's chain (a seal first when its seq is due). Resolves when the
 *  record is durable, and returns it as stored. The head's move to the record is awaited too,
 *  unless `later` is given: it then gets the move under way (the store awaits it later, after the
 *  caller forwarded what the record describes; a move that never happens is made by the next
 *  append, which finds the record announced). Throws UnreadableHead or UnprovenRecord (fail
 *  closed), or after maxAttempts lost races. */
export async function appendChained(b: ChainBackend, rec: AuditRecord, opts: ChainOptions = CHAIN_DEFAULTS, later?: (move: Promise<unknown>) => void): Promise<AuditRecord> {
  const c = rec.console;
  for (let attempt = 0; attempt < opts.maxAttempts; attempt++) {
    const head = await b.heads.get(c);
    // No head: a new console, or a head that was lost or removed (then its records must not be
    // chained over from seq 1 again). One read, only while a console has no head.
    if (!head && await b.anyStored(c)) throw new Conflict(`audit of ${c}: no chain head is stored, but records are: the head was lost or removed; nothing more is appended (input is not forwarded) until an admin has looked (cloudcons audit verify ${c}, then cloudcons audit reseal ${c})`);
    const base = await finishPending(b, c, head);
    if (base !== 'raced') {
      const seq = (base?.seq ?? 0) + 1;
      const seal = opts.sealEvery > 0 && seq % opts.sealEvery === 0 && base;
      const r = chained(seal ? { time: rec.time, console: c, type: SEAL_TYPE, detail: sealDetail(base) } : rec, base);
      const announced: AuditHead = { ...(base ?? { seq: 0, hash: GENESIS, time: r.time }), pending: { seq: r.seq, hash: r.hash, time: r.time, rec: r } };
      if (await b.heads.advance(c, head, announced)) {
        await store(b, r, announced);
        const move = b.heads.advance(c, announced, headOf(r)); // false: another writer moved it already
        if (!seal) {
          if (later) later(move); else await move;
          return r;
        }
        await move;
        await b.sealed?.(c);
        attempt = -1; // a seal is progress: the record itself still gets every attempt
        continue;
      }
    }
    // Another writer moved the head meanwhile. Racing writers back off (random, growing to 64 ms)
    // so that one of them gets through.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(64, 2 ** attempt)));
  }
  throw new Conflict(`audit of ${c}: no append after ${opts.maxAttempts} attempts (CLOUDCONS_AUDIT_MAX_ATTEMPTS): other writers ` +
    `moved the chain head every time (\`cloudcons audit verify ${c}\` tells whether the chain is intact)`);
}

/** The head `head` proves up to, once the append it announces (if any) is settled: that record
 *  when it is stored (an append that stopped before moving the head) or could be stored now (its
 *  writer's announcement carries it); the head's own seq when the announced record was never
 *  written and nobody can write it (one writer: that append was interrupted, its seq is free
 *  again). undefined: no record yet. 'raced': someone stored it meanwhile, read the head again. */
async function finishPending(b: ChainBackend, c: string, head: AuditHead | undefined): Promise<AuditHead | undefined | 'raced'> {
  const base = head && head.seq > 0 ? { seq: head.seq, hash: head.hash, time: head.time } : undefined;
  const p = head?.pending;
  if (!p) return base;
  const proven = { seq: p.seq, hash: p.hash, time: p.time };
  const there = await b.at(c, p.seq);
  if (there) {
    if (there.hash === p.hash && recordHash(there) === p.hash) return proven;
    throw new UnprovenRecord(c, p.seq, head.seq);
  }
  if (!p.rec) return base;
  if (p.rec.seq !== p.seq || recordHash(p.rec) !== p.hash) throw new UnreadableHead(`of ${c}`, `its announced record does not hash to the announced hash ${p.hash.slice(0, 12)}`);
  return (await b.create(p.rec)) ? proven : 'raced';
}

/** Writes the announced record `r`; fine when another writer wrote it for us. Anything else at
 *  its seq is a record the head does not prove: the announcement is withdrawn (the record was not
 *  written) and the append fails. */
async function store(b: ChainBackend, r: AuditRecord, announced: AuditHead): Promise<void> {
  if (await b.create(r)) return;
  const there = await b.at(r.console, r.seq!);
  if (there?.hash === r.hash) return;
  const { pending: _p, ...withdrawn } = announced;
  await b.heads.advance(r.console, announced, withdrawn).catch(() => false);
  throw new UnprovenRecord(r.console, r.seq!, announced.seq);
}
