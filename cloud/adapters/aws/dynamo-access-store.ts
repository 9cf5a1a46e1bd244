// AccessStore on DynamoDB: one item (pk `access`, sk `rules`) holding the rules document as JSON
// and a version; put is a conditional write on the version, so two admins never overwrite each
// other's change unseen.
import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AccessStore } from '../../core/ports.ts';
import { N, S, writeIf } from './dynamo-table.ts';

export class DynamoAccessStore implements AccessStore {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async get(): Promise<{ doc?: unknown; version: number }> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S('access'), sk: S('rules') }, ConsistentRead: true }));
    if (!r.Item) return { version: 0 };
    return { doc: JSON.parse(r.Item.doc!.S!), version: Number(r.Item.version!.N) };
  }

  async put(doc: unknown, expect: number): Promise<boolean> {
    return writeIf(() => this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: { pk: S('access'), sk: S('rules'), doc: S(JSON.stringify(doc)), version: N(expect + 1), changed: N(Date.now()) },
      ...(expect === 0 ? { ConditionExpression: 'attribute_not_exists(pk)' } : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': N(expect) } }),
    })));
  }
}
