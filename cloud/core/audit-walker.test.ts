// What verify makes of a chain and its head: each way the end can relate to the head (the head
// announcing a pending append included), and the wording of what it found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chained, headOf, recordHash, UnreadableHead } from './audit-chain.ts';
import { ChainWalker, verifyLine, type HeadRead } from './audit-walker.ts';
import type { AuditHead, AuditRecord } from './ports.ts';

function chain(n: number): AuditRecord[] {
  const recs: AuditRecord[] = [];
  let head: AuditHead | undefined;
  for (let i = 0; i < n; i++) { const r = chained({ time: i, console: 'c', type: 't' }, head); recs.push(r); head = headOf(r); }
  return recs;
}
const walk = (items: AuditRecord[], h: HeadRead, after?: HeadRead) => {
  const w = new ChainWalker('c');
  if (h && !(h instanceof Error)) w.watch(h.seq);
  for (const rec of items) w.push({ rec });
  return w.finish(h, after);
};
const announce = (head: AuditHead, r: AuditRecord): AuditHead => ({ ...head, pending: { seq: r.seq!, hash: r.hash!, time: r.time } });

test('walker: unchained records first are counted; after the chain starts one is a break; appends during the walk', () => {
  const recs = chain(5);
  const head = headOf(recs[4]);
  const old = { time: 0, console: 'c', type: 'old' };
  const ok = walk([old, old, ...recs], head);
  assert.equal(verifyLine(ok), `c: ok, 5 records (seq 1..5, 0 seals), head 5 ${head.hash.slice(0, 12)}; 2 unchained records before the chain starts`);
  const inside = walk([...recs.slice(0, 2), old, ...recs.slice(2)], head);
  assert.deepEqual([inside.broken?.seq, inside.broken?.problem], [3, 'not chained']);
  assert.match(walk(recs, headOf(recs[2]), { seq: 9, hash: 'f'.repeat(64), time: 9 }).note ?? '', /appended while verifying: the chain was checked up to seq 5/);
  assert.equal(walk([], undefined).ok, true);
});

test('walker: the end against the head: matches, lags (announced), interrupted, cut, replaced, added, missing, unreadable', () => {
  const recs = chain(5);
  const h3 = headOf(recs[2]), h4 = headOf(recs[3]), h5 = headOf(recs[4]);
  const state = (items: AuditRecord[], h: HeadRead) => { const v = walk(items, h); return [v.ok, v.headState, v.broken?.seq, v.broken?.problem]; };

  assert.deepEqual(state(recs, h5), [true, 'matches', undefined, undefined]);
  // The head announces seq 5 and seq 5 is stored: an append that stopped before moving the head.
  const lag = walk(recs, announce(h4, recs[4]));
  assert.deepEqual([lag.ok, lag.headState], [true, 'lags']);
  assert.match(lag.note!, /the head announces the last record, seq 5, and was not moved to it yet/);
  // The head announces seq 5 and nothing is stored there: that append never went on.
  const interrupted = walk(recs.slice(0, 4), announce(h4, recs[4]));
  assert.deepEqual([interrupted.ok, interrupted.headState], [true, 'interrupted']);
  assert.match(interrupted.note!, /announces seq 5 \(.*\), which was never stored: an append stopped before writing its record, so what it described did not go ahead/);

  assert.deepEqual(state(recs.slice(0, 3), h5), [false, 'cut', 4, 'head mismatch']);
  assert.match(walk(recs.slice(0, 3), h5).broken!.detail, /ends at seq 3 .* head says seq 5 .*2 record\(s\) cut off the end/);
  assert.deepEqual(state([], h5), [false, 'cut', 1, 'head mismatch']);

  // Seq 5 rewritten with a fresh, valid hash: the head's hash is not its hash.
  const forged5 = chained({ time: 4, console: 'c', type: 't', user: 'mallory' }, h4);
  assert.deepEqual(state([...recs.slice(0, 4), forged5], h5), [false, 'replaced', 5, 'head mismatch']);
  assert.match(walk([...recs.slice(0, 4), forged5], h5).broken!.detail, /the end of the chain was replaced/);
  // ... and one more added after it: still a replacement (the head's seq does not hash to it).
  const forged6 = chained({ time: 5, console: 'c', type: 't' }, headOf(forged5));
  assert.deepEqual(state([...recs.slice(0, 4), forged5, forged6], h5), [false, 'replaced', 5, 'head mismatch']);
  // An announced seq 5 whose stored record is another one.
  assert.deepEqual(state([...recs.slice(0, 4), forged5], announce(h4, recs[4])), [false, 'replaced', 5, 'head mismatch']);

  // Records beyond the head that it does not announce: added.
  assert.deepEqual(state(recs, h3), [false, 'added', 4, 'head mismatch']);
  assert.match(walk(recs, h3).broken!.detail, /seqs 4\.\.5 lie beyond the head \(seq 3\) and the head does not prove them: added outside cloudcons/);
  // One beyond a head that announces another: added too (the announcement proves only its own).
  const other5 = chained({ time: 4, console: 'c', type: 'x' }, h4);
  const added = walk(recs, announce(h3, chained({ time: 3, console: 'c', type: 'y' }, h3)));
  assert.deepEqual([added.headState, added.broken?.seq], ['added', 4]);
  assert.notEqual(other5.hash, recs[4].hash);

  assert.deepEqual(state(recs, undefined), [false, 'missing', 5, 'head mismatch']);
  const unreadable = walk(recs, new UnreadableHead('audit-heads/c.json', 'not JSON: "{\\"seq\\":5,"'));
  assert.deepEqual([unreadable.ok, unreadable.headState, unreadable.broken?.seq, unreadable.broken?.problem], [false, 'unreadable', 5, 'unreadable head']);
  assert.match(verifyLine(unreadable), /^c: BROKEN at seq 5 \(.*\): unreadable head: the audit chain head audit-heads\/c\.json is unreadable: not JSON/);
  // A broken record comes first, whatever the head.
  const edited = { ...recs[1], user: 'x' };
  assert.deepEqual(state([recs[0], edited, ...recs.slice(2)], h3), [false, undefined, 2, 'hash mismatch']);
  assert.equal(recordHash(edited) === edited.hash, false);
});
