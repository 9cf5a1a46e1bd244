import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAccess } from './acl.ts';
import type { Principal, Session } from './ports.ts';
import { SessionDecisions } from './session-rights.ts';

const who = (name: string, over: Partial<Principal> = {}): Principal => ({ kind: 'user', name, admin: false, tokenId: name, ...over });
const session = (id: string, user: Principal, over: Partial<Session> = {}): Session => ({ id, console: 'web01', user: user.name, mode: 'spy', since: 1, conn: `c-${id}`, who: user, ...over });

test('session decisions: what decide says, for each rules document anew; a writer sees with attach alone', () => {
  const d = new SessionDecisions();
  const v1 = parseAccess({ rules: [{ consoles: 'web*', who: 'alice', allow: ['spy'] }, { consoles: 'web*', who: 'bob', allow: ['attach'] }] });
  const alice = session('a', who('alice')), bob = session('b', who('bob'), { mode: 'rw', fence: 3 }), eve = session('e', who('eve'));
  assert.deepEqual([d.sees(v1, alice), d.sees(v1, bob), d.sees(v1, eve)], [true, true, false]);
  assert.match(d.decide(v1, eve, 'spy').why, /no rule allows it/);
  assert.equal(d.sees(v1, { ...bob, mode: 'spy', fence: undefined }), false, 'as a spy bob may not see it');
  // A changed document is another object: nothing remembered from the old one counts.
  const v2 = parseAccess({ rules: [{ consoles: 'web*', who: 'eve', allow: ['spy'] }] });
  assert.deepEqual([d.sees(v2, alice), d.sees(v2, eve)], [false, true]);
  assert.deepEqual([d.sees(undefined, eve), d.sees(v2, session('r', who('root', { admin: true })))], [true, true], 'no rules, or an admin: everything');
  assert.equal(d.sees(v2, session('o', who('x'), { who: undefined, user: 'eve' })), true, 'a session stored before it carried its principal: its user name');
});

test('session decisions are bounded per document: past `max` sessions it starts afresh, and still decides right', () => {
  const d = new SessionDecisions(2);
  const doc = parseAccess({ default: 'ro' });
  for (const id of ['1', '2', '3', '4']) assert.equal(d.decide(doc, session(id, who(`u${id}`)), 'attach').allow, false);
  assert.equal(d.decide(doc, session('1', who('u1')), 'spy').allow, true);
});
