// LockStore on DynamoDB (@aws-sdk/client-dynamodb): the AWS twin of adapters/memory/lock-store.ts,
// held to the same contract (test/contracts/lock-store.contract.ts, run against dynalite).
//
// One item per console: pk `console#<name>`, sk `lock`, with session, user, fence, expiresAt and a
// version `v` that every write bumps. acquire is optimistic: a strongly consistent read, the same
// decision the memory store makes, then a write conditioned on the version it read (or on the item
// not existing). Of N racing acquirers exactly one write lands; the others see
// ConditionalCheckFailed, read again and decide again (refused now, or, with force, next in line
// with the next fence), so fences strictly increase and none is handed out twice.
// renew and release are single conditional updates on session and fence (renew also on a lease
// that has not lapsed: a lapsed one is never revived). The lease is plain data
// (expiresAt, compared with the caller's clock): DynamoDB's TTL is never used for lock expiry,
// which it applies up to days late.
//
// The table: see dynamo-table.ts.
import { GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BadParameter, Conflict } from '../../../protocol/errors.ts';
import { fenceExhausted, FENCE_RULE, isFence, MAX_FENCE } from '../../../protocol/bounds.ts';
import type { AcquireResult, Lock, LockStore } from '../../core/ports.ts';
import { N, S, writeIf } from './dynamo-table.ts';
import { lapsedHolder } from '../memory/lock-store.ts';
import { checkConsoleName } from '../../../protocol/names.ts';

export interface DynamoLockStoreOptions {
  client: DynamoDBClient;
  table: string;
  /** Attempts of the read-decide-write cycle before acquire gives up under contention. Default 100
   *  (each lost round means another acquirer won, so 50 forcing at once all finish). */
  maxAttempts?: number;
}

export class DynamoLockStore implements LockStore {
  private readonly db: DynamoDBClient;
  private readonly table: string;
  private readonly maxAttempts: number;

  constructor(opts: DynamoLockStoreOptions) {
    this.db = opts.client;
    this.table = opts.table;
    this.maxAttempts = opts.maxAttempts ?? 100;
  }

  private key(console: string): Record<string, AttributeValue> { return { pk: S(`console#${checkConsoleName(console)}`), sk: S('lock') }; }

  /** The lock and its version (0 when there is no item). */
  private async read(console: string): Promise<{ lock: Lock; v: number }> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.key(console), ConsistentRead: true }));
    const it = r.Item;
    if (!it) return { lock: { console, fence: 0, expiresAt: 0 }, v: 0 };
    return {
      lock: { console, session: it.session?.S, user: it.user?.S, fence: Number(it.fence?.N ?? 0), expiresAt: Number(it.expiresAt?.N ?? 0) },
      v: Number(it.v?.N ?? 0),
    };
  }

  /** Writes `next` as version v+1 if the item is still at version `v`; false if someone else wrote. */
  private async write(next: Lock, v: number): Promise<boolean> {
    const item: Record<string, AttributeValue> = {
      ...this.key(next.console), console: S(next.console), fence: N(next.fence), expiresAt: N(next.expiresAt), v: N(v + 1),
    };
    if (next.session !== undefined) item.session = S(next.session);
    if (next.user !== undefined) item.user = S(next.user);
    return writeIf(() => this.db.send(new PutItemCommand({
      TableName: this.table, Item: item,
      ...(v === 0
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : { ConditionExpression: '#v = :v', ExpressionAttributeNames: { '#v': 'v' }, ExpressionAttributeValues: { ':v': N(v) } }),
    })));
  }

  async get(console: string): Promise<Lock> { return (await this.read(console)).lock; }

  async acquire(console: string, holder: { session: string; user: string }, opts: { force: boolean; leaseMs: number; now: number }): Promise<AcquireResult> {
    for (let attempt = 1; ; attempt++) {
      const { lock: cur, v } = await this.read(console);
      const held = cur.session !== undefined && cur.expiresAt > opts.now;
      let next: Lock;
      let bumped: { session: string; user: string } | undefined;
      const lapsed = lapsedHolder(cur, opts.now);
      if (cur.session === holder.session && held && !opts.force) {
        next = { ...cur, expiresAt: opts.now + opts.leaseMs };
      } else if (held && !opts.force) {
        return { ok: false, lock: cur };
      } else {
        if (cur.fence >= MAX_FENCE) throw new Conflict(fenceExhausted(console));
        bumped = held && cur.session !== holder.session ? { session: cur.session!, user: cur.user! } : undefined;
        next = { console, session: holder.session, user: holder.user, fence: cur.fence + 1, expiresAt: opts.now + opts.leaseMs };
      }
      if (await this.write(next, v)) return { ok: true, lock: next, ...(bumped ? { bumped } : {}), ...(lapsed ? { lapsed } : {}) };
      if (attempt >= this.maxAttempts) throw new Error(`lock on ${console}: still contended after ${attempt} attempts`);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2))); // jitter: let the winner's write settle
    }
  }

  async renew(console: string, session: string, fence: number, leaseMs: number, now: number): Promise<boolean> {
    return this.update(console, 'SET #expiresAt = :e, #v = #v + :one', '#session = :s AND #fence = :f AND #expiresAt > :now', {
      ':e': N(now + leaseMs), ':one': N(1), ':s': S(session), ':f': N(fence), ':now': N(now),
    });
  }

  async release(console: string, session: string, fence: number): Promise<boolean> {
    return this.update(console, 'REMOVE #session, #user SET #expiresAt = :zero, #v = #v + :one', '#session = :s AND #fence = :f', {
      ':zero': N(0), ':one': N(1), ':s': S(session), ':f': N(fence),
    });
  }

  async seedFence(console: string, fence: number): Promise<void> {
    if (!isFence(fence)) throw new BadParameter(`seedFence ${console}: fence must be ${FENCE_RULE}, got ${fence}`);
    await this.update(console,
      'SET #fence = :f, #console = :c, #expiresAt = if_not_exists(#expiresAt, :zero), #v = if_not_exists(#v, :zero) + :one',
      'attribute_not_exists(pk) OR #fence < :f', { ':f': N(fence), ':c': S(console), ':zero': N(0), ':one': N(1) });
  }

  /** A conditional UpdateItem: true if it applied, false if the condition did not hold. Every
   *  attribute goes by a #name (SESSION and USER are DynamoDB reserved words). */
  private async update(console: string, expr: string, cond: string, values: Record<string, AttributeValue>): Promise<boolean> {
    const used = new Set([...`${expr} ${cond}`.matchAll(/#(\w+)/g)].map((m) => m[1]!));
    return writeIf(() => this.db.send(new UpdateItemCommand({
      TableName: this.table, Key: this.key(console), UpdateExpression: expr, ConditionExpression: cond,
      ExpressionAttributeValues: values, ExpressionAttributeNames: Object.fromEntries([...used].map((n) => [`#${n}`, n])),
    })));
  }
}
