// The audit hash chain's cost (cloud/core/audit-chain.ts): append latency with the chain on the
// filesystem store and on DynamoDB (dynalite on loopback: read the head, announce the record in
// it, put the record before append() resolves and the input goes out, then move the head; against
// one plain PutItem), the requests each takes, appends of one console racing from several
// writers, and verify speed.
//   node --import tsx bench/audit-chain.ts            (~20 s; N_FS, N_DYN, N_VERIFY to change sizes)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { FsAuditStore, verifyFsAudit } from '../cloud/adapters/fs/audit-store.ts';
import { DynamoAuditStore } from '../cloud/adapters/aws/dynamo-audit-store.ts';
import { N, S } from '../cloud/adapters/aws/dynamo-table.ts';
import type { AuditRecord } from '../cloud/core/ports.ts';
import { closeAwsPeers, freshStateTable } from '../test/aws-peers.ts';

const N_FS = Number(process.env.N_FS ?? 5000), N_DYN = Number(process.env.N_DYN ?? 500), N_VERIFY = Number(process.env.N_VERIFY ?? 100_000);
const rec = (i: number, console = 'web01'): AuditRecord => ({ time: Date.now(), console, type: 'input', user: 'alice', session: 's1', fence: 1, data: Buffer.from(`ls -l /var/log ${i}\r`).toString('base64'), offset: i * 40 });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const ms = (x: number) => `${x.toFixed(3)} ms`;
async function timed(n: number, f: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); await f(i); out.push(performance.now() - t); }
  return out;
}
const line = (what: string, xs: number[]) => console.log(`${what.padEnd(44)} p50 ${ms(pct(xs, 0.5))}  p99 ${ms(pct(xs, 0.99))}  (n=${xs.length})`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-audit-'));
try {
  // ---------------------------------------------------------------------------- filesystem
  const fd = fs.openSync(path.join(dir, 'plain.jsonl'), 'a');
  line('fs: plain line append (no chain)', await timed(N_FS, async (i) => { fs.writeSync(fd, JSON.stringify(rec(i)) + '\n'); }));
  fs.closeSync(fd);
  const store = new FsAuditStore(path.join(dir, 'data'));
  line('fs: chained append (record + head file)', await timed(N_FS, (i) => store.append(rec(i))));
  store.close();

  // Verify speed on a big chain (appended through the store; sealEvery default 1000).
  const big = new FsAuditStore(path.join(dir, 'big'));
  for (let i = 0; i < N_VERIFY; i++) await big.append(rec(i, 'big01'));
  big.close();
  let t = performance.now();
  const v = await verifyFsAudit(path.join(dir, 'big'), 'big01');
  let dt = performance.now() - t;
  console.log(`fs: verify ${v.records} records (${(fs.statSync(path.join(dir, 'big', 'audit', 'big01.jsonl')).size / 1e6).toFixed(1)} MB), ok=${v.ok}: ${dt.toFixed(0)} ms = ${Math.round(v.records / dt * 1000)} records/s`);

  // ------------------------------------------------------------------------------- dynalite
  const { client, table } = await freshStateTable();
  line('dynalite: plain PutItem (no chain)', await timed(N_DYN, async (i) => {
    await client.send(new PutItemCommand({ TableName: table, Item: { pk: S('plain#web01'), sk: S(String(i).padStart(15, '0')), rec: S(JSON.stringify(rec(i))), time: N(Date.now()) } }));
  }));
  // Requests counted by kind: a head write without an announced record is the head's move, which
  // runs alongside the forwarded input (DynamoAuditStore.settle awaits it).
  const kinds = new Map<string, number>();
  client.middlewareStack.add((next) => async (args) => {
    const input = args.input as { Item?: Record<string, { S?: string }> };
    const k = input.Item?.pk?.S?.startsWith('audithead#') ? (input.Item.pseq ? 'announce' : 'move') : (args as unknown as { commandName?: string }).commandName ?? 'other';
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
    return next(args);
  }, { step: 'initialize', name: 'countRequests' });
  const dyn = new DynamoAuditStore(client, table);
  const durable: number[] = [], whole: number[] = [];
  for (let i = 0; i < N_DYN; i++) {
    const t = performance.now();
    await dyn.append(rec(i));
    durable.push(performance.now() - t);
    await dyn.settle();
    whole.push(performance.now() - t);
  }
  line('dynalite: chained append, until durable (input out)', durable);
  line('dynalite: chained append and the head\'s move', whole);
  const total = [...kinds.values()].reduce((a, b) => a + b, 0);
  console.log(`  -> DynamoDB requests per append: ${((total - (kinds.get('move') ?? 0)) / N_DYN).toFixed(2)} before the input goes out (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}), ${(total / N_DYN).toFixed(2)} in all`);
  for (const writers of [2, 4]) {
    const ws = Array.from({ length: writers }, () => new DynamoAuditStore(client, table));
    const c = `race${writers}`;
    const lat: number[] = [];
    t = performance.now();
    await Promise.all(ws.map((w, k) => (async () => {
      for (let i = 0; i < N_DYN / writers; i++) { const s = performance.now(); await w.append(rec(i * writers + k, c)); lat.push(performance.now() - s); }
    })()));
    dt = performance.now() - t;
    const r = await dyn.verify(c);
    line(`dynalite: ${writers} writers racing on one console`, lat);
    console.log(`  -> ${Math.round(lat.length / dt * 1000)} appends/s, chain ok=${r.ok}, ${r.records} records`);
  }
  t = performance.now();
  const dv = await dyn.verify('web01');
  dt = performance.now() - t;
  console.log(`dynalite: verify ${dv.records} records, ok=${dv.ok}: ${dt.toFixed(0)} ms = ${Math.round(dv.records / dt * 1000)} records/s`);
} finally {
  await closeAwsPeers();
  fs.rmSync(dir, { recursive: true, force: true });
}
