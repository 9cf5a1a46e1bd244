// AuditStore on DynamoDB: the AWS twin of adapters/fs/audit-store.ts (same contract,
// test/contracts/audit-store.contract.ts). One item per record in the console's partition
// (pk `audit#<console>`, sk = zero-padded time, then a per-writer sequence and a writer id, so two
// Lambdas writing in the same millisecond never collide and one writer's records keep their
// order). A PutItem is durable when it returns, in single-digit milliseconds: the input it
// describes is forwarded only after that. list reads the partition in sk order (newest-first and
// reversed for `limit`). Sealing the chain into S3 with Object Lock is the security issue's part.
import { PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
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
    const values: Record<string, AttributeValue> = { ':pk': S(`audit#${console}`) };
    let cond = 'pk = :pk';
    if (opts.since !== undefined) { cond += ' AND sk >= :since'; values[':since'] = S(String(Math.max(0, Math.floor(opts.since))).padStart(15, '0')); }
    const newestFirst = opts.limit !== undefined;
    const out: AuditRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, KeyConditionExpression: cond, ExpressionAttributeValues: values, ConsistentRead: true,
        ScanIndexForward: !newestFirst, ExclusiveStartKey: start, ...(newestFirst ? { Limit: Math.max(1, opts.limit! - out.length) } : {}),
      }));
      for (const it of r.Items ?? []) out.push(JSON.parse(it.rec!.S!) as AuditRecord);
      start = r.LastEvaluatedKey;
    } while (start && (!newestFirst || out.length < opts.limit!));
    return newestFirst ? out.slice(0, opts.limit).reverse() : out;
  }
}
