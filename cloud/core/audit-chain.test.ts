// The chain logic on its own: the canonical form the hash covers, and appendChained against an
// in-memory backend whose writes interleave or stop at any step (a crash), with records added by
// other hands (audit-walker.test.ts: what verify makes of each state).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendChained, canonical, chained, chainOptions, GENESIS, headOf, recordHash, sameHead, UnprovenRecord, type ChainBackend } from './audit-chain.ts';
import { ChainWalker, verifyLine } from './audit-walker.ts';
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

/** A store whose every operation yields, so concurrent appends interleave at each step. `keepRec`:
 *  announcements keep the record (several writers, as on DynamoDB) or only seq and hash (fs). */
function memory(keepRec = true): ChainBackend & { recs: Map<number, AuditRecord>; head?: AuditHead; fail?: (step: string) => void } {
  const tick = () => new Promise((r) => setImmediate(r));
  const m: ChainBackend & { recs: Map<number, AuditRecord>; head?: AuditHead; fail?: (step: string) => void } = {
    recs: new Map(),
    heads: {
      get: async () => { await tick(); return m.head && structuredClone(m.head); },
      advance: async (_c, from, to) => {
        await tick();
        m.fail?.(to.pending ? 'announce' : 'move');
        if (!sameHead(m.head, from)) return false;
        m.head = structuredClone(to);
        if (!keepRec && m.head.pending) delete m.head.pending.rec;
        return true;
      },
    },
    create: async (r) => { await tick(); m.fail?.('create'); if (m.recs.has(r.seq!)) return false; m.recs.set(r.seq!, r); return true; },
    at: async (_c, seq) => { await tick(); return m.recs.get(seq); },
    anyStored: async () => { await tick(); return m.recs.size > 0; },
  };
  return m;
}

const rec = (i: number): AuditRecord => ({ time: 1000 + i, console: 'c', type: 'input', offset: i });
const walk = (m: ReturnType<typeof memory>) => {
  const w = new ChainWalker('c');
  if (m.head) w.watch(m.head.seq);
  for (const s of [...m.recs.keys()].sort((a, b) => a - b)) w.push({ rec: m.recs.get(s)! });
  return w.finish(m.head);
};

test('appendChained: 30 interleaved appends get seq 1..33 (seals at 10, 20, 30), and the walker finds the chain intact', async () => {
  const m = memory();
  await Promise.all(Array.from({ length: 30 }, (_, i) => appendChained(m, { time: i, console: 'c', type: 'input', offset: i }, { sealEvery: 10, maxAttempts: 200 })));
  assert.deepEqual([...m.recs.keys()].sort((a, b) => a - b), Array.from({ length: 33 }, (_, i) => i + 1));
  assert.deepEqual([m.head?.seq, m.head?.pending], [33, undefined]);
  const r = walk(m);
  assert.deepEqual({ ok: r.ok, records: r.records, seals: r.seals, state: r.headState }, { ok: true, records: 33, seals: 3, state: 'matches' });
  assert.match(verifyLine(r), /^c: ok, 33 records \(seq 1\.\.33, 3 seals\), head 33 [0-9a-f]{12}$/);
});

test('appendChained: the head announces each record before it is written, and moves to it after', async () => {
  const m = memory();
  const seen: string[] = [];
  m.fail = (step) => { seen.push(`${step}:${m.head?.seq ?? '-'}/${m.head?.pending?.seq ?? '-'}`); };
  await appendChained(m, rec(0));
  await appendChained(m, rec(1));
  assert.deepEqual(seen, ['announce:-/-', 'create:0/1', 'move:0/1', 'announce:1/-', 'create:1/2', 'move:1/2']);
});

test('appendChained stopped at each step (a crash): the chain verifies, and the next append goes on from it', async () => {
  for (const keepRec of [false, true]) {
    for (const step of ['announce', 'create', 'move']) {
      const m = memory(keepRec);
      for (let i = 0; i < 3; i++) await appendChained(m, rec(i));
      m.fail = (s) => { if (s === step) throw new Error(`killed at ${s}`); };
      await assert.rejects(appendChained(m, rec(3)), new RegExp(`killed at ${step}`));
      m.fail = undefined;
      const v = walk(m);
      assert.ok(v.ok, `${step}/${keepRec}: ${JSON.stringify(v)}`);
      assert.equal(v.headState, { announce: 'matches', create: 'interrupted', move: 'lags' }[step], step);
      if (step === 'create') assert.match(v.note ?? '', /announces seq 4 .* never stored: .*did not go ahead/);
      if (step === 'move') assert.match(v.note ?? '', /announces the last record, seq 4, and was not moved to it yet/);
      await appendChained(m, rec(9));
      const types = [...m.recs.values()].map((r) => r.offset);
      // Stopped after its record: it stays (the head announced it). Stopped before: one writer
      // reuses its seq; with the record in the announcement, the next writer stores it for it.
      const want = step === 'move' || (step === 'create' && keepRec) ? [0, 1, 2, 3, 9] : [0, 1, 2, 9];
      assert.deepEqual(types, want, `${step}/${keepRec}`);
      const after = walk(m);
      assert.ok(after.ok && !after.note && after.headState === 'matches', JSON.stringify(after));
    }
  }
});

test('appendChained never adopts a record the head does not prove: a record added after the head fails the append, nothing is written', async () => {
  const m = memory();
  for (let i = 0; i < 3; i++) await appendChained(m, rec(i));
  const forged = chained({ time: 5000, console: 'c', type: 'input', user: 'mallory', data: 'cm0gLXJmIC8K' }, m.head);
  m.recs.set(forged.seq, forged);
  const head = structuredClone(m.head);
  await assert.rejects(appendChained(m, rec(3)), (e: Error) => e instanceof UnprovenRecord && /seq 4 already holds a record that the chain's head \(seq 3\) does not prove/.test(e.message));
  assert.deepEqual(m.head, head, 'the announcement was withdrawn; the head still proves seq 3');
  assert.deepEqual([...m.recs.keys()], [1, 2, 3, 4]);
  const v = walk(m);
  assert.deepEqual([v.ok, v.headState, v.broken?.seq, v.broken?.problem], [false, 'added', 4, 'head mismatch']);
  assert.match(v.broken!.detail, /seq 4 lies beyond the head \(seq 3\) and the head does not prove it: added outside cloudcons/);

  // A record at the seq the head announces, but not the announced one: refused as well.
  const n = memory(false);
  for (let i = 0; i < 2; i++) await appendChained(n, rec(i));
  n.fail = (s) => { if (s === 'create') throw new Error('killed'); };
  await assert.rejects(appendChained(n, rec(2)));
  n.fail = undefined;
  n.recs.set(3, chained({ time: 6000, console: 'c', type: 'input', user: 'mallory' }, headOf(n.recs.get(2)!)));
  await assert.rejects(appendChained(n, rec(3)), UnprovenRecord);
  assert.equal(walk(n).headState, 'replaced');

  // No head at all while records are stored (the head was removed): nothing is chained over them.
  const o = memory();
  for (let i = 0; i < 2; i++) await appendChained(o, rec(i));
  o.head = undefined;
  await assert.rejects(appendChained(o, rec(2)), /no chain head is stored, but records are: the head was lost or removed/);
  assert.deepEqual([o.head, o.recs.size], [undefined, 2]);
});

test('appendChained with `later`: resolves once the record is stored, and hands over the head\'s move', async () => {
  const m = memory();
  let move: Promise<unknown> | undefined;
  const r = await appendChained(m, rec(0), undefined, (p) => { move = p; });
  assert.ok(m.recs.has(1) && move);
  assert.equal(m.head?.pending?.seq, 1, 'announced, not moved yet');
  await move;
  assert.deepEqual(m.head, headOf(r));
});
