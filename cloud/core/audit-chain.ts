// The audit hash chain: what makes an edit, a deletion, a reordering or a cut-off end of a
// console's audit trail detectable (`cloudcons audit verify`). Pure logic, no I/O: the audit stores
// (adapters/fs/audit-store.ts, adapters/aws/dynamo-audit-store.ts) append through appendChained()
// and feed what they hold to a ChainWalker.
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
//     Records cut off the end leave the chain shorter than its head: detected. The two are written
//     one after the other (record first), so the head may lag the records by one after a crash
//     between the two writes; the next append moves it on, and verify accepts that one record.
//   - a seal is a chained checkpoint record, type `audit.seal`, written in place of the record that
//     would get a seq divisible by `sealEvery` (default 1000): its detail `sealed N records, head
//     <hash>` states the count and head hash of the chain before it, in the record stream itself
//     (an auditor can note it down or publish it). Embedded, the audit file is also fsynced at a
//     seal. On AWS each archive object (S3, Object Lock) is a sealed immutable batch whose key
//     names the seq range and the hash it ends at (adapters/aws/s3-audit-archive.ts).
//   - records written before chaining existed have no `seq`: they are counted as unchained records
//     before the chain starts, not as broken.
//
// Concurrent appends (several Lambdas on one console) go through appendChained: read the head,
// create the record at head.seq + 1 only if that seq is free (a conditional write), then move the
// head from its old seq to the new one (conditional too). A lost race backs off a random while and
// retries; a record found at head.seq + 1 (its writer crashed before moving the head, or is about
// to move it) moves the head first.
import { createHash } from 'node:crypto';
import { Conflict } from '../../protocol/errors.ts';
import type { AuditHead, AuditHeadStore, AuditRecord } from './ports.ts';

export const GENESIS = '0'.repeat(64);
export const SEAL_TYPE = 'audit.seal';

export interface ChainOptions {
  /** A seal record takes every seq divisible by this; 0 = no seals. Default 1000. */
  sealEvery: number;
  /** Rounds of read head / write / move head an append tries before it fails (lost races and head
   *  repairs both count). Default 64. */
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

/** What a store gives appendChained. `create` must be atomic against other writers of the same
 *  console (a conditional put; one process: appends serialised per console). */
export interface ChainBackend {
  heads: Pick<AuditHeadStore, 'get' | 'advance'>;
  /** Stores `rec` at (rec.console, rec.seq) unless a record with that seq is stored: false then. */
  create(rec: AuditRecord): Promise<boolean>;
  /** The stored record at `seq`, if any. */
  at(console: string, seq: number): Promise<AuditRecord | undefined>;
  /** Called after a seal record is stored (the fs store fsyncs). */
  sealed?(console: string): Promise<void>;
}

/** Appends `rec` to its console's chain (a seal first when its seq is due); durable when the
 *  promise resolves, head moved. Returns the record as stored. */
export async function appendChained(b: ChainBackend, rec: AuditRecord, opts: ChainOptions = CHAIN_DEFAULTS): Promise<AuditRecord> {
  const c = rec.console;
  for (let attempt = 0; attempt < opts.maxAttempts; attempt++) {
    const head = await b.heads.get(c);
    const seq = (head?.seq ?? 0) + 1;
    const seal = opts.sealEvery > 0 && seq % opts.sealEvery === 0 && head;
    const r = chained(seal ? { time: rec.time, console: c, type: SEAL_TYPE, detail: sealDetail(head) } : rec, head);
    if (await b.create(r)) {
      // Moving the head fails only if another writer moved it already (it found our record).
      await b.heads.advance(c, head?.seq ?? 0, headOf(r));
      if (!seal) return r;
      await b.sealed?.(c);
      attempt = -1; // a seal is progress: the record itself still gets every attempt
      continue;
    }
    // seq is taken: by a writer that won the race (and has moved the head, or is about to), or by
    // one that crashed before moving it. Move the head to that record ourselves; either way retry.
    const there = await b.at(c, seq);
    if (there?.seq === seq && there.hash) await b.heads.advance(c, head?.seq ?? 0, headOf(there));
    // Racing writers back off (random, growing to 64 ms) so that one of them gets through.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(64, 2 ** attempt)));
  }
  throw new Error(`audit of ${c}: no append after ${opts.maxAttempts} attempts: lost every race for the next seq to ` +
    `other writers, or the chain head (${JSON.stringify(await b.heads.get(c))}) does not follow the stored records ` +
    `(\`cloudcons audit verify ${c}\` tells)`);
}

// --------------------------------------------------------------------------------------- reseal
/** What resealChain needs of a store: its records walked without the head (`walk`), the head as
 *  stored (undefined: none; 'unreadable'), setting it, and appending a record. */
export interface ResealBackend {
  walk(): Promise<AuditVerifyResult>;
  head(): Promise<AuditHead | undefined | 'unreadable'>;
  reset(to: AuditHead): Promise<void>;
  append(rec: AuditRecord): Promise<AuditRecord>;
}

/** Moves a console's head to its last intact record and chains an `audit.reseal` record that says
 *  so. Refused (Conflict) when the records are broken or the head already matches. */
export async function resealChain(b: ResealBackend, console: string, by: string, now: number): Promise<{ from?: AuditHead; to: AuditHead; record: AuditRecord }> {
  const walked = await b.walk();
  if (walked.broken && walked.broken.problem !== 'head mismatch') {
    throw new Conflict(`the audit records of ${console} are broken at seq ${walked.broken.seq} (${walked.broken.problem}: ${walked.broken.detail}): a reseal would hide that; keep the evidence (cloudcons audit verify ${console})`);
  }
  if (!walked.end) throw new Conflict(`${console} has no chained audit records: nothing to reseal to`);
  const head = await b.head();
  const from = head === 'unreadable' ? undefined : head;
  if (from && from.seq === walked.end.seq && from.hash === walked.end.hash) throw new Conflict(`the audit chain of ${console} ends at its head (seq ${from.seq}): nothing to reseal`);
  const was = head === 'unreadable' ? 'an unreadable head' : from ? `seq ${from.seq} (${short(from.hash)}, ${iso(from.time)})` : 'no head';
  const cut = from && from.seq > walked.end.seq ? `; ${from.seq - walked.end.seq} record(s) after it were missing` : '';
  await b.reset(walked.end);
  const record = await b.append({ time: now, console, type: 'audit.reseal', user: by, detail: `head moved from ${was} to seq ${walked.end.seq} (${short(walked.end.hash)}), the last stored record${cut}` });
  return { ...(from ? { from } : {}), to: walked.end, record };
}

// ------------------------------------------------------------------------------------- verifying
export type ChainProblem = 'hash mismatch' | 'missing seq' | 'out of order' | 'head mismatch' | 'unreadable' | 'seal mismatch' | 'not chained' | 'copies differ';

export interface AuditVerifyResult {
  console: string;
  ok: boolean;
  /** Chained records read (seals included). */
  records: number;
  /** Records before the chain starts (written before chaining existed). */
  unchained: number;
  seals: number;
  /** The last record of the chain as read (before any break: the last good one). */
  end?: AuditHead;
  /** The head kept outside the audit store. */
  head?: AuditHead;
  /** The first broken record. */
  broken?: { seq: number; time?: number; type?: string; problem: ChainProblem; detail: string };
  /** Not a break, but worth saying (the head lagging one record behind). */
  note?: string;
}

/** A record as a store read it: parsed, or a line/item that did not parse. `where` names the place
 *  for the report (a file line, an archive object). */
export type ChainItem = { rec: AuditRecord; where?: string } | { bad: string; where?: string };

interface Flag { seq: number; time?: number; type?: string; problem: ChainProblem; detail: string }

/** Walks a console's records in stored order and says whether they form an intact chain that ends
 *  at its head. Streaming: push() each record, then finish(). After the first break it only keeps
 *  counting (and looks for the seq that went missing, to tell a reordering from a deletion). */
export class ChainWalker {
  private expected = 1;
  private prevHash = GENESIS;
  private before?: AuditHead; // the record before the last good one
  private last?: AuditHead;
  private lastType?: string;
  private records = 0;
  private unchained = 0;
  private seals = 0;
  private flag?: Flag;
  /** A seq skipped over: found later (out of order) or never (missing). */
  private gap?: { seq: number; seenSeq: number; seenTime: number; seenType: string; found: boolean };
  private readonly extra: Flag[] = [];

  constructor(readonly console: string) {}

  push(item: ChainItem): void {
    const at = item.where ? ` (${item.where})` : '';
    if ('bad' in item) {
      this.records++;
      this.raise({ seq: this.expected, problem: 'unreadable', detail: `an unreadable record where seq ${this.expected} belongs${at}: ${item.bad}` });
      return;
    }
    const rec = item.rec;
    if (typeof rec.seq !== 'number') {
      if (!this.records) { this.unchained++; return; }
      this.records++;
      this.raise({ seq: this.expected, time: rec.time, type: rec.type, problem: 'not chained', detail: `a record without seq where seq ${this.expected} belongs${at}` });
      return;
    }
    this.records++;
    if (rec.type === SEAL_TYPE) this.seals++;
    if (this.gap && rec.seq === this.gap.seq) this.gap.found = true;
    if (this.flag) return;
    const h = recordHash(rec);
    if (h !== rec.hash) {
      const pos = rec.seq === this.expected ? '' : `, stored where seq ${this.expected} belongs`;
      this.raise({ seq: rec.seq, time: rec.time, type: rec.type, problem: 'hash mismatch', detail: `the record's content does not hash to its stored hash${pos}: it was changed${at}` });
    } else if (rec.seq === this.expected) {
      if (rec.prev !== this.prevHash) {
        this.raise({ seq: rec.seq, time: rec.time, type: rec.type, problem: 'hash mismatch', detail: `prev ${short(rec.prev)} is not the hash ${short(this.prevHash)} of seq ${rec.seq - 1}: a record before it was replaced${at}` });
      } else if (rec.type === SEAL_TYPE && rec.detail !== sealDetail({ seq: rec.seq - 1, hash: this.prevHash })) {
        this.raise({ seq: rec.seq, time: rec.time, type: rec.type, problem: 'seal mismatch', detail: `the seal says "${rec.detail}", the chain before it is ${rec.seq - 1} records with head ${this.prevHash}${at}` });
      } else {
        this.before = this.last;
        this.last = headOf(rec);
        this.lastType = rec.type;
        this.prevHash = h;
        this.expected++;
      }
    } else if (rec.seq > this.expected) {
      this.gap = { seq: this.expected, seenSeq: rec.seq, seenTime: rec.time, seenType: rec.type, found: false };
      this.raise({ seq: this.expected, problem: 'missing seq', detail: '' }); // worded in finish()
    } else {
      this.raise({ seq: rec.seq, time: rec.time, type: rec.type, problem: 'out of order', detail: `seq ${rec.seq} is stored after seq ${this.expected - 1} (out of order, or a second copy)${at}` });
    }
  }

  /** A problem found outside the walk (an archive object's name, two copies of one record). The
   *  report names the one with the lowest seq. */
  report(f: Flag): void { this.extra.push(f); }

  /** `head`: read before the records; `headAfter`: read again after them, when appends may have
   *  gone on meanwhile (records past the first head are then checked against the second). */
  finish(head: AuditHead | undefined, headAfter?: AuditHead): AuditVerifyResult {
    let moving = false;
    if (headAfter && this.last && this.last.seq > (head?.seq ?? 0) + 1) {
      moving = headAfter.seq > this.last.seq;
      head = headAfter;
    }
    const r: AuditVerifyResult = { console: this.console, ok: true, records: this.records, unchained: this.unchained, seals: this.seals, end: this.last, head };
    if (moving) r.note = `records were appended while verifying: the chain was checked up to seq ${this.last!.seq}`;
    if (this.flag && this.gap) {
      const g = this.gap;
      const after = this.last ? `after seq ${this.last.seq} (${iso(this.last.time)})` : 'at the start of the chain';
      this.flag = g.found
        ? { seq: g.seenSeq, time: g.seenTime, type: g.seenType, problem: 'out of order', detail: `seq ${g.seenSeq} is stored before seq ${g.seq}, ${after}` }
        : { ...this.flag, detail: `seq ${g.seq} is missing: ${after} comes seq ${g.seenSeq} (${iso(g.seenTime)}, ${g.seenType})${g.seenSeq - g.seq > 1 ? `; seqs ${g.seq}..${g.seenSeq - 1} are gone` : ''}` };
    }
    if (!this.flag && !moving) this.checkHead(head, r);
    const first = [this.flag, ...this.extra].filter((f): f is Flag => !!f).sort((a, b) => a.seq - b.seq)[0];
    if (first) { r.ok = false; r.broken = first; }
    return r;
  }

  private checkHead(head: AuditHead | undefined, r: AuditVerifyResult): void {
    const last = this.last;
    if (!last && !head) return;
    if (!head) {
      this.flag = { seq: last!.seq, time: last!.time, type: this.lastType, problem: 'head mismatch', detail: `no head is stored for this console outside the audit store, but its chain reaches seq ${last!.seq}` };
    } else if (!last) {
      this.flag = { seq: 1, problem: 'head mismatch', detail: `the head says seq ${head.seq} (${iso(head.time)}), but no chained record is stored: records 1..${head.seq} were cut off` };
    } else if (last.seq < head.seq) {
      this.flag = { seq: last.seq + 1, problem: 'head mismatch', detail: `the chain ends at seq ${last.seq} (${iso(last.time)}, ${this.lastType}) but the head says seq ${head.seq} (${iso(head.time)}): ${head.seq - last.seq} record(s) cut off the end` };
    } else if (last.seq === head.seq && last.hash !== head.hash) {
      this.flag = { seq: last.seq, time: last.time, type: this.lastType, problem: 'head mismatch', detail: `the last record's hash ${short(last.hash)} is not the head's ${short(head.hash)}: the end of the chain was replaced` };
    } else if (last.seq === head.seq + 1 && this.before?.hash === head.hash) {
      r.note = `the head lags the last record by one (an append stopped between its two writes; the next append moves it)`;
    } else if (last.seq > head.seq) {
      const at = last.seq === head.seq + 1 ? this.before : undefined;
      this.flag = { seq: head.seq + 1, problem: 'head mismatch', detail: at
        ? `seq ${head.seq} hashes to ${short(at.hash)}, not to the head's ${short(head.hash)}`
        : `records ${head.seq + 1}..${last.seq} lie beyond the head (seq ${head.seq}): added without moving the head` };
    }
  }

  private raise(f: Flag): void { this.flag ??= f; }
}

function iso(t: number | undefined): string { return t === undefined ? '?' : new Date(t).toISOString(); }
function short(h: string | undefined): string { return h === undefined ? '(none)' : h.slice(0, 12); }

/** One line of `cloudcons audit verify` for a console. */
export function verifyLine(r: AuditVerifyResult): string {
  const pre = r.unchained ? `; ${r.unchained} unchained record${r.unchained === 1 ? '' : 's'} before the chain starts` : '';
  if (r.broken) {
    const b = r.broken;
    const what = [b.time !== undefined ? iso(b.time) : undefined, b.type].filter(Boolean).join(', ');
    return `${r.console}: BROKEN at seq ${b.seq}${what ? ` (${what})` : ''}: ${b.problem}: ${b.detail}${pre}`;
  }
  const chain = r.end ? `${r.records} records (seq 1..${r.end.seq}, ${r.seals} seal${r.seals === 1 ? '' : 's'}), head ${r.head ? `${r.head.seq} ${short(r.head.hash)}` : '-'}` : 'no chained records';
  return `${r.console}: ok, ${chain}${pre}${r.note ? `; ${r.note}` : ''}`;
}
