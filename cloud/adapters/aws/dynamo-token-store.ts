// TokenStore on DynamoDB: the AWS twin of adapters/fs/token-store.ts. Only the SHA-256 of a
// secret is stored (pk `token#<sha256>`), so verify is one strongly consistent GetItem. Expiry,
// revocation and listing arrive with the security issue, for both stores.
import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import type { Principal, TokenStore } from '../../core/ports.ts';
import { hashToken } from '../fs/token-store.ts';
import { S } from './dynamo-table.ts';

export class DynamoTokenStore implements TokenStore {
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  async verify(token: string): Promise<Principal | undefined> {
    if (!/^cc[ur]_[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S(`token#${hashToken(token)}`), sk: S('token') }, ConsistentRead: true }));
    const it = r.Item;
    return it && { kind: it.kind!.S as 'user' | 'relay', name: it.name!.S!, admin: it.admin?.BOOL ?? false, tokenId: it.id!.S! };
  }

  async create(p: { kind: 'user' | 'relay'; name: string; admin?: boolean }): Promise<{ token: string; id: string }> {
    const token = `cc${p.kind === 'user' ? 'u' : 'r'}_${randomBytes(24).toString('base64url')}`;
    const id = randomBytes(6).toString('hex');
    await this.db.send(new PutItemCommand({
      TableName: this.table,
      Item: { pk: S(`token#${hashToken(token)}`), sk: S('token'), kind: S(p.kind), name: S(p.name), admin: { BOOL: !!p.admin }, id: S(id), created: { N: String(Date.now()) } },
      ConditionExpression: 'attribute_not_exists(pk)',
    }));
    return { token, id };
  }
}
