// AuditHeadStore on DynamoDB: the head of each console's audit chain (core/audit-chain.ts) as one
// item in the state table, pk `audithead#<console>`, sk `head`, attributes seq, hash, time; apart
// from the records (pk `audit#<console>`), so records cut off the end of a chain are detected.
// Moves are conditional (seq = the old seq, or no item yet): of several Lambdas racing to move
// one head from the same seq, one wins. Reads are strongly consistent.
import { GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AuditHead, AuditHeadStore } from '../../core/ports.ts';
import { isConditionFailure, N, S } from './dynamo-table.ts';

export class DynamoAuditHeadStore implements AuditHeadStore {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  private key(console: string) { return { pk: S(`audithead#${console}`), sk: S('head') }; }

  async get(console: string): Promise<AuditHead | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.key(console), ConsistentRead: true }));
    const it = r.Item;
    return it ? { seq: Number(it.seq!.N), hash: it.hash!.S!, time: Number(it.time!.N) } : undefined;
  }

  async reset(console: string, to: AuditHead): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: { ...this.key(console), seq: N(to.seq), hash: S(to.hash), time: N(to.time) } }));
  }

  async advance(console: string, fromSeq: number, to: AuditHead): Promise<boolean> {
    try {
      if (fromSeq === 0) {
        await this.db.send(new PutItemCommand({
          TableName: this.table, Item: { ...this.key(console), seq: N(to.seq), hash: S(to.hash), time: N(to.time) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }));
      } else {
        await this.db.send(new UpdateItemCommand({
          TableName: this.table, Key: this.key(console),
          UpdateExpression: 'SET seq = :s, #h = :h, #t = :t', ConditionExpression: 'seq = :from',
          ExpressionAttributeNames: { '#h': 'hash', '#t': 'time' },
          ExpressionAttributeValues: { ':s': N(to.seq), ':h': S(to.hash), ':t': N(to.time), ':from': N(fromSeq) },
        }));
      }
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }
}
