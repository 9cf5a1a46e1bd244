// TokenStore on DynamoDB: the AWS twin of adapters/fs/token-store.ts. Only the SHA-256 of a
// secret is stored (pk `token#<sha256>`), so verify is one strongly consistent GetItem. A second
// item (pk `tokenid#<id>`) maps the id to that hash, for revoke, and carries the token's
// description and revocation too, so `info` (asked at every input of an open session, to refuse
// it the moment the token is revoked) is one GetItem as well; revoke writes both items before it
// returns. The token items carry gsi1pk `tokens` / gsi1sk `<created>#<id>`, so `list` is one
// query of that index.
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
    const desc: Record<string, AttributeValue> = { kind: S(p.kind), name: S(name), admin: { BOOL: !!p.admin }, id: S(id), created: N(created), ...(p.expires !== undefined ? { expires: N(p.expires) } : {}) };
    await this.db.send(new PutItemCommand({
      TableName: this.table, Item: { pk: S(`tokenid#${id}`), sk: S('tokenid'), hash: S(hash), ...desc }, ConditionExpression: 'attribute_not_exists(pk)',
    }));
    await this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: { pk: S(`token#${hash}`), sk: S('token'), ...desc, gsi1pk: S('tokens'), gsi1sk: S(`${String(created).padStart(15, '0')}#${id}`) },
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

  private async idItem(id: string): Promise<Record<string, AttributeValue> | undefined> {
    const m = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`tokenid#${id}`), sk: S('tokenid') }, ConsistentRead: true }));
    return m.Item;
  }

  private async tokenItem(hash: string): Promise<TokenInfo | undefined> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`token#${hash}`), sk: S('token') }, ConsistentRead: true }));
    return r.Item && info(r.Item);
  }

  async info(id: string): Promise<TokenInfo | undefined> {
    const m = await this.idItem(id);
    if (!m?.hash?.S) return undefined;
    // Items written before the id item carried the description: read the token item as well.
    return m.kind ? info(m) : this.tokenItem(m.hash.S);
  }

  async revoke(id: string, by: string, now: number): Promise<TokenInfo | undefined> {
    const hash = (await this.idItem(id))?.hash?.S;
    if (!hash) return undefined;
    // The token item first (sign-ins are refused from then on), then the id item (open sessions'
    // input); each keeps the first revocation, so repeating a revoke that failed between is safe.
    for (const key of [{ pk: S(`token#${hash}`), sk: S('token') }, { pk: S(`tokenid#${id}`), sk: S('tokenid') }]) {
      try {
        await this.db.send(new UpdateItemCommand({
          TableName: this.table, Key: key,
          UpdateExpression: 'SET revokedAt = :t, revokedBy = :b', ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revokedAt)',
          ExpressionAttributeValues: { ':t': N(now), ':b': S(by) },
        }));
      } catch (e) {
        if (!isConditionFailure(e)) throw e; // already revoked: keep the first time
      }
    }
    return this.tokenItem(hash);
  }
}
