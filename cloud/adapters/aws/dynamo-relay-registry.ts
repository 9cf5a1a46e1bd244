// RelayRegistry on DynamoDB: the AWS twin of adapters/fs/relay-registry.ts (same contract,
// test/contracts/relay-registry.contract.ts). All records live in one partition (pk `relays`,
// sk = name; see dynamo-table.ts), so list() is one strongly consistent Query (paged). Each part
// of a record is an attribute of its own, changed by an UpdateItem that names only it: a status,
// an upload and a hello of the same relay may be handled at once by different Lambdas, and none
// undoes another's. `about` (what the relay runs), `spool` and `localOff` (relay-local off) are JSON.
import { GetItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { RelayRecord, RelayRegistry } from '../../core/ports.ts';
import { N, queryAll, S, writeIf } from './dynamo-table.ts';

const PK = 'relays';

export class DynamoRelayRegistry implements RelayRegistry {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async get(name: string): Promise<RelayRecord | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.key(name), ConsistentRead: true }));
    return r.Item ? parse(r.Item) : undefined;
  }

  async list(): Promise<RelayRecord[]> { return (await queryAll(this.db, this.table, PK)).map(parse); }

  async connected(name: string, conn: string, about: Pick<RelayRecord, 'version' | 'protocol' | 'os' | 'arch' | 'boot' | 'features'>, now: number): Promise<void> {
    const old = await this.get(name);
    const moving = old?.conn !== undefined && old.boot === about.boot && old.connectedSince !== undefined;
    await this.update(name, 'SET about = :a, conn = :c, since = :s, seen = :n', { ':a': S(JSON.stringify(about)), ':c': S(conn), ':s': N(moving ? old.connectedSince! : now), ':n': N(now) });
  }

  async status(name: string, spool: { bytes: number; oldestAt?: number }, now: number, minMs: number): Promise<boolean> {
    // Only onto a record a hello made, and not sooner than minMs after the last one (a clock that
    // stepped back lets the next one through).
    return writeIf(() => this.update(name, 'SET spool = :sp, statusAt = :n, seen = :n', { ':sp': S(JSON.stringify(spool)), ':n': N(now), ':cut': N(now - minMs) },
      'attribute_exists(pk) AND (attribute_not_exists(statusAt) OR statusAt <= :cut OR statusAt > :n)'));
  }

  async uploaded(name: string, now: number): Promise<void> {
    await writeIf(() => this.update(name, 'SET upload = :n', { ':n': N(now) }, 'attribute_exists(pk) AND (attribute_not_exists(upload) OR upload < :n)'));
  }

  async disconnected(name: string, conn: string, now: number): Promise<void> {
    await writeIf(() => this.update(name, 'SET seen = :n REMOVE conn', { ':n': N(now), ':c': S(conn) }, 'conn = :c'));
  }

  async setLocal(name: string, off: { by: string; at: number } | undefined): Promise<RelayRecord> {
    await (off ? this.update(name, 'SET localOff = :o', { ':o': S(JSON.stringify(off)) }) : this.update(name, 'REMOVE localOff', {}));
    return (await this.get(name))!;
  }

  private key(name: string): Record<string, AttributeValue> { return { pk: S(PK), sk: S(name) }; }

  private update(name: string, expr: string, values: Record<string, AttributeValue>, cond?: string) {
    return this.db.send(new UpdateItemCommand({ TableName: this.table, Key: this.key(name), UpdateExpression: expr, ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}), ...(cond ? { ConditionExpression: cond } : {}) }));
  }
}

function parse(it: Record<string, AttributeValue>): RelayRecord {
  const num = (a?: AttributeValue) => (a?.N !== undefined ? Number(a.N) : undefined);
  const about = it.about?.S ? JSON.parse(it.about.S) as Pick<RelayRecord, 'version' | 'protocol' | 'os' | 'arch' | 'boot' | 'features'> : {};
  const spool = it.spool?.S ? JSON.parse(it.spool.S) as { bytes: number; oldestAt?: number } : undefined;
  const rec: RelayRecord = { name: it.sk!.S!, ...about };
  if (it.conn?.S) rec.conn = it.conn.S;
  if (num(it.since) !== undefined) rec.connectedSince = num(it.since);
  if (num(it.seen) !== undefined) rec.lastSeen = num(it.seen);
  if (spool) rec.spool = { ...spool, at: num(it.statusAt)! };
  if (num(it.upload) !== undefined) rec.lastUpload = num(it.upload);
  if (it.localOff?.S) rec.localOff = JSON.parse(it.localOff.S) as { by: string; at: number };
  return rec;
}
