// ConsoleRegistry on DynamoDB: the AWS twin of adapters/fs/console-registry.ts (same contract,
// test/contracts/console-registry.contract.ts). All records live in one partition (pk `consoles`,
// sk = name; see dynamo-table.ts), so list() is one strongly consistent Query (paged) and a record
// is one GetItem. The record is stored as JSON in `rec`, with `relayConn` beside it so that
// dropRelayConn can find and condition on it (a console that another relay connection took over
// meanwhile is left alone), and `relay` (the owner) so that putIf and remove can: a record written
// before `relay` was kept beside it is matched by its JSON instead.
import {
  DeleteItemCommand, GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { ConsoleRecord, ConsoleRegistry } from '../../core/ports.ts';
import { isConditionFailure, queryAll, S, writeIf } from './dynamo-table.ts';
import { checkConsoleName } from '../../../protocol/names.ts';

const PK = 'consoles';

export class DynamoConsoleRegistry implements ConsoleRegistry {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async get(name: string): Promise<ConsoleRecord | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(PK), sk: S(name) }, ConsistentRead: true }));
    return r.Item ? parse(r.Item) : undefined;
  }

  async list(): Promise<ConsoleRecord[]> { return (await queryAll(this.db, this.table, PK)).map(parse); }

  async put(rec: ConsoleRecord): Promise<void> {
    checkConsoleName(rec.name);
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: item(rec) }));
  }

  async putIf(rec: ConsoleRecord, owner: string | null): Promise<boolean> {
    if (owner === null) return writeIf(() => this.db.send(new PutItemCommand({ TableName: this.table, Item: item(rec), ConditionExpression: 'attribute_not_exists(pk)' })));
    return this.asOwner(rec.name, owner, '', (cond) => this.db.send(new PutItemCommand({ TableName: this.table, Item: item(rec), ...cond })));
  }

  async remove(name: string, owner: string): Promise<boolean> {
    return this.asOwner(name, owner, ' AND attribute_not_exists(relayConn)', (cond) => this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: S(PK), sk: S(name) }, ...cond })));
  }

  /** Makes the write `send` sends with a condition that the record belongs to `owner` (and
   *  `extra`); for a record without the `relay` attribute (older), that its JSON is the one just
   *  read, which names `owner`. */
  private async asOwner(name: string, owner: string, extra: string, send: (cond: Cond) => Promise<unknown>): Promise<boolean> {
    const names = { '#relay': 'relay', '#rec': 'rec' };
    if (await writeIf(() => send({ ConditionExpression: `#relay = :o${extra}`, ExpressionAttributeNames: { '#relay': 'relay' }, ExpressionAttributeValues: { ':o': S(owner) } }))) return true;
    const cur = (await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(PK), sk: S(name) }, ConsistentRead: true }))).Item;
    if (!cur || cur.relay || parse(cur).relay !== owner) return false;
    return writeIf(() => send({ ConditionExpression: `attribute_not_exists(#relay) AND #rec = :old${extra}`, ExpressionAttributeNames: names, ExpressionAttributeValues: { ':old': cur.rec! } }));
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

type Cond = { ConditionExpression: string; ExpressionAttributeNames: Record<string, string>; ExpressionAttributeValues: Record<string, AttributeValue> };

function item(rec: ConsoleRecord): Record<string, AttributeValue> {
  return { pk: S(PK), sk: S(rec.name), rec: S(JSON.stringify(rec)), relay: S(rec.relay), ...(rec.relayConn ? { relayConn: S(rec.relayConn) } : {}) };
}

function parse(it: Record<string, AttributeValue>): ConsoleRecord { return JSON.parse(it.rec!.S!) as ConsoleRecord; }

