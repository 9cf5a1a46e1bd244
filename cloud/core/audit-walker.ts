// Verifying a console's audit chain (audit-chain.ts): a ChainWalker takes the records a store
// holds, in stored order, and the head kept outside it, and says whether they form an intact chain
// that ends where the head proves, naming the first broken record. One line of `cloudcons audit
// verify` per result (verifyLine).
import { GENESIS, headOf, recordHash, SEAL_TYPE, sealDetail, UnreadableHead } from './audit-chain.ts';
import type { AuditHead, AuditRecord } from './ports.ts';

export type ChainProblem = 'hash mismatch' | 'missing seq' | 'out of order' | 'head mismatch' | 'unreadable head' | 'unreadable' | 'seal mismatch' | 'not chained' | 'copies differ';

/** How the chain's end relates to its head: `matches`; `lags` (the last record is the append the
 *  head announces: an append stopped before moving the head); `interrupted` (the head announces
 *  a record that was never stored); `cut` (records the head proves are gone); `replaced` (the
 *  record at the head's seq, or the announced one, is another); `added` (records beyond the head
 *  that it does not announce); `missing` (no head but records); `unreadable` (the head). */
export type HeadState = 'matches' | 'lags' | 'interrupted' | 'cut' | 'replaced' | 'added' | 'missing' | 'unreadable';

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
  /** The end against the head (not set while records were appended during the walk). */
  headState?: HeadState;
  /** The first broken record. */
  broken?: { seq: number; time?: number; type?: string; problem: ChainProblem; detail: string };
  /** Not a break, but worth saying (the head lagging one record behind, an interrupted append). */
  note?: string;
  /** A torn last line (the fs store): an append that never completed, not a record (not walked). */
  torn?: { where: string; bytes: number };
}

/** A record as a store read it: parsed, or a line/item that did not parse. `where` names the place
 *  for the report (a file line, an archive object). */
export type ChainItem = { rec: AuditRecord; where?: string } | { bad: string; where?: string };

interface Flag { seq: number; time?: number; type?: string; problem: ChainProblem; detail: string }

/** A head as a store read it: the head, none, or why it cannot be read. */
export type HeadRead = AuditHead | undefined | UnreadableHead;

/** Reads a head for a walk: an unreadable one is a finding, not a failure of the walk. */
export async function readHead(get: () => AuditHead | undefined | Promise<AuditHead | undefined>): Promise<HeadRead> {
  try { return await get(); } catch (e) {
    if (e instanceof UnreadableHead) return e;
    throw e;
  }
}

/** Walks a console's records in stored order and says whether they form an intact chain that ends
 *  at its head. Streaming: push() each record, then finish(). After the first break it only keeps
 *  counting (and looks for the seq that went missing, to tell a reordering from a deletion). */
export class ChainWalker {
  private expected = 1;
  private prevHash = GENESIS;
  private last?: AuditHead;
  private lastType?: string;
  private records = 0;
  private unchained = 0;
  private seals = 0;
  private flag?: Flag;
  /** A seq skipped over: found later (out of order) or never (missing). */
  private gap?: { seq: number; seenSeq: number; seenTime: number; seenType: string; found: boolean };
  private readonly extra: Flag[] = [];
  /** Hashes of intact records at the seqs watch() asked for (the head's, to tell a replaced end
   *  from an added one). */
  private readonly watched = new Map<number, string | undefined>();

  constructor(readonly console: string) {}

  /** Keep the hash of the record at `seq` (call before push()): finish() compares the head with it. */
  watch(seq: number): void { if (seq > 0) this.watched.set(seq, undefined); }

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
        this.last = headOf(rec);
        this.lastType = rec.type;
        if (this.watched.has(rec.seq)) this.watched.set(rec.seq, h);
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
   *  gone on meanwhile (records past what the first head proves are then checked against the
   *  second; when that one is already past the records read, the end is not checked). */
  finish(head: HeadRead, headAfter?: HeadRead): AuditVerifyResult {
    let moving = false;
    if (headAfter && !(headAfter instanceof Error) && !(head instanceof Error) && this.last && this.last.seq > reach(head)) {
      moving = headAfter.seq > this.last.seq;
      head = headAfter;
    }
    const stored = head instanceof Error ? undefined : head;
    const r: AuditVerifyResult = { console: this.console, ok: true, records: this.records, unchained: this.unchained, seals: this.seals, end: this.last, head: stored };
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

  /** Compares the chain's end with the head: sets r.headState, and a flag or a note. */
  private checkHead(head: HeadRead, r: AuditVerifyResult): void {
    const last = this.last;
    const lastSeq = last?.seq ?? 0;
    const state = (s: HeadState, f?: Omit<Flag, 'problem'>, problem: ChainProblem = 'head mismatch') => {
      r.headState = s;
      if (f && !this.flag) this.flag = { ...f, problem };
    };
    const end = last ? { seq: last.seq, time: last.time, type: this.lastType } : { seq: 1 };
    if (head instanceof Error) return state('unreadable', { ...end, detail: `${head.message}: whether records were cut off the end, added or replaced cannot be told` }, 'unreadable head');
    if (!head) {
      if (last) state('missing', { ...end, detail: `no head is stored for this console outside the audit store, but its chain reaches seq ${last.seq}` });
      else r.headState = 'matches';
      return;
    }
    const p = head.pending;
    if (p && last && lastSeq === p.seq) {
      // Its hash covers its prev, the head's hash when it was announced: the chain up to the head holds.
      if (last.hash === p.hash) {
        r.note = `the head announces the last record, seq ${p.seq}, and was not moved to it yet (an append in progress, or one that stopped after writing its record; the next append moves it)`;
        return state('lags');
      }
      return state('replaced', { ...end, detail: `the last record's hash ${short(last.hash)} is not the ${short(p.hash)} of the append the head announces at seq ${p.seq}: the end of the chain was replaced` });
    }
    if (lastSeq < head.seq) {
      return state('cut', last
        ? { seq: lastSeq + 1, detail: `the chain ends at seq ${lastSeq} (${iso(last.time)}, ${this.lastType}) but the head says seq ${head.seq} (${iso(head.time)}): ${head.seq - lastSeq} record(s) cut off the end` }
        : { seq: 1, detail: `the head says seq ${head.seq} (${iso(head.time)}), but no chained record is stored: records 1..${head.seq} were cut off` });
    }
    const h = head.seq > 0 ? this.hashOf(head.seq) : undefined;
    if (h !== undefined && h !== head.hash) {
      return state('replaced', { seq: head.seq, detail: `seq ${head.seq} hashes to ${short(h)}, not to the head's ${short(head.hash)}: the end of the chain was replaced${lastSeq > head.seq ? ` (and ${lastSeq - head.seq} record(s) added after it)` : ''}` });
    }
    if (lastSeq === head.seq) {
      if (!p) return state('matches');
      r.note = `the head announces seq ${p.seq} (${iso(p.time)}), which was never stored: an append stopped before writing its record, so what it described did not go ahead; the next append takes its seq`;
      return state('interrupted');
    }
    const n = lastSeq - head.seq;
    state('added', { seq: head.seq + 1, detail: `${n === 1 ? `seq ${lastSeq} lies` : `seqs ${head.seq + 1}..${lastSeq} lie`} beyond the head (seq ${head.seq}${p ? `, which announces another record at seq ${p.seq}` : ''}) and the head does not prove ${n === 1 ? 'it' : 'them'}: added outside cloudcons` });
  }

  /** The hash of the intact record at `seq`, when it is the last one or was watched. */
  private hashOf(seq: number): string | undefined { return this.last?.seq === seq ? this.last.hash : this.watched.get(seq); }

  private raise(f: Flag): void { this.flag ??= f; }
}

/** The last seq a head proves: its own, or the one it announces. */
function reach(h: HeadRead): number { return h instanceof Error || !h ? 0 : h.pending?.seq ?? h.seq; }

export function iso(t: number | undefined): string { return t === undefined ? '?' : new Date(t).toISOString(); }
export function short(h: string | undefined): string { return h === undefined ? '(none)' : h.slice(0, 12); }

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
