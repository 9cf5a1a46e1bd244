// The relay's copy of the cloud's local-access snapshot, over a real file in a real folder: what
// arrives is kept (0600, with the relay's name and when it came), loaded by a new relay process,
// and answers as an AccessSource.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import type { CloudToRelay } from '../../protocol/messages.ts';
import { CLOUD_ACCESS_FILE, CloudAccess } from './cloud-access.ts';
import { combineSources, type AccessSource } from './types.ts';

after(cleanup);

type AccessMsg = Extract<CloudToRelay, { t: 'access' }>;
const blob = (n: number) => Buffer.alloc(51, n);
const fp = (n: number) => `SHA256:${String(n).padStart(43, 'k')}`;
const k = (n: number) => ({ type: 'ssh-ed25519' as const, blob: blob(n).toString('base64'), fingerprint: fp(n) });
const part = (over: Partial<AccessMsg>): AccessMsg => ({ v: 1, t: 'access', id: 's1', part: 1, parts: 1, enabled: true, users: [], ...over });

function logger() {
  const lines: string[] = [];
  return { lines, log: (l: string) => { lines.push(l); } };
}

test('a snapshot in parts is kept on disk (0600, relay name, time) once complete, and a new process loads it and answers from it', () => {
  const dir = tmpDir('cloud-access');
  const l = logger();
  const a = new CloudAccess(dir, l.log);
  a.load('edge1');
  assert.equal(a.lookup('alice', blob(1)), undefined, 'never reached the cloud: nobody');
  assert.equal(a.enabled(), true, 'and local access is not turned off by it');
  assert.equal(a.take(part({ parts: 2, users: [{ user: 'alice', keys: [k(1)], rights: { web01: 'rw' } }] }), 'edge1', 1000), false);
  assert.equal(fs.existsSync(path.join(dir, CLOUD_ACCESS_FILE)), false, 'nothing kept before the last part');
  assert.equal(a.take(part({ part: 2, parts: 2, users: [{ user: 'alice', keys: [k(2)], rights: { db1: 'ro' } }, { user: 'sso:bob', keys: [k(3)], rights: { web01: 'ro' } }] }), 'edge1', 2000), true);
  assert.deepEqual(l.lines.at(-1), 'local access: snapshot from the cloud: 2 users, 3 keys, local access on');
  const file = path.join(dir, CLOUD_ACCESS_FILE);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {
    relay: 'edge1', receivedAt: 2000, id: 's1', enabled: true,
    users: [{ user: 'alice', keys: [k(1), k(2)], rights: { web01: 'rw', db1: 'ro' } }, { user: 'sso:bob', keys: [k(3)], rights: { web01: 'ro' } }],
  });

  // A relay restarted (the cloud away): the same answers from the file.
  const l2 = logger();
  const b = new CloudAccess(dir, l2.log);
  b.load('edge1');
  assert.match(l2.lines[0], /^local access: the cloud's snapshot of 1970-01-01T00:00:02\.000Z loaded \(2 users, 3 keys, local access on\)$/);
  for (const src of [a, b] as AccessSource[]) {
    const p = src.lookup('Alice', blob(2))!;
    assert.deepEqual([p.user, p.fingerprint, p.source, p.right('web01'), p.right('db1'), p.right('other')], ['alice', fp(2), 'cloud', 'rw', 'ro', undefined]);
    assert.equal(src.lookup('alice', blob(3)), undefined, 'bob\'s key is not alice\'s');
    assert.equal(src.lookup('carol', blob(1)), undefined);
    assert.equal(src.lookup('sso:bob', blob(3))?.right('web01'), 'ro');
  }

  // The next snapshot replaces it whole: a key removed, local access turned off.
  b.take(part({ id: 's2', enabled: false, users: [{ user: 'alice', keys: [k(1)], rights: { web01: 'ro' } }] }), 'edge1', 3000);
  assert.equal(b.lookup('alice', blob(2)), undefined);
  assert.equal(b.lookup('alice', blob(1))?.right('web01'), 'ro');
  assert.equal(b.enabled(), false);
  assert.equal(combineSources({ lookup: () => undefined, enabled: () => true }, b).enabled(), false, 'the cloud\'s off closes relay.yaml\'s users too');
  const c = new CloudAccess(dir, () => {});
  c.load('edge1');
  assert.deepEqual([c.enabled(), c.lookup('sso:bob', blob(3)), c.info()], [false, undefined, { receivedAt: 3000, enabled: false, users: 1, keys: 1 }]);
});

test('parts out of order are dropped and the snapshot in use stays; another relay\'s or an unreadable file is not used', () => {
  const dir = tmpDir('cloud-access-bad');
  const l = logger();
  const a = new CloudAccess(dir, l.log);
  a.take(part({ users: [{ user: 'alice', keys: [k(1)], rights: { web01: 'rw' } }] }), 'edge1', 1000);
  assert.equal(a.take(part({ id: 's2', part: 2, parts: 2, users: [] }), 'edge1'), false);
  assert.match(l.lines.at(-1)!, /part 2 of 2 of snapshot s2 ignored: its first part did not come/);
  a.take(part({ id: 's3', part: 1, parts: 3, users: [] }), 'edge1');
  assert.equal(a.take(part({ id: 's3', part: 3, parts: 3, users: [] }), 'edge1'), false, 'a part missing');
  assert.match(l.lines.at(-1)!, /part 3 of 3 of snapshot s3 does not follow part 1 of 3: the snapshot is dropped \(the one in use stays\)/);
  assert.equal(a.take(part({ id: 's3', part: 2, parts: 3, users: [] }), 'edge1'), false, 'dropped: its later parts too');
  assert.equal(a.lookup('alice', blob(1))?.right('web01'), 'rw');
  // Two snapshots sent at once, interleaved: the one started last is taken whole.
  a.take(part({ id: 's4', parts: 2, users: [{ user: 'alice', keys: [k(1)], rights: { old: 'rw' } }] }), 'edge1');
  a.take(part({ id: 's5', parts: 2, users: [{ user: 'alice', keys: [k(1)], rights: { new: 'ro' } }] }), 'edge1');
  assert.equal(a.take(part({ id: 's4', part: 2, parts: 2, users: [] }), 'edge1'), false);
  assert.equal(a.take(part({ id: 's5', part: 2, parts: 2, users: [] }), 'edge1'), true);
  assert.deepEqual([a.lookup('alice', blob(1))?.right('new'), a.lookup('alice', blob(1))?.right('old')], ['ro', undefined]);

  const other = logger();
  const b = new CloudAccess(dir, other.log);
  b.load('edge2');
  assert.match(other.lines[0], /local-access\.json is relay edge1's, not edge2's: not used/);
  assert.equal(b.lookup('alice', blob(1)), undefined);

  fs.writeFileSync(path.join(dir, CLOUD_ACCESS_FILE), '{"relay":"edge1","receivedAt":1,"id":"x","enabled":true,"users":[{"user":"../x","keys":[],"rights":{}}]}');
  const bad = logger();
  const c = new CloudAccess(dir, bad.log);
  c.load('edge1');
  assert.match(bad.lines[0], /local-access\.json does not read .*; the cloud's users cannot sign in here until the cloud sends them again/);
  assert.equal(c.enabled(), true);
});
