// Contract suite for KeyStore: the fs store (embedded) and the DynamoDB one run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyStore, SshKeyRecord } from '../../cloud/core/ports.ts';

const key = (n: number, over: Partial<SshKeyRecord> = {}): SshKeyRecord => ({
  type: 'ssh-ed25519', blob: Buffer.from(`key${n}`).toString('base64'), fingerprint: `SHA256:fp${n}`, addedAt: 1000 + n, addedBy: 'alice', ...over,
});

export function keyStoreContract(name: string, make: () => Promise<KeyStore>): void {
  test(`${name}: a user's keys are stored under a version; a write against an old version stores nothing`, async () => {
    const s = await make();
    assert.deepEqual(await s.get('alice'), { keys: [], version: 0 });
    assert.deepEqual(await s.all(), []);
    assert.equal(await s.put('alice', [key(1, { comment: 'alice@laptop' })], 0), true);
    assert.deepEqual(await s.get('alice'), { keys: [key(1, { comment: 'alice@laptop' })], version: 1 });
    // Two writers that both read version 1: exactly one wins.
    const r = await Promise.all([s.put('alice', [key(1), key(2)], 1), s.put('alice', [key(1), key(3)], 1)]);
    assert.deepEqual(r.sort(), [false, true]);
    const now = await s.get('alice');
    assert.equal(now.version, 2);
    assert.equal(now.keys.length, 2);
    assert.equal(await s.put('alice', [], 0), false, 'version 0 is not "whatever is stored"');
    assert.equal(await s.put('bob', [key(9, { addedBy: 'root' })], 0), true);
    assert.equal(await s.put('bob', [key(9, { addedBy: 'root' })], 0), false, 'created once');
    assert.deepEqual((await s.all()).map((u) => [u.user, u.keys.map((k) => k.fingerprint)]).sort(), [['alice', now.keys.map((k) => k.fingerprint)], ['bob', ['SHA256:fp9']]]);
  });

  test(`${name}: a user whose keys were all removed is not in all(); the version goes on counting`, async () => {
    const s = await make();
    await s.put('carol', [key(1), key(2)], 0);
    assert.equal(await s.put('carol', [], 1), true);
    assert.deepEqual(await s.get('carol'), { keys: [], version: 2 });
    assert.deepEqual(await s.all(), []);
    assert.equal(await s.put('carol', [key(4)], 2), true);
    assert.deepEqual((await s.all()).map((u) => u.user), ['carol']);
  });
}
