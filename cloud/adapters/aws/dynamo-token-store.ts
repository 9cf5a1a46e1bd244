// TokenStore on DynamoDB: the AWS twin of adapters/fs/token-store.ts. Only the SHA-256 of a
// secret is stored (pk `token#<sha256>`), so verify is one strongly consistent GetItem. A second
// item (pk `tokenid#<id>`) maps the id to that hash, for revoke; the token items carry
// gsi1pk `tokens` / gsi1sk `<created>#<id>`, so `list` is one query of that index.
import { GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { tokenName } from '../../../protocol/principal.ts';
import type { Principal, TokenInfo, TokenStore } from '../../core/ports.ts';
import { hashToken, newToken, principalOf, TOKEN_RE } from '../fs/token-store.ts';
import { isConditionFailure, N, S } from './dynamo-table.ts';

function info(it: Record<string, AttributeValue>): TokenInfo {
  return {
    id: it.id!.S!, kind: it.kind!.S as 'user' | 'relay', name: it.name!.S!, admin: it.admin?.BOOL ?? false, created: Number(it.created?.N ?? 0),
    ...(it.expires?.N ? { expires: Number(it.expires.N) } : {}),
    ...(it.revokedAt?.N ? { revoked: { at: Number(it.revokedAt.N), by: it.revokedBy?.S ?? '?' } } : {}),
  };
}

export class DynamoTokenStore implements TokenStore {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async verify(token: string, now = Date.now()): Promise<Principal | undefined> {
    if (!TOKEN_RE.test(token)) return undefined;
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`token#${hashToken(token)}`), sk: S('token') }, ConsistentRead: true }));
    return r.Item && principalOf(info(r.Item), now);
  }

  async create(p: { kind: 'user' | 'relay'; name: string; admin?: boolean; expires?: number }): Promise<{ token: string; id: string; expires?: number }> {
    const name = tokenName(p.name);
    const { token, id } = newToken(p.kind);
    const hash = hashToken(token);
    const created = Date.now();
    await this.db.send(new PutItemCommand({
      TableName: this.table, Item: { pk: S(`tokenid#${id}`), sk: S('tokenid'), hash: S(hash) }, ConditionExpression: 'attribute_not_exists(pk)',
    }));
    await this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: {
        pk: S(`token#${hash}`), sk: S('token'), kind: S(p.kind), name: S(name), admin: { BOOL: !!p.admin }, id: S(id), created: N(created),
        gsi1pk: S('tokens'), gsi1sk: S(`${String(created).padStart(15, '0')}#${id}`), ...(p.expires !== undefined ? { expires: N(p.expires) } : {}),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
    return { token, id, expires: p.expires };
  }

  async list(): Promise<TokenInfo[]> {
    const out: TokenInfo[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': S('tokens') },
        ScanIndexForward: false, ExclusiveStartKey: start,
      }));
      for (const it of r.Items ?? []) out.push(info(it));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  private async hashOf(id: string): Promise<string | undefined> {
    const m = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`tokenid#${id}`), sk: S('tokenid') }, ConsistentRead: true }));
    return m.Item?.hash?.S;
  }

  async info(id: string): Promise<TokenInfo | undefined> {
    const hash = await this.hashOf(id);
    if (!hash) return undefined;
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`token#${hash}`), sk: S('token') }, ConsistentRead: true }));
    return r.Item && info(r.Item);
  }

  async revoke(id: string, by: string, now: number): Promise<TokenInfo | undefined> {
    const hash = await this.hashOf(id);
    if (!hash) return undefined;
    try {
      await this.db.send(new UpdateItemCommand({
        TableName: this.table, Key: { pk: S(`token#${hash}`), sk: S('token') },
        UpdateExpression: 'SET revokedAt = :t, revokedBy = :b', ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revokedAt)',
        ExpressionAttributeValues: { ':t': N(now), ':b': S(by) },
      }));
    } catch (e) {
      if (!isConditionFailure(e)) throw e; // already revoked: keep the first time
    }
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`token#${hash}`), sk: S('token') }, ConsistentRead: true }));
    return r.Item && info(r.Item);
  }
}
