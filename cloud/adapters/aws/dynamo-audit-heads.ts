// AuditHeadStore on DynamoDB: the head of each console's audit chain (core/audit-chain.ts) as one
// item in the state table, pk `audithead#<console>`, sk `head`, attributes seq, hash, time and,
// while an append is between announcing its record and moving the head to it, pseq, phash, ptime
// and prec (the announced record's JSON, so that another Lambda can store it if its writer stops);
// apart from the records (pk `audit#<console>`), so records cut off the end of a chain, or added
// after it, are detected. Every change replaces the item on condition that it is what the writer
// read (seq, hash and announced hash): of several Lambdas racing from one head, one wins. Reads
// are strongly consistent.
import { GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { checkedHead, UnreadableHead } from '../../core/audit-chain.ts';
import type { AuditHead, AuditHeadStore } from '../../core/ports.ts';
import { N, S, writeIf } from './dynamo-table.ts';
import { checkConsoleName } from '../../../protocol/names.ts';

export class DynamoAuditHeadStore implements AuditHeadStore {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  private key(console: string) { return { pk: S(`audithead#${checkConsoleName(console, 'console', { cloudStream: true })}`), sk: S('head') }; }

  async get(console: string): Promise<AuditHead | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.key(console), ConsistentRead: true }));
    const it = r.Item;
    if (!it) return undefined;
    const where = `item audithead#${console} of table ${this.table}`;
    const num = (a: AttributeValue | undefined) => (a?.N !== undefined ? Number(a.N) : a?.S ?? a);
    let rec: unknown;
    if (it.prec) {
      try { rec = JSON.parse(it.prec.S ?? ''); } catch { throw new UnreadableHead(where, 'its announced record (prec) is not JSON'); }
    }
    const pending = it.pseq || it.phash ? { seq: num(it.pseq), hash: it.phash?.S, time: num(it.ptime), ...(rec ? { rec } : {}) } : undefined;
    return checkedHead({ seq: num(it.seq), hash: it.hash?.S, time: num(it.time), ...(pending ? { pending } : {}) }, where);
  }

  async reset(console: string, to: AuditHead): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: this.item(console, to) }));
  }

  async advance(console: string, from: AuditHead | undefined, to: AuditHead): Promise<boolean> {
    const p = from?.pending;
    return writeIf(() => this.db.send(new PutItemCommand({
      TableName: this.table, Item: this.item(console, to),
      ...(from
        ? {
          ConditionExpression: `seq = :s AND #h = :h AND ${p ? 'phash = :ph' : 'attribute_not_exists(phash)'}`,
          ExpressionAttributeNames: { '#h': 'hash' },
          ExpressionAttributeValues: { ':s': N(from.seq), ':h': S(from.hash), ...(p ? { ':ph': S(p.hash) } : {}) },
        }
        : { ConditionExpression: 'attribute_not_exists(pk)' }),
    })));
  }

  private item(console: string, h: AuditHead): Record<string, AttributeValue> {
    const p = h.pending;
    return {
      ...this.key(console), seq: N(h.seq), hash: S(h.hash), time: N(h.time),
      ...(p ? { pseq: N(p.seq), phash: S(p.hash), ptime: N(p.time), ...(p.rec ? { prec: S(JSON.stringify(p.rec)) } : {}) } : {}),
    };
  }
}
