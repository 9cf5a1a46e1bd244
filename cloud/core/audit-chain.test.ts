// The chain logic on its own: the canonical form the hash covers, appendChained against an
// in-memory backend whose writes interleave, and the walker's wording of what it found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendChained, canonical, chained, ChainWalker, chainOptions, GENESIS, recordHash, verifyLine, type ChainBackend } from './audit-chain.ts';
import type { AuditHead, AuditRecord } from './ports.ts';

test('canonical form: sorted keys at every level, hash and absent fields left out, JSON escapes', () => {
  const a = { type: 'input', time: 5, console: 'c', user: undefined, hash: 'x', data: 'é"\n' } as AuditRecord;
  assert.equal(canonical(a), '{"console":"c","data":"é\\"\\n","time":5,"type":"input"}');
  assert.equal(canonical({ b: { d: 1, c: [2, { f: 1, e: 0 }] }, a: null }), '{"a":null,"b":{"c":[2,{"e":0,"f":1}],"d":1}}');
  assert.equal(recordHash({ time: 5, type: 'input', console: 'c' }), recordHash({ console: 'c', type: 'input', time: 5, hash: 'anything' }));
  const r1 = chained({ time: 1, console: 'c', type: 'x' }, undefined);
  assert.deepEqual([r1.seq, r1.prev, r1.hash], [1, GENESIS, recordHash(r1)]);
  const r2 = chained({ ...r1, type: 'y' }, { seq: 1, hash: r1.hash, time: 1 });
  assert.deepEqual([r2.seq, r2.prev], [2, r1.hash], 'chain fields of the input are replaced');
});

test('options: explicit, else the environment, else the defaults; bad values named', () => {
  assert.deepEqual(chainOptions(), { sealEvery: 1000, maxAttempts: 64 });
  assert.deepEqual(chainOptions({ maxAttempts: 3 }, { CLOUDCONS_AUDIT_SEAL_EVERY: '0', CLOUDCONS_AUDIT_MAX_ATTEMPTS: '9' }), { sealEvery: 0, maxAttempts: 3 });
  assert.throws(() => chainOptions({}, { CLOUDCONS_AUDIT_SEAL_EVERY: '-1' }), /CLOUDCONS_AUDIT_SEAL_EVERY: expected an integer >= 0, got "-1"/);
});

/** A store whose every operation yields, so concurrent appends interleave at each step. */
function memory(): ChainBackend & { recs: Map<number, AuditRecord>; head?: AuditHead } {
  const tick = () => new Promise((r) => setImmediate(r));
  const m: ChainBackend & { recs: Map<number, AuditRecord>; head?: AuditHead } = {
    recs: new Map(),
    heads: {
      get: async () => { await tick(); return m.head; },
      advance: async (_c, from, to) => { await tick(); if ((m.head?.seq ?? 0) !== from) return false; m.head = to; return true; },
    },
    create: async (r) => { await tick(); if (m.recs.has(r.seq!)) return false; m.recs.set(r.seq!, r); return true; },
    at: async (_c, seq) => { await tick(); return m.recs.get(seq); },
  };
  return m;
}

test('appendChained: 30 interleaved appends get seq 1..33 (seals at 10, 20, 30), and the walker finds the chain intact', async () => {
  const m = memory();
  await Promise.all(Array.from({ length: 30 }, (_, i) => appendChained(m, { time: i, console: 'c', type: 'input', offset: i }, { sealEvery: 10, maxAttempts: 200 })));
  assert.deepEqual([...m.recs.keys()].sort((a, b) => a - b), Array.from({ length: 33 }, (_, i) => i + 1));
  assert.equal(m.head?.seq, 33);
  const w = new ChainWalker('c');
  for (let s = 1; s <= 33; s++) w.push({ rec: m.recs.get(s)! });
  const r = w.finish(m.head);
  assert.deepEqual({ ok: r.ok, records: r.records, seals: r.seals }, { ok: true, records: 33, seals: 3 });
  assert.match(verifyLine(r), /^c: ok, 33 records \(seq 1\.\.33, 3 seals\), head 33 [0-9a-f]{12}$/);
});

test('walker: unchained records first are counted; after the chain starts one is a break; records beyond the head are a break', () => {
  const recs: AuditRecord[] = [];
  let head: AuditHead | undefined;
  for (let i = 0; i < 5; i++) { const r = chained({ time: i, console: 'c', type: 't' }, head); recs.push(r); head = { seq: r.seq, hash: r.hash, time: r.time }; }
  const walk = (items: AuditRecord[], h: AuditHead | undefined) => { const w = new ChainWalker('c'); for (const rec of items) w.push({ rec }); return w.finish(h); };
  const old = { time: 0, console: 'c', type: 'old' };
  const ok = walk([old, old, ...recs], head);
  assert.equal(verifyLine(ok), `c: ok, 5 records (seq 1..5, 0 seals), head 5 ${head!.hash.slice(0, 12)}; 2 unchained records before the chain starts`);
  const inside = walk([...recs.slice(0, 2), old, ...recs.slice(2)], head);
  assert.deepEqual([inside.broken?.seq, inside.broken?.problem], [3, 'not chained']);
  const h3 = { seq: 3, hash: recs[2].hash!, time: 2 };
  const beyond = walk(recs, h3);
  assert.deepEqual([beyond.broken?.seq, beyond.broken?.problem], [4, 'head mismatch']);
  assert.match(beyond.broken!.detail, /records 4\.\.5 lie beyond the head/);
  assert.equal(walk(recs.slice(0, 4), h3).note?.includes('lags the last record by one'), true);
  const moving = new ChainWalker('c');
  for (const rec of recs) moving.push({ rec });
  assert.match(moving.finish(h3, { seq: 9, hash: 'f'.repeat(64), time: 9 }).note ?? '', /appended while verifying: the chain was checked up to seq 5/);
  assert.equal(walk([], undefined).ok, true);
  assert.deepEqual([walk([], head).broken?.problem, walk(recs, undefined).broken?.problem], ['head mismatch', 'head mismatch']);
});
