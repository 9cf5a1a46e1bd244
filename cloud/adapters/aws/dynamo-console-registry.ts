// ConsoleRegistry on DynamoDB: the AWS twin of adapters/fs/console-registry.ts (same contract,
// test/contracts/console-registry.contract.ts). All records live in one partition (pk `consoles`,
// sk = name; see dynamo-table.ts), so list() is one strongly consistent Query (paged) and a record
// is one GetItem. The record is stored as JSON in `rec`, with `relayConn` beside it so that
// dropRelayConn can find and condition on it: a console that another relay connection took over
// meanwhile is left alone.
import { GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ConsoleRecord, ConsoleRegistry } from '../../core/ports.ts';
import { isConditionFailure, S } from './dynamo-table.ts';
import { checkConsoleName } from '../../../protocol/names.ts';

const PK = 'consoles';

export class DynamoConsoleRegistry implements ConsoleRegistry {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async get(name: string): Promise<ConsoleRecord | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(PK), sk: S(name) }, ConsistentRead: true }));
    return r.Item ? parse(r.Item) : undefined;
  }

  async list(): Promise<ConsoleRecord[]> {
    const out: ConsoleRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S(PK) },
        ConsistentRead: true, ExclusiveStartKey: start,
      }));
      for (const it of r.Items ?? []) out.push(parse(it));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async put(rec: ConsoleRecord): Promise<void> {
    checkConsoleName(rec.name);
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: item(rec) }));
  }

  async dropRelayConn(relayConn: string, reason: string, now: number): Promise<ConsoleRecord[]> {
    const out: ConsoleRecord[] = [];
    for (const r of await this.list()) {
      if (r.relayConn !== relayConn) continue;
      const down: ConsoleRecord = { ...r, state: 'down', since: now, reason };
      delete down.relayConn;
      try {
        await this.db.send(new PutItemCommand({
          TableName: this.table, Item: item(down),
          ConditionExpression: 'relayConn = :c', ExpressionAttributeValues: { ':c': S(relayConn) },
        }));
        out.push(down);
      } catch (e) {
        if (!isConditionFailure(e)) throw e; // re-published over another connection meanwhile
      }
    }
    return out;
  }
}

function item(rec: ConsoleRecord): Record<string, AttributeValue> {
  return { pk: S(PK), sk: S(rec.name), rec: S(JSON.stringify(rec)), ...(rec.relayConn ? { relayConn: S(rec.relayConn) } : {}) };
}

function parse(it: Record<string, AttributeValue>): ConsoleRecord { return JSON.parse(it.rec!.S!) as ConsoleRecord; }

