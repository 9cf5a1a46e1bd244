// The API Gateway side of connections: who is on a WebSocket connection (DynamoDB, written at
// $connect, since each $default invocation sees only the connection id), and sending to one
// (@connections PostToConnection through @aws-sdk/client-apigatewaymanagementapi).
import {
  ApiGatewayManagementApiClient, DeleteConnectionCommand, PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { encode } from '../../../protocol/codec.ts';
import type { ConnectionDirectory, ConnectionSender, Principal } from '../../core/ports.ts';
import { N, S } from './dynamo-table.ts';

export interface ConnectionInfo { kind: 'relay' | 'session'; who: Principal; connectedAt: number }

/** Connection items: pk `conn#<id>`, with a TTL past API Gateway's 2-hour limit, because
 *  $disconnect may never come; gsi1 `conns#<kind>:<name>` / `<connectedAt>#<id>` counts a
 *  principal's open connections (the per-user and per-relay limits) and finds them (`of`: a
 *  revocation closes them). */
export class DynamoConnections implements ConnectionDirectory {
  constructor(private readonly db: DynamoDBClient, private readonly table: string, private readonly ttlSeconds = 3 * 3600) {}

  async put(id: string, c: ConnectionInfo): Promise<void> {
    await this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: {
        pk: S(`conn#${id}`), sk: S('conn'), rec: S(JSON.stringify(c)), ttl: N(Math.floor(c.connectedAt / 1000) + this.ttlSeconds),
        gsi1pk: S(`conns#${c.who.kind}:${c.who.name}`), gsi1sk: S(`${String(c.connectedAt).padStart(15, '0')}#${id}`),
      },
    }));
  }

  /** Connections of a principal opened in the last 2 hours (API Gateway's connection lifetime)
   *  and not yet gone ($disconnect deletes them; one that never came counts until then). */
  async countOpen(who: Pick<Principal, 'kind' | 'name'>, now: number): Promise<number> {
    const r = await this.db.send(new QueryCommand({ ...this.openOf(who, now), Select: 'COUNT' }));
    return r.Count ?? 0;
  }

  /** The gsi1 query of a principal's connections opened in the last 2 hours. */
  private openOf(who: Pick<Principal, 'kind' | 'name'>, now: number) {
    return {
      TableName: this.table, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p AND gsi1sk > :t',
      ExpressionAttributeValues: { ':p': S(`conns#${who.kind}:${who.name}`), ':t': S(String(now - 2 * 3600_000).padStart(15, '0')) },
    };
  }

  async of(who: Pick<Principal, 'kind' | 'name'>): Promise<{ conn: string; who: Principal }[]> {
    const out: { conn: string; who: Principal }[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({ ...this.openOf(who, Date.now()), ExclusiveStartKey: start }));
      for (const it of r.Items ?? []) out.push({ conn: it.pk!.S!.slice('conn#'.length), who: (JSON.parse(it.rec!.S!) as ConnectionInfo).who });
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async get(id: string): Promise<ConnectionInfo | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`conn#${id}`), sk: S('conn') }, ConsistentRead: true }));
    return r.Item ? JSON.parse(r.Item.rec!.S!) as ConnectionInfo : undefined;
  }

  async delete(id: string): Promise<void> {
    await this.db.send(new DeleteItemCommand({ TableName: this.table, Key: { pk: S(`conn#${id}`), sk: S('conn') } }));
  }
}

/** ConnectionSender over @connections. A post to a connection that is gone (410) answers false,
 *  and the caller cleans up; `close` cannot carry a code or reason on API Gateway, so the reason
 *  is posted first as an error message. */
export class ApiGatewaySender implements ConnectionSender {
  constructor(private readonly api: ApiGatewayManagementApiClient) {}

  async send(conn: string, frame: string): Promise<boolean> {
    try {
      await this.api.send(new PostToConnectionCommand({ ConnectionId: conn, Data: Buffer.from(frame) }));
      return true;
    } catch (e) {
      if ((e as Error).name === 'GoneException') return false;
      throw e;
    }
  }

  async close(conn: string, code: number, reason: string): Promise<void> {
    await this.send(conn, encode({ t: 'error', code: 'CC_ERR_CONNECTION', message: `closing: ${code} ${reason}` })).catch(() => false);
    await this.api.send(new DeleteConnectionCommand({ ConnectionId: conn })).catch((e: Error) => {
      if (e.name !== 'GoneException') throw e;
    });
  }
}
