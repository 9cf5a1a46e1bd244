import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from './codec.ts';
import { MAX_FENCE, MAX_TIME_MS } from './bounds.ts';
import { cloudToRelay, relayToCloud } from './messages.ts';

const out = (ts: unknown) => JSON.stringify({ v: 1, t: 'out', c: 'web01', o: 0, ts, d: 'aGk=' });
const info = (over: Record<string, unknown>) => ({ name: 'web01', type: 'serial', state: 'up', since: 1, ...over });
const hello = (over: Record<string, unknown>) => JSON.stringify({ v: 1, t: 'hello', relay: 'edge1', boot: 'b', consoles: [info(over)] });

test('live output times are dates up to 9999-12-31, as in segments: anything else is a bad frame naming the value', () => {
  for (const ts of [0, 1, Date.now(), MAX_TIME_MS]) assert.ok(decode(relayToCloud, out(ts)).ok, `ts ${ts}`);
  for (const [ts, shown] of [[1e300, '1e+300'], [MAX_TIME_MS + 1, String(MAX_TIME_MS + 1)], [-1, '-1'], ['1', '"1"'], [null, 'null']] as const) {
    const r = decode(relayToCloud, out(ts));
    assert.equal(r.ok, false, `accepted ts ${ts}`);
    if (!r.ok) {
      assert.equal(r.code, 'CC_ERR_BAD_FRAME');
      assert.match(r.message, /^bad 'out' message: ts: must be a time in ms since the epoch from 0 to 253402300799999 \(9999-12-31\), got /);
      assert.ok(r.message.endsWith(`got ${shown}`), r.message);
    }
  }
});

test('a console\'s `since` follows the same rule (hello and console messages)', () => {
  assert.ok(decode(relayToCloud, hello({ since: MAX_TIME_MS })).ok);
  for (const frame of [hello({ since: 1e300 }), JSON.stringify({ v: 1, t: 'console', info: info({ since: -5 }) })]) {
    const r = decode(relayToCloud, frame);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.message, /since: must be a time in ms since the epoch/);
  }
});

test('fences are whole numbers up to 2^48, far below 2^53 where +1 stops counting', () => {
  assert.equal(MAX_FENCE, 2 ** 48);
  assert.ok(decode(relayToCloud, hello({ fence: MAX_FENCE })).ok);
  for (const fence of [MAX_FENCE + 1, Number.MAX_SAFE_INTEGER, 1.5, -1]) {
    const r = decode(relayToCloud, hello({ fence }));
    assert.equal(r.ok, false, `accepted fence ${fence}`);
    if (!r.ok) assert.match(r.message, /consoles\.0\.fence: must be a whole number from 0 to 281474976710656 \(2\^48\), got /);
  }
  const rejected = { t: 'rejected', c: 'web01', session: 's', what: 'in', reason: 'x' };
  assert.equal(decode(relayToCloud, encode({ ...rejected, fence: Number.MAX_SAFE_INTEGER })).ok, false);
  assert.equal(decode(cloudToRelay, encode({ t: 'fence', c: 'web01', fence: MAX_FENCE + 1 })).ok, false);
});

test('hello: what the relay runs (version, os, arch) is optional and bounded; `relay` may be left out (the welcome names it)', () => {
  const base = { v: 1, t: 'hello', boot: 'b', consoles: [] };
  const ok = (m: object) => { const r = decode(relayToCloud, JSON.stringify(m)); assert.ok(r.ok, r.ok ? '' : r.message); return r.ok ? r.msg : undefined; };
  assert.deepEqual(ok({ ...base, relay: 'edge1' }), { ...base, relay: 'edge1' }, 'an older relay says none of it');
  assert.equal((ok(base) as { relay?: string }).relay, undefined);
  const full = ok({ ...base, version: '0.1.0+g1a2b-rc.1', os: 'Debian GNU/Linux 12 (bookworm) (Linux 6.1.0)', arch: 'arm64' }) as Record<string, unknown>;
  assert.deepEqual([full.version, full.os, full.arch], ['0.1.0+g1a2b-rc.1', 'Debian GNU/Linux 12 (bookworm) (Linux 6.1.0)', 'arm64']);
  // Text for people arrives with its control characters shown escaped, not refused.
  assert.equal((ok({ ...base, os: 'Linux\x1b[2J' }) as { os: string }).os, 'Linux^[[2J');
  for (const [bad, field] of [[{ version: '' }, 'version'], [{ version: '1.0 beta' }, 'version'], [{ version: 'v'.repeat(65) }, 'version'], [{ version: 1 }, 'version'],
    [{ os: 'x'.repeat(129) }, 'os'], [{ os: ['Linux'] }, 'os'], [{ arch: 'x86/64' }, 'arch'], [{ arch: 'a'.repeat(33) }, 'arch'], [{ arch: '' }, 'arch'],
    [{ relay: '' }, 'relay'], [{ relay: '-edge' }, 'relay']] as const) {
    const r = decode(relayToCloud, JSON.stringify({ ...base, ...bad }));
    assert.equal(r.ok, false, `accepted ${JSON.stringify(bad)}`);
    if (!r.ok) assert.match(r.message, new RegExp(`^bad 'hello' message: ${field}: `), r.message);
  }
});

test('status: the spool backlog in whole bytes and the oldest unsent byte\'s age in whole ms, nothing else', () => {
  const st = (spool: unknown) => decode(relayToCloud, JSON.stringify({ v: 1, t: 'status', spool }));
  assert.ok(st({ bytes: 0 }).ok);
  assert.ok(st({ bytes: 123456, oldestMs: 61_000 }).ok);
  for (const bad of [undefined, {}, { bytes: -1 }, { bytes: 1.5 }, { bytes: '10' }, { bytes: 2 ** 51 }, { bytes: 1, oldestMs: -1 }, { bytes: 1, oldestMs: 0.5 }, { bytes: 1, oldestMs: 1e300 }]) {
    const r = st(bad);
    assert.equal(r.ok, false, `accepted ${JSON.stringify(bad)}`);
    if (!r.ok) assert.match(r.message, /^bad 'status' message: spool/, r.message);
  }
});

test('welcome: the relay\'s name (its token\'s) is a name or absent', () => {
  assert.ok(decode(cloudToRelay, encode({ t: 'welcome', relay: 'edge1', ends: {} })).ok);
  assert.ok(decode(cloudToRelay, encode({ t: 'welcome', ends: {} })).ok);
  assert.equal(decode(cloudToRelay, encode({ t: 'welcome', relay: '../x', ends: {} })).ok, false);
});

test('access (local-access snapshot): a well-formed part is taken; malformed ones are bad frames naming the field', () => {
  const fp = `SHA256:${'A'.repeat(43)}`;
  const base = { v: 1, t: 'access', id: 'abc_-1', part: 1, parts: 2, enabled: true, users: [{ user: 'alice', keys: [{ type: 'ssh-ed25519', blob: 'AAAAC3NzaC1lZDI1NTE5', fingerprint: fp }], rights: { web01: 'rw', db1: 'ro' } }] };
  const r = decode(cloudToRelay, JSON.stringify(base));
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.ok(decode(cloudToRelay, JSON.stringify({ ...base, users: [{ ...base.users[0], user: 'sso:bob' }] })).ok, 'a user of single sign-on');
  assert.ok(decode(cloudToRelay, JSON.stringify({ ...base, users: [] })).ok, 'nobody: still says whether local access is on');
  const user = (over: object) => ({ ...base, users: [{ ...base.users[0], ...over }] });
  const key = (over: object) => user({ keys: [{ ...base.users[0].keys[0], ...over }] });
  for (const [bad, field] of [
    [{ ...base, part: 3 }, 'part'], [{ ...base, part: 0 }, 'part'], [{ ...base, parts: 4097 }, 'parts'], [{ ...base, id: '' }, 'id'], [{ ...base, id: 'a/b' }, 'id'],
    [{ ...base, enabled: 'yes' }, 'enabled'], [{ ...base, users: undefined }, 'users'],
    [user({ user: 'Alice' }), 'users.0.user'], [user({ user: '@ops' }), 'users.0.user'], [user({ user: 'relay:edge1' }), 'users.0.user'], [user({ user: 'a b' }), 'users.0.user'],
    [user({ rights: { web01: 'rx' } }), 'users.0.rights.web01'], [user({ rights: { '../etc': 'rw' } }), 'users.0.rights'],
    [user({ keys: Array(65).fill(base.users[0].keys[0]) }), 'users.0.keys'],
    [key({ type: 'ssh-dss' }), 'users.0.keys.0.type'], [key({ blob: 'not base64!' }), 'users.0.keys.0.blob'], [key({ fingerprint: 'MD5:aa' }), 'users.0.keys.0.fingerprint'],
    [{ ...base, users: Array(513).fill(base.users[0]) }, 'users'],
  ] as const) {
    const d = decode(cloudToRelay, JSON.stringify(bad), Number.MAX_SAFE_INTEGER); // as the relay reads them
    assert.equal(d.ok, false, `accepted ${JSON.stringify(bad).slice(0, 200)}`);
    if (!d.ok) assert.ok(d.message.startsWith(`bad 'access' message: ${field}`), `${field}: ${d.message}`);
  }
});

test('hello: `features` a relay understands are optional words; unknown ones are no error', () => {
  const base = { v: 1, t: 'hello', boot: 'b', consoles: [] };
  const r = decode(relayToCloud, JSON.stringify({ ...base, features: ['access', 'something-newer'] }));
  assert.ok(r.ok && r.msg.t === 'hello' && r.msg.features?.includes('access'));
  assert.equal(decode(relayToCloud, JSON.stringify({ ...base, features: 'access' })).ok, false);
  assert.equal(decode(relayToCloud, JSON.stringify({ ...base, features: ['x'.repeat(33)] })).ok, false);
});
