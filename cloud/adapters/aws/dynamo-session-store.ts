// SessionStore on DynamoDB: the AWS twin of adapters/memory/session-store.ts (same contract,
// test/contracts/session-store.contract.ts). One item per session (pk `session#<id>`, see
// dynamo-table.ts): get is a strongly consistent GetItem; byConsole and byConn query the gsi1 and
// gsi2 indexes, which DynamoDB keeps eventually consistent. A viewer that attached a moment ago
// may so miss the first live messages of its console; it catches up from the stored output by
// offset, as a slow viewer does. `ttl` (seconds) lets DynamoDB collect sessions whose connection
// vanished without a $disconnect (API Gateway's disconnect event is a hint, not a promise).
import {
  DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { Session, SessionStore } from '../../core/ports.ts';
import { N, S } from './dynamo-table.ts';
import { checkConsoleName } from '../../../protocol/names.ts';

export interface DynamoSessionStoreOptions {
  /** How long a session item outlives its last write before DynamoDB may delete it (s). Default
   *  3 hours: longer than API Gateway's 2-hour connection limit. */
  ttlSeconds?: number;
  now?: () => number;
}

export class DynamoSessionStore implements SessionStore {
  private readonly ttlSeconds: number;
  private readonly now: () => number;

  constructor(private readonly db: DynamoDBClient, private readonly table: string, opts: DynamoSessionStoreOptions = {}) {
    this.ttlSeconds = opts.ttlSeconds ?? 3 * 3600;
    this.now = opts.now ?? Date.now;
  }

  async put(s: Session): Promise<void> {
    await this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: {
        pk: S(`session#${s.id}`), sk: S('session'), rec: S(JSON.stringify(s)),
        gsi1pk: S(`console#${checkConsoleName(s.console)}`), gsi1sk: S(`${String(s.since).padStart(16, '0')}#${s.id}`),
        gsi2pk: S(`conn#${s.conn}`), gsi2sk: S(s.id),
        ttl: N(Math.floor(this.now() / 1000) + this.ttlSeconds),
      },
    }));
  }

  async get(id: string): Promise<Session | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`session#${id}`), sk: S('session') }, ConsistentRead: true }));
    return r.Item ? parse(r.Item) : undefined;
  }

  async delete(id: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: S(`session#${id}`), sk: S('session') } }));
  }

  /** Oldest first (gsi1sk begins with the zero-padded `since`). */
  async byConsole(console: string): Promise<Session[]> { return this.query('gsi1', 'gsi1pk', `console#${console}`); }

  async byConn(conn: string): Promise<Session[]> { return this.query('gsi2', 'gsi2pk', `conn#${conn}`); }

  private async query(index: string, key: string, value: string): Promise<Session[]> {
    const out: Session[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, IndexName: index, KeyConditionExpression: `${key} = :v`, ExpressionAttributeValues: { ':v': S(value) },
        ExclusiveStartKey: start,
      }));
      for (const it of r.Items ?? []) out.push(parse(it));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }
}

function parse(it: Record<string, AttributeValue>): Session { return JSON.parse(it.rec!.S!) as Session; }
