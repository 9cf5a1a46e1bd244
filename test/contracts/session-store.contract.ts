// Contract suite for SessionStore: the memory store (embedded) and the DynamoDB store run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Session, SessionStore } from '../../cloud/core/ports.ts';

export function sessionStoreContract(name: string, make: () => Promise<SessionStore>): void {
  const sess = (id: string, over: Partial<Session> = {}): Session => ({ id, console: 'web01', user: 'alice', mode: 'spy', since: 1000, conn: `c-${id}`, ...over });

  test(`${name}: put, get, update in place, delete`, async () => {
    const s = await make();
    assert.equal(await s.get('nope'), undefined);
    await s.put(sess('a', { client: 'cli 1.0' }));
    assert.deepEqual(await s.get('a'), sess('a', { client: 'cli 1.0' }));
    await s.put(sess('a', { mode: 'rw', fence: 7 }));
    assert.deepEqual(await s.get('a'), sess('a', { mode: 'rw', fence: 7 }));
    assert.equal((await s.byConsole('web01')).length, 1, 'an update does not duplicate');
    await s.delete('a');
    await s.delete('a');
    assert.equal(await s.get('a'), undefined);
    assert.deepEqual(await s.byConsole('web01'), []);
    assert.deepEqual(await s.byConn('c-a'), []);
  });

  test(`${name}: sessions by console (oldest first) and by connection`, async () => {
    const s = await make();
    await s.put(sess('late', { since: 3000 }));
    await s.put(sess('early', { since: 1000, user: 'bob' }));
    await s.put(sess('other', { console: 'db01', conn: 'shared' }));
    await s.put(sess('mid', { since: 2000, conn: 'shared' }));
    assert.deepEqual((await s.byConsole('web01')).map((x) => x.id), ['early', 'mid', 'late']);
    assert.deepEqual((await s.byConsole('db01')).map((x) => x.user), ['alice']);
    assert.deepEqual((await s.byConn('shared')).map((x) => x.id).sort(), ['mid', 'other']);
    assert.deepEqual(await s.byConsole('nothing'), []);
  });

  test(`${name}: 150 viewers of one console are all listed`, async () => {
    const s = await make();
    await Promise.all(Array.from({ length: 150 }, (_, i) => s.put(sess(`v${i}`, { since: 1000 + i }))));
    const all = await s.byConsole('web01');
    assert.equal(all.length, 150);
    assert.deepEqual(all.map((x) => x.id), Array.from({ length: 150 }, (_, i) => `v${i}`));
  });
}
