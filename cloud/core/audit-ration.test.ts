import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditRation } from './audit-ration.ts';

function budget(perMin: number, burst: number) {
  let now = 1_000_000;
  const notes: { relay: string; type: string; detail: string }[] = [];
  const b = new AuditRation('relay', { perMin, burst }, () => now, async (relay, type, detail) => { notes.push({ relay, type, detail }); });
  return { b, notes, advance: (ms: number) => { now += ms; } };
}

test('a relay gets `burst` records at once, then perMin a minute; what is held back is said once and counted', async () => {
  const { b, notes, advance } = budget(60, 5);
  const admitted: boolean[] = [];
  for (let i = 0; i < 3003; i++) admitted.push(await b.admit('evil', i % 3 ? 'console.flapping' : 'input.dropped'));
  assert.equal(admitted.filter(Boolean).length, 5);
  assert.deepEqual(notes.map((n) => n.type), ['relay.audit.limited'], 'one note when holding back starts, not one per record');
  assert.match(notes[0].detail, /relay evil caused more audit records than it may \(relayAuditBurst 5 at once, relayAuditsPerMin 60\)/);
  // A sustained flood: perMin records a minute get through, and no more notes within the minute.
  for (let s = 0; s < 59; s++) {
    advance(1000); // one record's worth
    assert.equal(await b.admit('evil', 'console.flapping'), true);
    assert.equal(await b.admit('evil', 'console.flapping'), false);
  }
  assert.equal(notes.length, 1);
  advance(1000);
  assert.equal(await b.admit('evil', 'console.flapping'), true, 'a minute after holding back began: admitted, with the count');
  assert.deepEqual(notes.map((n) => n.type), ['relay.audit.limited', 'relay.audit.suppressed']);
  assert.match(notes[1].detail, /^3057 audit records caused by relay evil from .* were not written \(relayAuditsPerMin 60, relayAuditBurst 5\): console\.flapping x2058, input\.dropped x999$/);
  assert.equal(await b.admit('evil', 'x'), false, 'the refill was spent');
  assert.equal(notes.at(-1)!.type, 'relay.audit.limited', 'a new minute of holding back is said again');
});

test('relays have a bucket each; a relay that leaves has its held-back count written', async () => {
  const { b, notes } = budget(60, 2);
  for (let i = 0; i < 4; i++) await b.admit('evil', 'event');
  assert.equal(await b.admit('edge1', 'event'), true, 'another relay is not held back');
  await b.flush('evil');
  assert.deepEqual(notes.map((n) => [n.relay, n.type]), [['evil', 'relay.audit.limited'], ['evil', 'relay.audit.suppressed']]);
  assert.match(notes[1].detail, /^2 audit records .*: event x2$/);
  await b.flush('evil');
  assert.equal(notes.length, 2, 'nothing more to say');
});

test('a quiet relay is back to its full burst', async () => {
  const { b, advance } = budget(600, 3);
  for (let i = 0; i < 3; i++) assert.equal(await b.admit('edge1', 'console.up'), true);
  assert.equal(await b.admit('edge1', 'console.up'), false);
  advance(60_000);
  for (let i = 0; i < 3; i++) assert.equal(await b.admit('edge1', 'console.up'), true);
});

test('users have a ration of their own, worded as theirs; a sweep writes what a flood that stopped held back, and forgets full buckets', async () => {
  let now = 1_000_000;
  const notes: { key: string; type: string; detail: string }[] = [];
  const r = new AuditRation('user', { perMin: 120, burst: 3 }, () => now, async (key, type, detail) => { notes.push({ key, type, detail }); });
  for (let i = 0; i < 10; i++) await r.admit('reader', 'input.denied');
  assert.deepEqual(notes.map((n) => n.type), ['user.audit.limited']);
  assert.match(notes[0].detail, /^user reader caused more audit records than it may \(userAuditBurst 3 at once, userAuditsPerMin 120\)/);
  now += 30_000;
  await r.flushDue();
  assert.equal(notes.length, 1, 'held back for less than a minute: not yet');
  now += 30_000;
  await r.flushDue();
  assert.deepEqual(notes.map((n) => n.type), ['user.audit.limited', 'user.audit.suppressed']);
  assert.match(notes[1].detail, /^7 audit records caused by user reader from .* were not written \(userAuditsPerMin 120, userAuditBurst 3\): input\.denied x7$/);
  await r.flushDue();
  assert.equal(notes.length, 2, 'said once');
  assert.equal(await r.admit('reader', 'auth.signin'), true, 'a full bucket again (forgotten, made anew)');
});
