import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from '../../protocol/codec.ts';
import { ACCESS_LIMITS, cloudToRelay, type AccessUser } from '../../protocol/messages.ts';
import { parseAccess } from './acl.ts';
import { accessFrameBytes, accessParts, rightsOf } from './local-access.ts';

const fp = (i: number) => `SHA256:${String(i).padStart(43, 'A')}`;
const key = (i: number) => ({ type: 'ssh-rsa' as const, blob: Buffer.alloc(1000, i).toString('base64'), fingerprint: fp(i) });

test('a snapshot too big for one frame is split into parts that each fit one, and add up to what was split', () => {
  const users: AccessUser[] = [];
  for (let u = 0; u < 40; u++) {
    const rights: Record<string, 'rw' | 'ro'> = {};
    for (let c = 0; c < (u === 3 ? 3000 : 50); c++) rights[`console-${String(c).padStart(5, '0')}`] = c % 2 ? 'rw' : 'ro';
    users.push({ user: `user${u}`, keys: Array.from({ length: u === 5 ? 30 : 2 }, (_, i) => key(u * 100 + i)), rights });
  }
  const parts = accessParts(users);
  assert.ok(parts.length > 5, `${parts.length} parts`);
  const back = new Map<string, AccessUser>();
  parts.forEach((p, i) => {
    const msg = { t: 'access' as const, id: 'x', part: i + 1, parts: parts.length, enabled: true, users: p };
    assert.ok(accessFrameBytes(msg) <= ACCESS_LIMITS.partBytes + 200, `part ${i + 1}: ${accessFrameBytes(msg)} bytes`);
    const d = decode(cloudToRelay, JSON.stringify({ v: 1, ...msg }));
    assert.ok(d.ok, d.ok ? '' : d.message);
    for (const e of p) {
      const u = back.get(e.user) ?? { user: e.user, keys: [], rights: {} };
      u.keys.push(...e.keys);
      Object.assign(u.rights, e.rights);
      back.set(e.user, u);
    }
  });
  assert.deepEqual([...back.values()], users);
  assert.deepEqual(accessParts([]), [[]], 'nobody: one empty part');
});

test('rights in a snapshot: rw needs attach, force and break; ro spy; no rules: every user rw everywhere', () => {
  const doc = parseAccess({
    groups: { ops: ['alice'] },
    admins: ['root'],
    rules: [
      { consoles: 'web*', who: '@ops', allow: 'rw' },
      { consoles: 'db*', who: 'alice', allow: 'ro' },
      { consoles: 'web2', who: 'alice', deny: 'force' },
      { consoles: 'bmc*', who: 'alice', allow: 'audit' },
    ],
  });
  const consoles = ['bmc1', 'db1', 'web1', 'web2', 'x1'];
  assert.deepEqual(rightsOf(doc, { name: 'alice' }, consoles), { db1: 'ro', web1: 'rw', web2: 'ro' });
  assert.deepEqual(rightsOf(doc, { name: 'bob' }, consoles), {});
  assert.deepEqual(rightsOf(doc, { name: 'root' }, consoles), Object.fromEntries(consoles.map((c) => [c, 'rw'])));
  assert.deepEqual(rightsOf(doc, { name: 'carol', admin: true }, consoles), Object.fromEntries(consoles.map((c) => [c, 'rw'])));
  assert.deepEqual(rightsOf(undefined, { name: 'bob' }, ['a', 'b']), { a: 'rw', b: 'rw' });
});
