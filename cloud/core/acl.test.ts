import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, explain, groupsOf, isAdmin, parseAccess, relayMayPublish } from './acl.ts';

const doc = parseAccess({
  admins: ['root', '@wheel'],
  groups: { ops: ['olive', 'oscar'], wheel: ['wendy'] },
  rules: [
    { consoles: ['web*', 'db?'], who: '@ops', allow: 'rw' },
    { consoles: '*', who: '*', allow: 'ro' },
    { consoles: 'web02', who: 'oscar', deny: ['force', 'break'], note: 'oscar broke web02 once' },
    { consoles: 'bmc-*', who: '*', deny: 'all' },
    { consoles: 'bmc-*', who: '@ops', allow: 'rw' },
  ],
  relays: { edge1: ['web*'] },
});

test('deny overrides allow whatever the order; groups from the document and from the sign-in count', () => {
  assert.equal(decide(doc, { name: 'olive' }, 'web01', 'attach').allow, true);
  assert.equal(decide(doc, { name: 'oscar' }, 'web01', 'force').allow, true);
  const d = decide(doc, { name: 'oscar' }, 'web02', 'force');
  assert.equal(d.allow, false);
  assert.match(d.why, /denied by rule 3 .*oscar broke web02 once/);
  assert.equal(decide(doc, { name: 'oscar' }, 'web02', 'attach').allow, true, 'only what the deny names');
  // The deny rule for bmc-* comes before the allow: it still wins, for every user but admins.
  assert.equal(decide(doc, { name: 'olive' }, 'bmc-1', 'spy').allow, false);
  assert.equal(decide(doc, { name: 'eve', groups: ['ops'] }, 'web01', 'attach').allow, true, 'group from the sign-in');
  assert.equal(decide(doc, { name: 'eve' }, 'web01', 'attach').allow, false);
  assert.equal(decide(doc, { name: 'eve' }, 'web01', 'spy').allow, true, 'everyone: ro');
  assert.equal(decide(doc, { name: 'eve' }, 'web01', 'audit').allow, false);
  assert.equal(decide(doc, { name: 'olive' }, 'dbx', 'attach').allow, true, '? matches one character');
  assert.equal(decide(doc, { name: 'olive' }, 'db10', 'attach').allow, false);
});

test('admins (token flag, listed user, listed group) may do everything, also where a rule denies', () => {
  for (const s of [{ name: 'x', admin: true }, { name: 'root' }, { name: 'wendy' }, { name: 'y', groups: ['wheel'] }]) {
    assert.equal(decide(doc, s, 'bmc-1', 'force').allow, true, JSON.stringify(s));
    assert.equal(explain(doc, s, 'bmc-1').admin, true);
  }
});

test('no rules stored: every user may do every console action (conserver without rw/ro lists); a stored document defaults to none', () => {
  for (const a of ['force', 'audit', 'down'] as const) assert.equal(decide(undefined, { name: 'a' }, 'c', a).allow, true);
  assert.equal(isAdmin(undefined, { name: 'a' }), false, 'but is no admin');
  const empty = parseAccess({});
  assert.equal(decide(empty, { name: 'a' }, 'c', 'list').allow, false);
  assert.match(decide(empty, { name: 'a' }, 'c', 'list').why, /no rule allows it \(default: none\)/);
  assert.equal(decide(parseAccess({ default: 'ro' }), { name: 'a' }, 'c', 'spy').allow, true);
  assert.equal(decide(parseAccess({ default: 'ro' }), { name: 'a' }, 'c', 'attach').allow, false);
});

test('explain lists every action with its reason', () => {
  const e = explain(doc, { name: 'oscar' }, 'web02');
  assert.deepEqual(e.groups, ['ops']);
  assert.deepEqual(Object.keys(e.actions), ['list', 'spy', 'attach', 'force', 'break', 'replay', 'export', 'audit', 'down', 'up']);
  assert.equal(e.actions.break.allow, false);
  assert.equal(e.actions.replay.allow, true);
});

test('relays publish only what is assigned to them; an unnamed relay any console not assigned to another', () => {
  assert.equal(relayMayPublish(doc, 'edge1', 'web01'), true);
  assert.equal(relayMayPublish(doc, 'edge1', 'db1'), false);
  assert.equal(relayMayPublish(doc, 'edge9', 'db1'), true);
  assert.equal(relayMayPublish(doc, 'edge9', 'web01'), false, 'assigned to edge1');
  assert.equal(relayMayPublish(undefined, 'edge1', 'db1'), true);
});

test('a broken document is refused with every problem and where it is', () => {
  assert.throws(() => parseAccess({ rules: [{ who: 'a' }, { consoles: 'x y', who: 'b', allow: 'fly' }], extra: 1 }),
    (e: Error) => /rules\.0: a rule needs allow or deny/.test(e.message) && /rules\.1\.consoles/.test(e.message) && /rules\.1\.allow/.test(e.message) && /Unrecognized key.*extra/i.test(e.message));
  assert.throws(() => parseAccess({ default: 'all' }), /default/);
  assert.throws(() => parseAccess([]), /\(top\)/);
  // A glob that would not compile is refused here, not stored to fail every later decision.
  assert.throws(() => parseAccess({ rules: [{ consoles: ['web*', 'db[z-a]'], who: '*', allow: 'ro' }], relays: { e1: '[a-' } }),
    (e: Error) => /rules\.0\.consoles\.1: glob "db\[z-a\]": the range z-a is out of order/.test(e.message) && /relays\.e1(\.0)?: glob "\[a-": the \[ at position 1 has no closing \]/.test(e.message));
  assert.equal(decide(parseAccess({ rules: [{ consoles: 'sw[!0-4]', who: '*', allow: 'ro' }] }), { name: 'a' }, 'sw7', 'spy').allow, true);
});

test('actions can be granted one by one: attach without the spy role', () => {
  const d = parseAccess({ rules: [{ consoles: 'c', who: 'w', allow: ['attach'] }] });
  assert.equal(decide(d, { name: 'w' }, 'c', 'attach').allow, true);
  assert.equal(decide(d, { name: 'w' }, 'c', 'spy').allow, false);
  assert.equal(decide(d, { name: 'w' }, 'c', 'list').allow, true, 'any right brings list');
  assert.equal(decide(parseAccess({ rules: [{ who: 'w', allow: ['attach'] }, { who: 'w', deny: ['list'] }] }), { name: 'w' }, 'c', 'list').allow, false, 'unless denied');
});

test('names are compared in normal form: a deny for mallory stops Mallory, rules written in any case match', () => {
  const d = parseAccess({ rules: [{ who: '*', allow: 'rw' }, { who: 'mallory', deny: ['force', 'break'] }, { who: 'SSO:Eve', deny: 'all' }], admins: ['Root'], groups: { Ops: ['Olive'] } });
  assert.equal(decide(d, { name: 'mallory' }, 'c', 'force').allow, false);
  assert.equal(decide(d, { name: 'Mallory' }, 'c', 'force').allow, false, 'a subject not in normal form is still denied');
  assert.equal(decide(d, { name: 'sso:eve' }, 'c', 'spy').allow, false);
  assert.equal(isAdmin(d, { name: 'root' }), true);
  assert.deepEqual(groupsOf(d, { name: 'olive' }), ['ops']);
  assert.deepEqual(groupsOf(d, { name: 'x', groups: ['OPS'] }), ['ops'], 'groups from the sign-in too');
  assert.equal(relayMayPublish(parseAccess({ relays: { Edge1: 'web*' } }), 'edge1', 'db1'), false, 'relays: keys too');
});

test('a user whose name looks like a group never matches the group, and @x matches only its members', () => {
  const d = parseAccess({ admins: ['@sre'], rules: [{ consoles: 'bmc-*', who: '@ops', allow: 'rw' }] });
  for (const name of ['@sre', 'sre', 'sso:sre', 'sso:@sre']) {
    assert.equal(isAdmin(d, { name }), false, name);
    assert.equal(decide(d, { name }, 'bmc-1', 'force').allow, false, name);
  }
  assert.equal(decide(d, { name: '@ops' }, 'bmc-1', 'attach').allow, false);
  assert.equal(isAdmin(d, { name: 'sso:sam', groups: ['sre'] }), true, 'a member of the group is');
});

test('token users and SSO users are different people: alice is not sso:alice, in rules, admins and groups', () => {
  const d = parseAccess({
    admins: ['root'],
    groups: { ops: ['sso:bob'] },
    rules: [{ consoles: 'web*', who: 'alice', allow: 'rw' }, { consoles: 'db*', who: 'sso:alice', allow: 'rw' }, { consoles: 'lab*', who: '@ops', allow: 'rw' }],
  });
  assert.equal(decide(d, { name: 'alice' }, 'web1', 'attach').allow, true);
  assert.equal(decide(d, { name: 'sso:alice' }, 'web1', 'attach').allow, false);
  assert.equal(decide(d, { name: 'sso:alice' }, 'db1', 'attach').allow, true);
  assert.equal(decide(d, { name: 'alice' }, 'db1', 'attach').allow, false);
  assert.equal(isAdmin(d, { name: 'sso:root' }), false, 'an SSO user named root is not the admin root');
  assert.equal(decide(d, { name: 'sso:bob' }, 'lab1', 'attach').allow, true);
  assert.equal(decide(d, { name: 'bob' }, 'lab1', 'attach').allow, false);
  assert.equal(explain(d, { name: 'SSO:Alice' }, 'db1').user, 'sso:alice');
});

test('rules that name no principal are refused saying why: relays, unknown kinds, nested groups, look-alikes, one group twice', () => {
  const refused = (doc: unknown, re: RegExp) => assert.throws(() => parseAccess(doc), (e: Error) => { assert.match(e.message, re); return true; });
  refused({ rules: [{ who: 'relay:edge1', allow: 'ro' }] }, /rules\.0\.who(\.0)?: .*relay:edge1: relays are not users/);
  refused({ admins: ['corp:alice'] }, /admins(\.0)?: .*unknown kind "corp:"/);
  refused({ groups: { ops: ['@wheel'] } }, /groups\.ops(\.0)?: .*@wheel: groups do not nest/);
  refused({ groups: { Ops: ['a'], ops: ['b'] } }, /groups\.ops: the same name as "Ops" \(names are compared lowercase\)/);
  refused({ relays: { Edge1: 'a*', edge1: 'b*' } }, /relays\.edge1: the same name as "Edge1"/);
  refused({ admins: ['\u0430dmin'] }, /admins(\.0)?: .*"\\u0430dmin" holds U\+0430 at position 1: only ASCII/);
  refused({ rules: [{ who: 'sso:al\u200bice', allow: 'rw' }] }, /"sso:al\\u200bice": after "sso:": .*U\+200B/);
  refused({ groups: { 'op\u202es': ['a'] } }, /groups\."op\\u202es": a group name: .*U\+202E/);
  refused({ relays: { 'r:1': 'x' } }, /relays\.r:1: a relay name: "r:1" holds ":"/);
});
