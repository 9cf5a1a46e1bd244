// AuditStore on DynamoDB: the AWS twin of adapters/fs/audit-store.ts (same contract,
// test/contracts/audit-store.contract.ts). One item per record in the console's partition
// (pk `audit#<console>`), keyed by its place in the console's hash chain (core/audit-chain.ts):
// sk `s#<seq, 15 digits>`. The chain's head is an item of its own (dynamo-audit-heads.ts).
//
// An append (appendChained): read the head (seq h), announce the record in it (a conditional put
// of the head item, carrying the record), put the record at h + 1 on condition that no item has
// that key, then move the head to it. Of several Lambdas appending to one console at once, one
// announces from h; the others see the condition fail and try again from the head they read then.
// A writer that finds another's announced record not stored yet (that writer stopped, or is slow)
// stores it and moves the head on before announcing its own. Three requests in a row, each
// durable when it returns, before append() resolves and the input is forwarded; the head's move
// runs meanwhile (settle() awaits it: the Lambda handlers call it before an invocation ends).
//
// Why not TransactWriteItems (record and head in one atomic write, no announcement)? dynalite,
// which every test here runs on, does not implement transactions, and they cost twice the write
// units of plain writes; the announcement gives the same guarantee (the head proves every record)
// with the same number of requests before the input goes out (bench/audit-chain.ts).
//
// Records written before chaining existed keep their old sort keys `<time15>#<seq12>#<writer>`:
// digits sort before `s#`, so they come first, as the unchained start of the trail. list reads
// the partition in sk order (newest-first and reversed for `limit`). Records older than an hour
// or so move to S3 objects under Object Lock (s3-audit-archive.ts): `entries` and `remove` are
// what that needs.
//
// Never over a gap, as the fs store: a record is put only while the one before it is stored (one
// consistent read per append, also when this store put that one: it may have been deleted since;
// $0.25 per million on demand), so records cut off the end that the head proves are not buried
// under a new one (SkippedSeq: appends fail closed until a reseal). The archiver always leaves the
// newest record in the table, so the one before is there to read.
import { BatchWriteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { appendChained, canonical, chainOptions, SkippedSeq, type ChainBackend, type ChainOptions } from '../../core/audit-chain.ts';
import { resealChain } from '../../core/audit-reseal.ts';
import { ChainWalker, readHead, type AuditVerifyResult, type ChainItem, type HeadRead } from '../../core/audit-walker.ts';
import type { AuditRecord, AuditStore } from '../../core/ports.ts';
import { checkConsoleName } from '../../../protocol/names.ts';
import { DynamoAuditHeadStore } from './dynamo-audit-heads.ts';
import { N, S, writeIf } from './dynamo-table.ts';

/** The partition of a console's records (a checked name: it is part of the key). */
const auditPk = (console: string) => S(`audit#${checkConsoleName(console, 'console', { cloudStream: true })}`);

/** The sort key of the chained record `seq`. */
export const seqSk = (seq: number): string => `s#${String(seq).padStart(15, '0')}`;

export class DynamoAuditStore implements AuditStore {
  readonly heads: DynamoAuditHeadStore;
  private readonly opts: ChainOptions;
  private readonly backend: ChainBackend;
  /** Head moves under way, per console (append resolves before its move is done). */
  private readonly moving = new Map<string, Promise<unknown>>();

  constructor(private readonly db: DynamoDBClient, private readonly table: string, opts: Partial<ChainOptions> = {}) {
    this.heads = new DynamoAuditHeadStore(db, table);
    this.opts = chainOptions(opts, process.env);
    this.backend = {
      heads: this.heads,
      create: async (rec) => {
        const seq = rec.seq!;
        if (seq > 1 && !(await this.backend.at(rec.console, seq - 1))) throw new SkippedSeq(rec.console, seq, undefined, 'the table');
        return writeIf(() => this.db.send(new PutItemCommand({
          TableName: this.table,
          Item: { pk: auditPk(rec.console), sk: S(seqSk(seq)), rec: S(JSON.stringify(rec)), time: N(rec.time) },
          ConditionExpression: 'attribute_not_exists(pk)', // never overwrite a record
        })));
      },
      at: async (c, seq) => {
        const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: auditPk(c), sk: S(seqSk(seq)) }, ConsistentRead: true }));
        if (!r.Item) return undefined;
        const item = parseItem(r.Item.rec?.S ?? '', `table item ${seqSk(seq)}`);
        return 'rec' in item ? item.rec : { time: 0, console: c, type: 'unreadable', seq }; // proves nothing: never adopted
      },
      // The newest chained record always stays in the table (the archiver leaves it).
      anyStored: async (c) => {
        const r = await this.db.send(new QueryCommand({
          TableName: this.table, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :s)', ConsistentRead: true, Limit: 1,
          ExpressionAttributeValues: { ':pk': auditPk(c), ':s': S('s#') },
        }));
        return (r.Items?.length ?? 0) > 0;
      },
    };
  }

  async append(rec: AuditRecord): Promise<void> {
    const c = rec.console;
    // This process's own move first: cheaper than finding the record announced and moving the head for it.
    await this.moving.get(c);
    await appendChained(this.backend, rec, this.opts, (move) => {
      // A failed move is made by the next append (it finds the record announced): nothing to report here.
      const done: Promise<unknown> = move.catch(() => {}).finally(() => { if (this.moving.get(c) === done) this.moving.delete(c); });
      this.moving.set(c, done);
    });
  }

  async settle(): Promise<void> {
    while (this.moving.size) await Promise.all(this.moving.values());
  }

  async list(console: string, opts: { limit?: number; since?: number } = {}): Promise<AuditRecord[]> {
    return (await this.entries(console, opts)).map((e) => e.rec);
  }

  /** Records with their sort keys, oldest first: the newest `limit` (of those at or after `since`),
   *  or (`before`, `oldestFirst`: what the archiver moves) the oldest ones up to the first record
   *  at or after `before` or past the chain position `maxSeq`, at most `limit`. */
  async entries(console: string, opts: { limit?: number; since?: number; before?: number; oldestFirst?: boolean; maxSeq?: number } = {}): Promise<AuditEntry[]> {
    const newestFirst = opts.limit !== undefined && !opts.oldestFirst;
    const out: AuditEntry[] = [];
    for await (const it of this.items(console, { forward: !newestFirst, since: opts.since, limit: opts.limit })) {
      const rec = JSON.parse(it.raw) as AuditRecord;
      if (opts.before !== undefined && (rec.time >= opts.before || (rec.seq ?? 0) > (opts.maxSeq ?? Infinity))) break;
      out.push({ sk: it.sk, rec });
      if (opts.limit !== undefined && out.length >= opts.limit) break;
    }
    return newestFirst ? out.reverse() : out;
  }

  /** The partition's items as stored (the record's JSON unparsed), page by page. `limit` is a hint
   *  for the page size. */
  private async *items(console: string, o: { forward: boolean; since?: number; limit?: number }): AsyncGenerator<{ sk: string; raw: string }> {
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, KeyConditionExpression: 'pk = :pk', ConsistentRead: true,
        ExpressionAttributeValues: { ':pk': auditPk(console), ...(o.since !== undefined ? { ':since': N(o.since) } : {}) },
        ...(o.since !== undefined ? { FilterExpression: '#t >= :since', ExpressionAttributeNames: { '#t': 'time' } } : {}),
        ScanIndexForward: o.forward, ExclusiveStartKey: start, ...(o.limit !== undefined ? { Limit: Math.max(1, o.limit) } : {}),
      }));
      for (const it of r.Items ?? []) yield { sk: it.sk!.S!, raw: it.rec?.S ?? '' };
      start = r.LastEvaluatedKey;
    } while (start);
  }

  /** Walks the console's chain: head, the table's records, `archived` ones (the archive store's
   *  objects, read after the table so a record moved meanwhile is found there), the head again.
   *  A record in both places (archived, not yet deleted) is walked once; copies that differ are
   *  reported. `head`: walk against this one (read once) instead. */
  async verify(console: string, archived?: (w: ChainWalker) => Promise<{ sk: string; item: ChainItem }[]>, opts: { head?: HeadRead } = {}): Promise<AuditVerifyResult> {
    await this.settle();
    const given = 'head' in opts;
    const head = given ? opts.head : await readHead(() => this.heads.get(console));
    const hot: { sk: string; raw: string }[] = [];
    for await (const it of this.items(console, { forward: true })) hot.push(it);
    const w = new ChainWalker(console);
    if (head && !(head instanceof Error)) w.watch(head.seq);
    const bySk = new Map<string, ChainItem>();
    for (const e of (await archived?.(w)) ?? []) bySk.set(e.sk, e.item);
    for (const e of hot) {
      const item = parseItem(e.raw, `table item ${e.sk}`);
      const other = bySk.get(e.sk);
      if (!other) bySk.set(e.sk, item);
      else if ('rec' in other && (!('rec' in item) || canonical(other.rec) !== canonical(item.rec))) {
        w.report({ seq: other.rec.seq ?? 0, time: other.rec.time, type: other.rec.type, problem: 'copies differ', detail: `the table's copy (${e.sk}) differs from the archived one (${other.where})` });
      }
    }
    for (const sk of [...bySk.keys()].sort()) w.push(bySk.get(sk)!);
    return w.finish(head, given ? undefined : await readHead(() => this.heads.get(console)));
  }

  /** `archived`: as for verify (S3AuditArchive passes its objects). */
  async reseal(console: string, by: string, now: number, archived?: (w: ChainWalker) => Promise<{ sk: string; item: ChainItem }[]>) {
    await this.settle();
    return resealChain({
      head: () => readHead(() => this.heads.get(console)),
      walk: (head) => this.verify(console, archived, { head }),
      reset: (to) => this.heads.reset(console, to),
      append: (rec) => appendChained(this.backend, rec, this.opts),
    }, console, by, now);
  }

  /** Deletes records by sort key (after they were archived), 25 to a request, retrying what
   *  DynamoDB leaves unprocessed. */
  async remove(console: string, sks: string[]): Promise<void> {
    for (let i = 0; i < sks.length; i += 25) {
      let req: Record<string, { DeleteRequest: { Key: Record<string, AttributeValue> } }[]> | undefined = {
        [this.table]: sks.slice(i, i + 25).map((sk) => ({ DeleteRequest: { Key: { pk: auditPk(console), sk: S(sk) } } })),
      };
      for (let attempt = 0; req && Object.keys(req).length; attempt++) {
        if (attempt > 8) throw new Error(`DynamoDB left audit deletes of ${console} unprocessed after ${attempt} attempts`);
        if (attempt) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        const r = await this.db.send(new BatchWriteItemCommand({ RequestItems: req }));
        req = r.UnprocessedItems as typeof req;
      }
    }
  }
}

/** A stored record's JSON as the chain walker takes it. */
export function parseItem(raw: string, where: string): ChainItem {
  try {
    const rec = JSON.parse(raw) as AuditRecord;
    if (rec && typeof rec === 'object') return { rec, where };
  } catch { /* below */ }
  return { bad: `not a record: ${JSON.stringify(raw.slice(0, 80))}`, where };
}

/** An audit record and its DynamoDB sort key (unique per record, its place in the order). */
export interface AuditEntry { sk: string; rec: AuditRecord }
