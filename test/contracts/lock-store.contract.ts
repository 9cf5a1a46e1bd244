// Contract suite for LockStore: every adapter (memory now, DynamoDB later) runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LockStore } from '../../cloud/core/ports.ts';
import { BadParameter, Conflict } from '../../protocol/errors.ts';
import { MAX_FENCE } from '../../protocol/bounds.ts';

export function lockStoreContract(name: string, make: () => Promise<LockStore>): void {
  const L = 30_000;
  const a = { session: 'sa', user: 'alice' };
  const b = { session: 'sb', user: 'bob' };

  test(`${name}: a never-locked console is free with fence 0`, async () => {
    const s = await make();
    const l = await s.get('c1');
    assert.equal(l.session, undefined);
    assert.equal(l.fence, 0);
  });

  test(`${name}: the first acquirer wins, the second is refused without force`, async () => {
    const s = await make();
    const r1 = await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    assert.ok(r1.ok);
    assert.equal(r1.lock.fence, 1);
    const r2 = await s.acquire('c1', b, { force: false, leaseMs: L, now: 1001 });
    assert.equal(r2.ok, false);
    assert.equal(r2.lock.user, 'alice');
  });

  test(`${name}: force moves the lock, bumps the holder and increments the fence`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    const r = await s.acquire('c1', b, { force: true, leaseMs: L, now: 1001 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 2);
    assert.deepEqual(r.bumped, { session: 'sa', user: 'alice' });
    assert.equal(await s.renew('c1', 'sa', 1, L, 1002), false, 'the bumped holder cannot renew');
    assert.equal(await s.release('c1', 'sa', 1), false, 'the bumped holder cannot release');
    assert.equal((await s.get('c1')).session, 'sb');
  });

  test(`${name}: re-acquiring by the holder renews without a new fence`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    const r = await s.acquire('c1', a, { force: false, leaseMs: L, now: 2000 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 1);
    assert.equal(r.lock.expiresAt, 2000 + L);
  });

  test(`${name}: force by the holder itself re-fences without reporting a bump`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    const r = await s.acquire('c1', a, { force: true, leaseMs: L, now: 1001 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 2);
    assert.equal(r.bumped, undefined);
    assert.equal(await s.renew('c1', 'sa', 1, L, 1002), false, 'the old fence is stale');
    assert.equal(await s.renew('c1', 'sa', 2, L, 1002), true);
  });

  test(`${name}: an expired lease can be taken by anyone, with a new fence`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    const r = await s.acquire('c1', b, { force: false, leaseMs: L, now: 1000 + L + 1 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 2);
    assert.equal(r.bumped, undefined, 'an expired holder is not reported as bumped');
  });

  test(`${name}: taking a lapsed lock reports the lapsed holder (also when it takes it back itself)`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    const r = await s.acquire('c1', b, { force: false, leaseMs: L, now: 1000 + L });
    assert.ok(r.ok);
    assert.deepEqual(r.lapsed, { session: 'sa', user: 'alice', fence: 1, expiresAt: 1000 + L });
    assert.equal(r.bumped, undefined);
    const back = await s.acquire('c1', b, { force: false, leaseMs: L, now: 1000 + 3 * L });
    assert.ok(back.ok);
    assert.equal(back.lock.fence, 3, 'a lapsed holder taking it again gets a new fence');
    assert.deepEqual(back.lapsed, { session: 'sb', user: 'bob', fence: 2, expiresAt: 1000 + 2 * L });
    // A free (released) lock and a live one report no lapsed holder.
    assert.equal(await s.release('c1', 'sb', 3), true);
    const free = await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 + 3 * L + 1 });
    assert.ok(free.ok);
    assert.equal(free.lapsed, undefined);
    const forced = await s.acquire('c1', b, { force: true, leaseMs: L, now: 1000 + 3 * L + 2 });
    assert.ok(forced.ok);
    assert.equal(forced.lapsed, undefined);
    assert.deepEqual(forced.bumped, { session: 'sa', user: 'alice' });
  });

  test(`${name}: a lapsed lease is not renewed (its holder must take the lock again)`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    assert.equal(await s.renew('c1', 'sa', 1, L, 1000 + L - 1), true, 'renewed just before it lapses');
    assert.equal(await s.renew('c1', 'sa', 1, L, 1000 + 2 * L), false, 'lapsed at 1000 + 2L - 1');
    assert.equal((await s.get('c1')).expiresAt, 1000 + 2 * L - 1);
    assert.equal(await s.release('c1', 'sa', 1), true, 'a lapsed holder may still release');
  });

  test(`${name}: renew extends only the current holder's lease`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    assert.equal(await s.renew('c1', 'sa', 1, L, 20_000), true);
    assert.equal((await s.get('c1')).expiresAt, 20_000 + L);
    assert.equal(await s.renew('c1', 'sb', 1, L, 20_000), false);
    assert.equal(await s.renew('c1', 'sa', 7, L, 20_000), false, 'wrong fence');
  });

  test(`${name}: release frees the lock, keeps the fence, and repeating it is safe`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    assert.equal(await s.release('c1', 'sa', 1), true);
    assert.equal(await s.release('c1', 'sa', 1), false);
    const l = await s.get('c1');
    assert.equal(l.session, undefined);
    assert.equal(l.fence, 1);
    const r = await s.acquire('c1', b, { force: false, leaseMs: L, now: 1001 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 2);
  });

  test(`${name}: seedFence never lowers and makes the next fence higher`, async () => {
    const s = await make();
    await s.seedFence('c1', 41);
    await s.seedFence('c1', 3);
    const r = await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 42);
  });

  test(`${name}: fences stay at or below 2^48: a seed above it is refused, and a lock at it cannot be taken again`, async () => {
    const s = await make();
    await s.seedFence('c1', 5);
    for (const bad of [MAX_FENCE + 1, Number.MAX_SAFE_INTEGER, 2.5, -1]) {
      await assert.rejects(s.seedFence('c1', bad), (e: Error) => e instanceof BadParameter && /fence must be a whole number from 0 to 281474976710656 \(2\^48\)/.test(e.message), `seed ${bad}`);
    }
    const r = await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 6, 'the refused seeds changed nothing');
    await s.seedFence('c2', MAX_FENCE);
    await assert.rejects(s.acquire('c2', a, { force: false, leaseMs: L, now: 1000 }), (e: Error) => e instanceof Conflict && /2\^48/.test(e.message));
    assert.equal((await s.get('c2')).fence, MAX_FENCE);
  });

  test(`${name}: consoles are independent`, async () => {
    const s = await make();
    await s.acquire('c1', a, { force: false, leaseMs: L, now: 1000 });
    const r = await s.acquire('c2', b, { force: false, leaseMs: L, now: 1000 });
    assert.ok(r.ok);
    assert.equal(r.lock.fence, 1);
  });

  test(`${name}: of 50 concurrent acquirers exactly one wins; forced fences strictly increase`, async () => {
    const s = await make();
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => s.acquire('race', { session: `s${i}`, user: `u${i}` }, { force: false, leaseMs: L, now: 1000 })));
    assert.equal(rs.filter((r) => r.ok).length, 1);
    const forced = await Promise.all(Array.from({ length: 50 }, (_, i) => s.acquire('race', { session: `f${i}`, user: `u${i}` }, { force: true, leaseMs: L, now: 1001 })));
    const fences = forced.map((r) => r.lock.fence).sort((x, y) => x - y);
    assert.equal(new Set(fences).size, 50);
    assert.equal(fences[0], 2);
  });
}
