// The cloud's DynamoDB state table, shared by the DynamoDB adapters (single-table design):
//
//   item                  pk                     sk               gsi1 (gsi1pk / gsi1sk)        gsi2 (gsi2pk / gsi2sk)
//   write lock            console#<name>         lock             -                             -
//   console record        consoles               <name>           -                             -
//   relay record          relays                 <name>           -                             -
//   session               session#<id>           session          console#<name> / <since>#<id>  conn#<conn> / <id>
//   WebSocket connection  conn#<id>              conn             conns#<kind>:<name> / <connectedAt>#<id>  -
//   audit record          audit#<console>        s#<seq15>        -                             -
//     (written before the chain: <time15>#<seq12>#<writer>)
//   audit chain head      audithead#<console>    head             -                             -
//   hot-tail chunk        hot#<console>          <offset16>       -                             -
//   hot-tail console      hot-consoles           <name>           -                             -
//   segment index version segidx                 <console>        -                             -
//   token                 token#<sha256>         token            tokens / <created>#<id>       -
//   token by id           tokenid#<id>           tokenid          -                             -
//   access rules          access                 rules            -                             -
//   a user's SSH keys     sshkeys                <user>           -                             -
//
// The adapter of each item says what else it holds (dynamo-*.ts, apigw-connections.ts). Every
// conditional write goes through writeIf: false when its condition did not hold.
//
// The base table answers the strongly consistent reads (a lock, a session by id, the console list
// in one partition); the two global secondary indexes answer "sessions of a console" and
// "sessions of a connection", which DynamoDB keeps eventually consistent (typically well under a
// second behind a write). On demand, no provisioned throughput. A `ttl` attribute may expire
// items for garbage collection only (never the lock: its lease is compared with the clock).
import {
  ConditionalCheckFailedException, CreateTableCommand, QueryCommand, type AttributeValue, type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';

export const S = (s: string): AttributeValue => ({ S: s });
export const N = (n: number): AttributeValue => ({ N: String(n) });

export function isConditionFailure(e: unknown): boolean {
  return e instanceof ConditionalCheckFailedException || (e as { name?: string }).name === 'ConditionalCheckFailedException';
}

/** Makes a conditional write (`send` sends it): true when it was made, false when its condition
 *  did not hold (someone else wrote first); any other error is thrown. */
export async function writeIf(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch (e) {
    if (isConditionFailure(e)) return false;
    throw e;
  }
}

/** Every item of partition `pk`, in sort key order: strongly consistent Queries, page by page. */
export async function queryAll(db: DynamoDBClient, table: string, pk: string): Promise<Record<string, AttributeValue>[]> {
  const out: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const r = await db.send(new QueryCommand({
      TableName: table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S(pk) }, ConsistentRead: true, ExclusiveStartKey: start,
    }));
    out.push(...(r.Items ?? []));
    start = r.LastEvaluatedKey;
  } while (start);
  return out;
}

/** Creates the state table with its two indexes (on demand). For tests and local set-ups; infra/
 *  declares the same table for AWS. */
export async function createStateTable(client: DynamoDBClient, table: string): Promise<void> {
  const keys = (p: string, s: string) => [{ AttributeName: p, KeyType: 'HASH' as const }, { AttributeName: s, KeyType: 'RANGE' as const }];
  await client.send(new CreateTableCommand({
    TableName: table, BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk'].map((a) => ({ AttributeName: a, AttributeType: 'S' as const })),
    KeySchema: keys('pk', 'sk'),
    GlobalSecondaryIndexes: [
      { IndexName: 'gsi1', KeySchema: keys('gsi1pk', 'gsi1sk'), Projection: { ProjectionType: 'ALL' } },
      { IndexName: 'gsi2', KeySchema: keys('gsi2pk', 'gsi2sk'), Projection: { ProjectionType: 'ALL' } },
    ],
  }));
}
