// HotTail on DynamoDB: the AWS twin of adapters/fs/hot-tail.ts (same contract,
// test/contracts/hot-tail.contract.ts). Live output not sealed into a segment yet, one item per
// live chunk in the console's partition: pk `hot#<console>`, sk = the chunk's offset (16 digits),
// with its bytes (B, at most 22 KiB a chunk: a live message's limit), arrival time and length.
//
// Bytes at an offset never change (the relay's stream is append-only), so an item is written
// create-only: of two Lambdas storing live output at the same offset at once, one writes and the
// other looks again at what is stored and writes only the rest. Chunks may overlap (a retry cut
// at another boundary); reads clip overlaps away, so each byte comes back once. `hot-consoles` lists the consoles that ever had a hot tail.
// `segidx` / <console> holds a counter every change to the console's segments increments (commit,
// expiry, compaction): Lambda containers cache segment listings and list again when it moved.
import {
  BatchWriteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient, type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { HotTail } from '../../core/ports.ts';
import { isConditionFailure, N, S } from './dynamo-table.ts';
import { checkConsoleName } from '../../../protocol/names.ts';

/** The partition of a console's chunks (a checked name: it is part of the key). */
const hotPk = (console: string) => S(`hot#${checkConsoleName(console)}`);

const p16 = (n: number) => String(n).padStart(16, '0');
/** Items that start this far below `from` may still reach it (a chunk is at most 22 KiB). */
const LOOKBACK = 64 * 1024;

interface Item { offset: number; ts: number; data: Buffer }

export class DynamoHotTail implements HotTail {
  private readonly marked = new Set<string>();
  constructor(private readonly db: DynamoDBClient, private readonly table: string) {}

  close(): void { /* nothing buffered: every append is a write */ }

  async append(console: string, offset: number, ts: number, data: Buffer, knownEnd?: number): Promise<void> {
    // Another writer may store a chunk at the same offset meanwhile, cut shorter or longer: go
    // round until what is stored reaches past this chunk's end. When the caller just read the end
    // (`knownEnd`), the first try goes without reading it again: one query less per live message.
    for (let attempt = 0; ; attempt++) {
      const end = !attempt && knownEnd !== undefined ? knownEnd : await this.end(console);
      if (offset + data.length <= end) break; // all of it is stored already
      const part = offset < end ? data.subarray(end - offset) : data;
      const at = Math.max(offset, end);
      try {
        await this.db.send(new PutItemCommand({
          TableName: this.table,
          Item: { pk: hotPk(console), sk: S(p16(at)), data: { B: part }, ts: N(ts), len: N(part.length) },
          ConditionExpression: 'attribute_not_exists(sk)',
        }));
        break;
      } catch (e) {
        if (!isConditionFailure(e) || attempt >= 20) throw e;
      }
    }
    if (!this.marked.has(console)) {
      await this.db.send(new PutItemCommand({ TableName: this.table, Item: { pk: S('hot-consoles'), sk: S(console) } }));
      this.marked.add(console);
    }
  }

  async fill(console: string, offset: number, ts: number, data: Buffer): Promise<{ offset: number; data: Buffer }[]> {
    const to = offset + data.length;
    const holes: [number, number][] = [];
    let pos = offset;
    for await (const it of this.items(console, { from: Math.max(0, offset - LOOKBACK), to, meta: true })) {
      if (it.offset > pos) holes.push([pos, Math.min(it.offset, to)]);
      pos = Math.max(pos, it.offset + it.data.length);
      if (pos >= to) break;
    }
    if (pos < to) holes.push([pos, to]);
    const out: { offset: number; data: Buffer }[] = [];
    for (const [a, b] of holes) {
      const part = data.subarray(a - offset, b - offset);
      try {
        await this.db.send(new PutItemCommand({
          TableName: this.table,
          Item: { pk: hotPk(console), sk: S(p16(a)), data: { B: part }, ts: N(ts), len: N(part.length) },
          ConditionExpression: 'attribute_not_exists(sk)',
        }));
        out.push({ offset: a, data: part });
      } catch (e) {
        if (!isConditionFailure(e)) throw e; // another Lambda stored this chunk just now
      }
    }
    return out;
  }

  async end(console: string): Promise<number> {
    // The last few chunks by offset: with overlapping chunks the furthest end may not be the last's.
    const r = await this.db.send(new QueryCommand({
      TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': hotPk(console) },
      ScanIndexForward: false, Limit: 4, ConsistentRead: true, ProjectionExpression: 'sk, len',
    }));
    return Math.max(0, ...(r.Items ?? []).map((it) => Number(it.sk!.S) + Number(it.len!.N)));
  }

  async runs(console: string): Promise<{ start: number; end: number }[]> {
    const out: { start: number; end: number }[] = [];
    for await (const it of this.items(console, { meta: true })) {
      const last = out.at(-1);
      const end = it.offset + it.data.length;
      if (last && it.offset <= last.end) last.end = Math.max(last.end, end);
      else out.push({ start: it.offset, end });
    }
    return out;
  }

  async read(console: string, from: number, to: number): Promise<{ offset: number; ts: number; data: Buffer }[]> {
    const out: Item[] = [];
    let pos = from;
    for await (const it of this.items(console, { from: Math.max(0, from - LOOKBACK), to })) {
      const start = Math.max(it.offset, pos);
      const end = Math.min(it.offset + it.data.length, to);
      if (end <= start) continue;
      out.push({ offset: start, ts: it.ts, data: it.data.subarray(start - it.offset, end - it.offset) });
      pos = end;
    }
    return out;
  }

  async offsetAt(console: string, time: number): Promise<number | undefined> {
    for await (const it of this.items(console, {})) if (it.ts >= time) return it.offset;
    return undefined;
  }

  async trim(console: string, below: number): Promise<void> {
    const dead: string[] = [];
    for await (const it of this.items(console, { to: below, meta: true })) if (it.offset + it.data.length <= below) dead.push(p16(it.offset));
    for (let i = 0; i < dead.length; i += 25) {
      let req: Record<string, { DeleteRequest: { Key: Record<string, AttributeValue> } }[]> | undefined = {
        [this.table]: dead.slice(i, i + 25).map((sk) => ({ DeleteRequest: { Key: { pk: hotPk(console), sk: S(sk) } } })),
      };
      // DynamoDB may leave some undone under load: send those again.
      for (let attempt = 0; req && Object.keys(req).length && attempt < 10; attempt++) {
        const r = await this.db.send(new BatchWriteItemCommand({ RequestItems: req }));
        req = r.UnprocessedItems as typeof req;
        if (req && Object.keys(req).length) await new Promise((res) => setTimeout(res, 50 * 2 ** attempt));
      }
    }
  }

  async indexVersion(console: string): Promise<number> {
    const r = await this.db.send(new GetItemCommand({ TableName: this.table, Key: { pk: S('segidx'), sk: S(console) }, ConsistentRead: true, ProjectionExpression: 'v' }));
    return Number(r.Item?.v?.N ?? 0);
  }

  async indexChanged(console: string): Promise<number> {
    const r = await this.db.send(new UpdateItemCommand({
      TableName: this.table, Key: { pk: S('segidx'), sk: S(console) }, UpdateExpression: 'ADD v :one', ExpressionAttributeValues: { ':one': N(1) },
      ReturnValues: 'UPDATED_NEW',
    }));
    return Number(r.Attributes?.v?.N ?? 0);
  }

  async consoles(): Promise<string[]> {
    const out: string[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const r = await this.db.send(new QueryCommand({
        TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S('hot-consoles') }, ExclusiveStartKey: start,
      }));
      for (const it of r.Items ?? []) out.push(it.sk!.S!);
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /** Chunks in offset order, optionally those starting in [from, to); `meta` skips the bytes
   *  (data is then a zero-filled stand-in of the right length). */
  private async *items(console: string, o: { from?: number; to?: number; meta?: boolean }): AsyncGenerator<Item> {
    const values: Record<string, AttributeValue> = { ':pk': hotPk(console) };
    let cond = 'pk = :pk';
    if (o.from !== undefined || o.to !== undefined) {
      cond += ' AND sk BETWEEN :a AND :b';
      values[':a'] = S(p16(o.from ?? 0));
      values[':b'] = S(p16(Math.max(0, (o.to ?? 1e15) - 1)));
    }
    let start: Record<string, AttributeValue> | undefined;
    do {
      const q: QueryCommandInput = {
        TableName: this.table, KeyConditionExpression: cond, ExpressionAttributeValues: values, ConsistentRead: true, ExclusiveStartKey: start,
        ...(o.meta ? { ProjectionExpression: 'sk, ts, len' } : {}),
      };
      const r = await this.db.send(new QueryCommand(q));
      for (const it of r.Items ?? []) {
        const len = Number(it.len!.N);
        yield { offset: Number(it.sk!.S), ts: Number(it.ts!.N), data: o.meta ? Buffer.alloc(len) : Buffer.from(it.data!.B!) };
      }
      start = r.LastEvaluatedKey;
    } while (start);
  }
}
