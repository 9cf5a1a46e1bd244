// The audit trail on AWS: recent records in DynamoDB (dynamo-audit-store.ts: hash-chained per
// console, core/audit-chain.ts, durable in milliseconds, before the input they describe is
// forwarded), older ones in immutable S3 objects in the audit bucket, which infra/stack.ts creates
// with Object Lock in COMPLIANCE mode: once archived, nobody (root included) can change or delete
// a record before its retention ends.
//
// archive() moves a console's records older than `before` (a scheduled Lambda, entry-archive.ts,
// runs it hourly for records over an hour old), oldest first in chain order, in batches. A batch
// is a run of consecutive records from the oldest on, up to the first one at or after `before`
// (one whose time is later, from a writer whose clock runs ahead, holds back the records after
// it), never the newest one of the console (see archive()):
//   1. PUT one object per batch, create-only, with Content-MD5 (S3 refuses a PUT to an Object Lock
//      bucket without an integrity header):
//        audit/<console>/<yyyy>/<mm>/<dd>/<t0>-<t1>_<id>_<seq0>-<seq1>_<hash>.jsonl
//      t0/t1 the earliest and latest record time in it (ms, 15 digits, UTC day of t0), id the
//      first 16 hex digits of the body's sha256, seq0..seq1 the chain positions it holds (15
//      digits each) and hash the full hash of record seq1: each object is a sealed batch that
//      names where in the chain it ends. Records from before chaining (no seq) go in objects of
//      their own without the `_<seq0>-<seq1>_<hash>` part. Each line is `{"sk": <DynamoDB sort
//      key>, "rec": <record>}`.
//   2. Only then delete the batch's items from DynamoDB.
// A crash between 1 and 2 leaves the records in both places; the next run makes the same batch
// (same body, same key: the PUT finds it there) and deletes them. Readers drop copies by sort key,
// so nothing is listed twice and nothing is lost; verify() reports copies that differ.
//
// list() merges both stores in sort-key order: the newest `limit` read DynamoDB and then only the
// objects that end after the limit-th newest record it already has; `since` skips objects whose
// latest record is before it (both by key name, without reading them).
import { createHash } from 'node:crypto';
import { checkConsoleName } from '../../../protocol/names.ts';
import type { AuditVerifyResult, ChainItem, ChainWalker } from '../../core/audit-walker.ts';
import type { AuditRecord, AuditStore } from '../../core/ports.ts';
import { parseItem, seqSk, type AuditEntry, type DynamoAuditStore } from './dynamo-audit-store.ts';
import type { S3SegmentStore } from './s3-segment-store.ts';

export interface AuditArchiveOptions {
  /** Most records in one archive object. Default 5000. */
  batchRecords: number;
  /** Largest archive object body, bytes (a record holds at most ~30 KB of input). Default 8 MiB. */
  maxObjectBytes: number;
}
export const AUDIT_ARCHIVE_DEFAULTS: AuditArchiveOptions = { batchRecords: 5000, maxObjectBytes: 8 * 1024 * 1024 };

const KEY_RE = /^audit\/([^/]+)\/\d{4}\/\d{2}\/\d{2}\/(\d{15})-(\d{15})_([0-9a-f]{16})(?:_(\d{15})-(\d{15})_([0-9a-f]{64}))?\.jsonl$/;
const pad = (ms: number) => String(Math.floor(ms)).padStart(15, '0');

/** The key of an archive object: console, earliest and latest record time, body hash, and for
 *  chained records the seq range and the hash the object ends at. */
export function auditObjectKey(console: string, t0: number, t1: number, body: Buffer, chain?: { from: number; to: number; hash: string }): string {
  checkConsoleName(console, 'console', { cloudStream: true });
  const d = new Date(t0).toISOString();
  const end = chain ? `_${pad(chain.from)}-${pad(chain.to)}_${chain.hash}` : '';
  return `audit/${console}/${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/${pad(t0)}-${pad(t1)}_${createHash('sha256').update(body).digest('hex').slice(0, 16)}${end}.jsonl`;
}

interface ObjectName { key: string; console: string; t1: number; chain?: { from: number; to: number; hash: string }; /** >= every sort key in it */ maxSk: string }

function objectName(key: string): ObjectName | undefined {
  const m = KEY_RE.exec(key);
  if (!m) return undefined;
  const chain = m[5] ? { from: Number(m[5]), to: Number(m[6]), hash: m[7] } : undefined;
  return { key, console: m[1], t1: Number(m[3]), chain, maxSk: chain ? seqSk(chain.to) : `${m[3]}~` };
}

export class ArchivedAuditStore implements AuditStore {
  private readonly opts: AuditArchiveOptions;

  /** `objects`: the audit bucket (an S3SegmentStore is a create-only object store). */
  constructor(readonly hot: DynamoAuditStore, readonly objects: Pick<S3SegmentStore, 'put' | 'get' | 'list'>, opts: Partial<AuditArchiveOptions> = {}) {
    this.opts = { ...AUDIT_ARCHIVE_DEFAULTS, ...opts };
  }

  append(rec: AuditRecord): Promise<void> { return this.hot.append(rec); }

  settle(): Promise<void> { return this.hot.settle(); }

  async list(console: string, opts: { limit?: number; since?: number } = {}): Promise<AuditRecord[]> {
    const byKey = new Map<string, AuditRecord>();
    for (const e of await this.hot.entries(console, opts)) byKey.set(e.sk, e.rec);
    const objs = (await this.objectsOf(console)).filter((o) => opts.since === undefined || o.t1 >= opts.since).sort((a, b) => (a.maxSk < b.maxSk ? 1 : -1));
    for (const o of objs) {
      if (opts.limit !== undefined && byKey.size >= opts.limit) {
        // Every record still unread sorts at or below o.maxSk: done once that is below the limit-th newest.
        if (o.maxSk < [...byKey.keys()].sort().at(-opts.limit)!) break;
      }
      for (const e of parseObject(await this.objects.get(o.key), o.key)) {
        if (opts.since === undefined || e.rec.time >= opts.since) byKey.set(e.sk, e.rec);
      }
    }
    const sks = [...byKey.keys()].sort();
    return (opts.limit !== undefined ? sks.slice(-opts.limit) : sks).map((k) => byKey.get(k)!);
  }

  /** The whole chain, the table's records and the archived ones, against its head. Also checks
   *  that each chained object holds the seq range and ends at the hash its name says. */
  verify(console: string): Promise<AuditVerifyResult> {
    return this.hot.verify(console, (w) => this.archivedItems(console, w));
  }

  /** A head that no longer matches intact records set to the last one (AuditStore.reseal). */
  reseal(console: string, by: string, now: number) {
    return this.hot.reseal(console, by, now, (w) => this.archivedItems(console, w));
  }

  /** The archived records of a console for a walk of its chain (objects checked against their names). */
  private async archivedItems(console: string, w: ChainWalker): Promise<{ sk: string; item: ChainItem }[]> {
    {
      const out: { sk: string; item: ChainItem }[] = [];
      for (const o of (await this.objectsOf(console)).sort((a, b) => (a.maxSk < b.maxSk ? -1 : 1))) {
        let prevSk: string | undefined;
        let first: AuditRecord | undefined, last: AuditRecord | undefined;
        for (const [i, line] of (await this.objects.get(o.key)).toString('utf8').split('\n').entries()) {
          if (!line) continue;
          const where = `${o.key} line ${i + 1}`;
          let e: { sk?: unknown; rec?: unknown } | undefined;
          try { e = JSON.parse(line); } catch { /* below */ }
          if (typeof e?.sk !== 'string' || typeof e.rec !== 'object' || !e.rec) {
            // Placed where the record it replaced would sort: after the line before it.
            out.push({ sk: prevSk ? `${prevSk}\u0001` : o.chain ? seqSk(o.chain.from) : '', item: { bad: `not {sk, rec}: ${JSON.stringify(line.slice(0, 80))}`, where } });
            continue;
          }
          const item = parseItem(JSON.stringify(e.rec), where);
          out.push({ sk: e.sk, item });
          prevSk = e.sk;
          if ('rec' in item) { first ??= item.rec; last = item.rec; }
        }
        const c = o.chain;
        if (c && (first?.seq !== c.from || last?.seq !== c.to || last?.hash !== c.hash)) {
          w.report({ seq: c.to, time: last?.time, type: last?.type, problem: 'hash mismatch', detail: `archive object ${o.key} is named for seq ${c.from}..${c.to} ending at hash ${c.hash.slice(0, 12)}, but holds seq ${first?.seq}..${last?.seq} ending at ${last?.hash?.slice(0, 12)}` });
        }
      }
      return out;
    }
  }

  private async objectsOf(console: string): Promise<ObjectName[]> {
    return (await this.objects.list(`audit/${checkConsoleName(console, 'console', { cloudStream: true })}/`)).map((o) => objectName(o.key)).filter((o): o is ObjectName => o?.console === console);
  }

  /** Moves the console's records older than `before` (ms) to archive objects. */
  async archive(console: string, before: number): Promise<{ objects: number; records: number; created: number }> {
    let objects = 0, records = 0, created = 0;
    // Never the newest chained record: it may be the one the head announces (its writer stopped
    // before moving the head), and the append that moves the head for it must find it in the
    // table. Every record below it is at or below the head (an append moves the head before the
    // next one is announced).
    const newest = (await this.hot.entries(console, { limit: 1 }))[0]?.rec.seq;
    const maxSeq = newest === undefined ? Infinity : newest - 1;
    for (;;) {
      const batch = await this.hot.entries(console, { before, limit: this.opts.batchRecords, oldestFirst: true, maxSeq });
      if (!batch.length) return { objects, records, created };
      const lines: Buffer[] = [];
      let bytes = 0;
      const chained = typeof batch[0].rec.seq === 'number';
      for (const e of batch) {
        const line = Buffer.from(JSON.stringify({ sk: e.sk, rec: e.rec }) + '\n');
        if (lines.length && (bytes + line.length > this.opts.maxObjectBytes || (typeof e.rec.seq === 'number') !== chained)) break;
        lines.push(line);
        bytes += line.length;
      }
      const taken = batch.slice(0, lines.length);
      const body = Buffer.concat(lines);
      const times = taken.map((e) => e.rec.time);
      const end = taken.at(-1)!.rec;
      const key = auditObjectKey(console, Math.min(...times), Math.max(...times), body, chained ? { from: taken[0].rec.seq!, to: end.seq!, hash: end.hash! } : undefined);
      if ((await this.objects.put(key, body)) === 'created') created++;
      await this.hot.remove(console, taken.map((e) => e.sk));
      objects++;
      records += taken.length;
    }
  }

  /** archive() for each console; one console's failure does not stop the others. */
  async archiveAll(consoles: string[], before: number, log: (line: string) => void = () => {}): Promise<{ objects: number; records: number; failed: string[] }> {
    let objects = 0, records = 0;
    const failed: string[] = [];
    for (const c of consoles) {
      try {
        const r = await this.archive(c, before);
        objects += r.objects; records += r.records;
        if (r.records) log(`audit of ${c}: ${r.records} records before ${new Date(before).toISOString()} archived in ${r.objects} objects`);
      } catch (e) {
        failed.push(c);
        log(`audit of ${c}: archiving failed, its records stay in DynamoDB for the next run: ${(e as Error).message}`);
      }
    }
    return { objects, records, failed };
  }
}

function parseObject(body: Buffer, key: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of body.toString('utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEntry;
    if (typeof e?.sk !== 'string' || typeof e.rec !== 'object') throw new Error(`audit archive object ${key} has a line that is not {sk, rec}`);
    out.push(e);
  }
  return out;
}
