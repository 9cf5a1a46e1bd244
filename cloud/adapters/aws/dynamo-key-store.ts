// KeyStore on DynamoDB: the AWS twin of adapters/fs/key-store.ts (same contract,
// test/contracts/key-store.contract.ts). One item per user (pk `sshkeys`, sk = user; see
// dynamo-table.ts) holding the user's keys as JSON and a version: put is a conditional write on
// the version, so two changes to one user's keys never overwrite each other unseen, and the limit
// on keys per user (checked by the core before put) holds across Lambdas. all() is one strongly
// consistent Query of the partition (paged). A user's keys are small (16 by default, ~1.5 KB at
// most each): far below an item's 400 KB.
import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KeyStore, SshKeyRecord } from '../../core/ports.ts';
import { N, queryAll, S, writeIf } from './dynamo-table.ts';

const PK = 'sshkeys';

export class DynamoKeyStore implements KeyStore {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async get(user: string): Promise<{ keys: SshKeyRecord[]; version: number }> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(PK), sk: S(user) }, ConsistentRead: true }));
    if (!r.Item) return { keys: [], version: 0 };
    return { keys: JSON.parse(r.Item.keys!.S!) as SshKeyRecord[], version: Number(r.Item.version!.N) };
  }

  async put(user: string, keys: SshKeyRecord[], expect: number): Promise<boolean> {
    return writeIf(() => this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: { pk: S(PK), sk: S(user), keys: S(JSON.stringify(keys)), version: N(expect + 1) },
      ...(expect === 0 ? { ConditionExpression: 'attribute_not_exists(pk)' } : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': N(expect) } }),
    })));
  }

  async all(): Promise<{ user: string; keys: SshKeyRecord[] }[]> {
    return (await queryAll(this.db, this.table, PK))
      .map((it) => ({ user: it.sk!.S!, keys: JSON.parse(it.keys!.S!) as SshKeyRecord[] }))
      .filter((u) => u.keys.length);
  }
}
