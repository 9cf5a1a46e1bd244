// The audit trail on AWS: recent records in DynamoDB (dynamo-audit-store.ts: a PutItem per record,
// durable in milliseconds, before the input it describes is forwarded), older ones in immutable S3
// objects in the audit bucket, which infra/stack.ts creates with Object Lock in COMPLIANCE mode:
// once archived, nobody (root included) can change or delete a record before its retention ends.
//
// archive() moves a console's records older than `before` (a scheduled Lambda, entry-archive.ts,
// runs it hourly for records over an hour old), oldest first, in batches:
//   1. PUT one object per batch, create-only, with Content-MD5 (S3 refuses a PUT to an Object Lock
//      bucket without an integrity header):
//        audit/<console>/<yyyy>/<mm>/<dd>/<t0>-<t1>_<id>.jsonl
//      t0/t1 the first and last record's time (ms, 15 digits, UTC day of t0), id the first 16 hex
//      digits of the body's sha256. Each line is `{"sk": <DynamoDB sort key>, "rec": <record>}`.
//   2. Only then delete the batch's items from DynamoDB.
// A crash between 1 and 2 leaves the records in both places; the next run makes the same batch
// (same body, same key: the PUT finds it there) and deletes them. Should a late record change the
// batch, the records land in two objects: readers drop copies by sort key, so nothing is listed
// twice and nothing is lost.
//
// list() merges both stores in sort-key order: the newest `limit` read DynamoDB and then only the
// objects whose last record is newer than what it already has; `since` skips objects that end
// before it (both by key name, without reading them).
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditStore } from '../../core/ports.ts';
import type { AuditEntry, DynamoAuditStore } from './dynamo-audit-store.ts';
import type { S3SegmentStore } from './s3-segment-store.ts';

export interface AuditArchiveOptions {
  /** Most records in one archive object. Default 5000. */
  batchRecords: number;
  /** Largest archive object body, bytes (a record holds at most ~30 KB of input). Default 8 MiB. */
  maxObjectBytes: number;
}
export const AUDIT_ARCHIVE_DEFAULTS: AuditArchiveOptions = { batchRecords: 5000, maxObjectBytes: 8 * 1024 * 1024 };

const KEY_RE = /^audit\/([^/]+)\/\d{4}\/\d{2}\/\d{2}\/(\d{15})-(\d{15})_([0-9a-f]{16})\.jsonl$/;
const pad = (ms: number) => String(Math.floor(ms)).padStart(15, '0');

/** The key of an archive object: console, first and last record time, body hash. */
export function auditObjectKey(console: string, t0: number, t1: number, body: Buffer): string {
  const d = new Date(t0).toISOString();
  return `audit/${console}/${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/${pad(t0)}-${pad(t1)}_${createHash('sha256').update(body).digest('hex').slice(0, 16)}.jsonl`;
}

export class ArchivedAuditStore implements AuditStore {
  private readonly opts: AuditArchiveOptions;

  /** `objects`: the audit bucket (an S3SegmentStore is a create-only object store). */
  constructor(readonly hot: DynamoAuditStore, readonly objects: Pick<S3SegmentStore, 'put' | 'get' | 'list'>, opts: Partial<AuditArchiveOptions> = {}) {
    this.opts = { ...AUDIT_ARCHIVE_DEFAULTS, ...opts };
  }

  append(rec: AuditRecord): Promise<void> { return this.hot.append(rec); }

  async list(console: string, opts: { limit?: number; since?: number } = {}): Promise<AuditRecord[]> {
    const byKey = new Map<string, AuditRecord>();
    for (const e of await this.hot.entries(console, opts)) byKey.set(e.sk, e.rec);
    const objs = (await this.objects.list(`audit/${console}/`))
      .map((o) => KEY_RE.exec(o.key))
      .filter((m): m is RegExpExecArray => !!m && m[1] === console && (opts.since === undefined || Number(m[3]) >= opts.since))
      .map((m) => ({ key: m[0], t1: Number(m[3]) }))
      .sort((a, b) => b.t1 - a.t1);
    for (const o of objs) {
      if (opts.limit !== undefined && byKey.size >= opts.limit) {
        // Every record still unread is at most o.t1 old: done once that is older than the limit-th newest.
        const nth = [...byKey.keys()].sort().at(-opts.limit)!;
        if (pad(o.t1) < nth.slice(0, 15)) break;
      }
      for (const e of parseObject(await this.objects.get(o.key), o.key)) {
        if (opts.since === undefined || e.rec.time >= opts.since) byKey.set(e.sk, e.rec);
      }
    }
    const sks = [...byKey.keys()].sort();
    return (opts.limit !== undefined ? sks.slice(-opts.limit) : sks).map((k) => byKey.get(k)!);
  }

  /** Moves the console's records older than `before` (ms) to archive objects. */
  async archive(console: string, before: number): Promise<{ objects: number; records: number; created: number }> {
    let objects = 0, records = 0, created = 0;
    for (;;) {
      const batch = await this.hot.entries(console, { before, limit: this.opts.batchRecords, oldestFirst: true });
      if (!batch.length) return { objects, records, created };
      const lines: Buffer[] = [];
      let bytes = 0;
      for (const e of batch) {
        const line = Buffer.from(JSON.stringify({ sk: e.sk, rec: e.rec }) + '\n');
        if (lines.length && bytes + line.length > this.opts.maxObjectBytes) break;
        lines.push(line);
        bytes += line.length;
      }
      const taken = batch.slice(0, lines.length);
      const body = Buffer.concat(lines);
      const key = auditObjectKey(console, taken[0].rec.time, taken.at(-1)!.rec.time, body);
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
