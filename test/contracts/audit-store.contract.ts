// Contract suite for AuditStore: the fs store (embedded) and the DynamoDB one run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord, AuditStore } from '../../cloud/core/ports.ts';

export function auditStoreContract(name: string, make: () => Promise<AuditStore>): void {
  const rec = (time: number, over: Partial<AuditRecord> = {}): AuditRecord => ({ time, console: 'web01', type: 'input', user: 'alice', session: 's1', fence: 3, data: Buffer.from(`k${time}`).toString('base64'), offset: time, ...over });

  test(`${name}: records come back in order, whole, per console`, async () => {
    const a = await make();
    assert.deepEqual(await a.list('web01'), []);
    const { data: _none, ...attach } = rec(1000, { type: 'session.attach' });
    const recs = [attach, rec(1001), rec(1001, { data: Buffer.from('same ms').toString('base64') }), rec(1002, { type: 'lock.force', detail: 'bob forced' })];
    for (const r of recs) await a.append(r);
    await a.append(rec(1001, { console: 'db01', user: 'bob' }));
    assert.deepEqual(await a.list('web01'), recs);
    assert.deepEqual((await a.list('db01')).map((r) => r.user), ['bob']);
  });

  test(`${name}: limit gives the newest N (oldest first), since the ones at or after a time`, async () => {
    const a = await make();
    for (let i = 0; i < 30; i++) await a.append(rec(2000 + i * 10));
    assert.deepEqual((await a.list('web01', { limit: 3 })).map((r) => r.time), [2270, 2280, 2290]);
    assert.deepEqual((await a.list('web01', { since: 2265 })).map((r) => r.time), [2270, 2280, 2290]);
    assert.deepEqual((await a.list('web01', { since: 2200, limit: 2 })).map((r) => r.time), [2280, 2290]);
    assert.equal((await a.list('web01', { limit: 1000 })).length, 30);
  });

  test(`${name}: 600 records (1.2 MB) of one console, appended back to back, all listed in order`, async () => {
    const a = await make();
    for (let i = 0; i < 600; i++) await a.append(rec(5000, { offset: i, data: Buffer.alloc(1500, i % 256).toString('base64') })); // same ms: order by append; >1 MB: pages
    const got = await a.list('web01');
    assert.deepEqual(got.map((r) => r.offset), Array.from({ length: 600 }, (_, i) => i));
  });
}
