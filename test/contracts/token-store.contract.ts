// The TokenStore contract: secrets only as hashes, verify to the principal, expiry and revocation
// refused with a reason, listing without secrets. Run against every adapter (token-store.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessStore, TokenStore } from '../../cloud/core/ports.ts';

export function tokenStoreContract(name: string, make: () => Promise<TokenStore>): void {
  test(`${name}: tokens verify to their principal; anything else is refused`, async () => {
    const s = await make();
    const alice = await s.create({ kind: 'user', name: 'alice', admin: true });
    const edge = await s.create({ kind: 'relay', name: 'edge1' });
    assert.match(alice.token, /^ccu_/);
    assert.match(edge.token, /^ccr_/);
    assert.deepEqual(await s.verify(alice.token), { kind: 'user', name: 'alice', admin: true, tokenId: alice.id });
    assert.deepEqual(await s.verify(edge.token), { kind: 'relay', name: 'edge1', admin: false, tokenId: edge.id });
    for (const bad of ['', 'ccu_', alice.token + 'x', alice.token.slice(0, -1), 'Bearer ' + alice.token, 'x'.repeat(10_000)]) {
      assert.equal(await s.verify(bad), undefined, JSON.stringify(bad.slice(0, 40)));
    }
  });

  test(`${name}: names are stored in normal form; one that is no user's or relay's is refused and nothing is stored`, async () => {
    const s = await make();
    const dave = await s.create({ kind: 'user', name: 'Dave' });
    assert.equal((await s.verify(dave.token))?.name, 'dave');
    assert.equal((await s.info(dave.id))?.name, 'dave');
    const before = (await s.list()).length;
    for (const bad of ['relay:edge1', '@sre', 'sso:bob', '\u0430lice', 'al\u200bice', '']) {
      await assert.rejects(s.create({ kind: 'user', name: bad }), (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER' && /^name: /.test(e.message), JSON.stringify(bad));
    }
    await assert.rejects(s.create({ kind: 'relay', name: 'relay:edge1' }), /^BadParameter: name: "relay:edge1" holds ":"/);
    assert.equal((await s.list()).length, before);
  });

  test(`${name}: an expired token is refused saying since when; before that it works`, async () => {
    const s = await make();
    const now = Date.now();
    const t = await s.create({ kind: 'user', name: 'bob', expires: now + 60_000 });
    assert.equal((await s.verify(t.token, now + 59_999))?.name, 'bob');
    await assert.rejects(s.verify(t.token, now + 60_000), (e: Error & { code?: string }) => e.code === 'CC_ERR_UNAUTHORIZED' && e.message.includes(`token ${t.id} (user bob) expired at ${new Date(now + 60_000).toISOString()}`));
  });

  test(`${name}: revoke takes effect at once, keeps the first time, and the token stays listed`, async () => {
    const s = await make();
    const a = await s.create({ kind: 'user', name: 'carol' });
    const b = await s.create({ kind: 'relay', name: 'edge2', expires: Date.now() + 3_600_000 });
    const r = await s.revoke(a.id, 'root', 1000);
    assert.deepEqual(r?.revoked, { at: 1000, by: 'root' });
    assert.deepEqual((await s.revoke(a.id, 'other', 2000))?.revoked, { at: 1000, by: 'root' });
    assert.equal(await s.revoke('nosuchid', 'root', 1), undefined);
    assert.deepEqual((await s.info(a.id))?.revoked, { at: 1000, by: 'root' });
    assert.equal((await s.info(b.id))?.name, 'edge2');
    assert.equal(await s.info('nosuchid'), undefined);
    await assert.rejects(s.verify(a.token), /was revoked at 1970-01-01T00:00:01.000Z by root/);
    assert.equal((await s.verify(b.token))?.name, 'edge2', 'other tokens are untouched');
    const list = await s.list();
    const la = list.find((t) => t.id === a.id), lb = list.find((t) => t.id === b.id);
    assert.equal(la?.name, 'carol');
    assert.deepEqual(la?.revoked, { at: 1000, by: 'root' });
    assert.equal(lb?.kind, 'relay');
    assert.ok(lb?.expires && lb.expires > Date.now());
    assert.ok(!JSON.stringify(list).includes(a.token.slice(4)) && !JSON.stringify(list).includes('hash'), 'no secret and no hash in a listing');
    // info says what the listing says (an open connection's token is checked with it).
    assert.deepEqual(await s.info(a.id), la);
    assert.deepEqual(await s.info(b.id), lb);
  });
}

export function accessStoreContract(name: string, make: () => Promise<AccessStore>): void {
  test(`${name}: the rules document is versioned; a change against an old version is refused`, async () => {
    const s = await make();
    assert.deepEqual(await s.get(), { version: 0 });
    assert.equal(await s.put({ default: 'ro' }, 1), false, 'nothing stored yet: version 0');
    assert.equal(await s.put({ default: 'ro' }, 0), true);
    assert.deepEqual(await s.get(), { version: 1, doc: { default: 'ro' } });
    assert.equal(await s.put({ default: 'rw' }, 0), false, 'someone changed it meanwhile');
    assert.equal(await s.put({ default: 'none', rules: [{ who: 'a', allow: 'rw' }] }, 1), true);
    assert.deepEqual(await s.get(), { version: 2, doc: { default: 'none', rules: [{ who: 'a', allow: 'rw' }] } });
  });
}
