// AuditStore on DynamoDB: the AWS twin of adapters/fs/audit-store.ts (same contract,
// test/contracts/audit-store.contract.ts). One item per record in the console's partition
// (pk `audit#<console>`, sk = zero-padded time, then a per-writer sequence and a writer id, so two
// Lambdas writing in the same millisecond never collide and one writer's records keep their
// order). A PutItem is durable when it returns, in single-digit milliseconds: the input it
// describes is forwarded only after that. list reads the partition in sk order (newest-first and
// reversed for `limit`). Records older than an hour or so move to S3 objects under Object Lock
// (s3-audit-archive.ts): `entries` and `remove` are what that needs.
import { BatchWriteItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import type { AuditRecord, AuditStore } from '../../core/ports.ts';
import { N, S } from './dynamo-table.ts';

export class DynamoAuditStore implements AuditStore {
  private readonly writer = randomBytes(4).toString('hex');
  private seq = 0;

  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async append(rec: AuditRecord): Promise<void> {
    const sk = `${String(Math.floor(rec.time)).padStart(15, '0')}#${String(this.seq++).padStart(12, '0')}#${this.writer}`;
    await this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: { pk: S(`audit#${rec.console}`), sk: S(sk), rec: S(JSON.stringify(rec)), time: N(rec.time) },
      ConditionExpression: 'attribute_not_exists(pk)', // never overwrite a record
    }));
  }

  async list(console: string, opts: { limit?: number; since?: number } = {}): Promise<AuditRecord[]> {
    return (await this.entries(console, opts)).map((e) => e.rec);
  }

  /** Records with their sort keys (sk order = time, then each writer's order), oldest first:
   *  the newest `limit`, those at or after `since`, or the oldest `limit` before `before`
   *  (`oldestFirst`). */
  async entries(console: string, opts: { limit?: number; since?: number; before?: number; oldestFirst?: boolean } = {}): Promise<AuditEntry[]> {
    const values: Record<string, AttributeValue> = { ':pk': S(`audit#${console}`) };
    const t = (ms: number) => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
    let cond = 'pk = :pk';
    if (opts.since !== undefined && opts.before !== undefined) { cond += ' AND sk BETWEEN :since AND :before'; values[':since'] = S(t(opts.since)); values[':before'] = S(t(opts.before)); }
    else if (opts.since !== undefined) { cond += ' AND sk >= :since'; values[':since'] = S(t(opts.since)); }
    else if (opts.before !== undefined) { cond += ' AND sk < :before'; values[':before'] = S(t(opts.before)); }
    const newestFirst = opts.limit !== undefined && !opts.oldestFirst;
    const out: AuditEntry[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, KeyConditionExpression: cond, ExpressionAttributeValues: values, ConsistentRead: true,
        ScanIndexForward: !newestFirst, ExclusiveStartKey: start, ...(opts.limit !== undefined ? { Limit: Math.max(1, opts.limit - out.length) } : {}),
      }));
      // BETWEEN includes `before` itself (a bare time sorts below every sk of that millisecond).
      for (const it of r.Items ?? []) if (opts.before === undefined || it.sk!.S! < t(opts.before)) out.push({ sk: it.sk!.S!, rec: JSON.parse(it.rec!.S!) as AuditRecord });
      start = r.LastEvaluatedKey;
    } while (start && (opts.limit === undefined || out.length < opts.limit));
    const picked = opts.limit !== undefined ? out.slice(0, opts.limit) : out;
    return newestFirst ? picked.reverse() : picked;
  }

  /** Deletes records by sort key (after they were archived), 25 to a request, retrying what
   *  DynamoDB leaves unprocessed. */
  async remove(console: string, sks: string[]): Promise<void> {
    for (let i = 0; i < sks.length; i += 25) {
      let req: Record<string, { DeleteRequest: { Key: Record<string, AttributeValue> } }[]> | undefined = {
        [this.table]: sks.slice(i, i + 25).map((sk) => ({ DeleteRequest: { Key: { pk: S(`audit#${console}`), sk: S(sk) } } })),
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

/** An audit record and its DynamoDB sort key (unique per record, its place in the order). */
export interface AuditEntry { sk: string; rec: AuditRecord }
