import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadParameter } from './errors.ts';
import { checkGroupName, checkUserName, formatPrincipal, parsePrincipal, principalLabel, tokenName } from './principal.ts';

test('a user name is compared lowercase and holds only ASCII letters, digits and . _ @ + -', () => {
  assert.equal(checkUserName('Mallory').name, 'mallory');
  assert.equal(checkUserName('Dana.Smith+ops@Example.COM').name, 'dana.smith+ops@example.com');
  assert.equal(checkUserName('x'.repeat(128)).name, 'x'.repeat(128));
  assert.match(checkUserName('x'.repeat(129)).why!, /longer than 128/);
  assert.match(checkUserName('').why!, /^empty: must be 1 to 128 ASCII letters/);
  assert.match(checkUserName('two words').why!, /holds a space at position 4: must be/);
  assert.match(checkUserName('tab\there').why!, /"tab\\there" holds the control character U\+0009 at position 4/);
  assert.match(checkUserName('-rf').why!, /must be .* starting with a letter or digit/);
  assert.match(checkUserName(7).why!, /not a string \(number\)/);
});

test('look-alike, zero-width and right-to-left names are refused, not folded onto the ASCII name they imitate', () => {
  for (const [raw, cp] of [
    ['\u0430lice', 'U+0430'], // Cyrillic a
    ['\uff41lice', 'U+FF41'], // fullwidth a (NFKC would make it "alice")
    ['mallor\u212a', 'U+212A'], // Kelvin sign (lowercases to ASCII k)
    ['al\u200bice', 'U+200B'], // zero-width space
    ['alice\u200d', 'U+200D'], // zero-width joiner
    ['\u202eecila', 'U+202E'], // right-to-left override
    ['bob\u2066', 'U+2066'], // left-to-right isolate
  ]) {
    const c = checkUserName(raw);
    assert.equal(c.name, undefined, raw);
    assert.match(c.why!, new RegExp(`holds ${cp.replace('+', '\\+')} at position \\d+: only ASCII is accepted \\(look-alike letters, zero-width and right-to-left characters`), raw);
    assert.ok(/^[\x20-\x7e]*$/.test(c.why!), `the message shows the name escaped: ${c.why}`);
  }
});

test('a user name never reads as another kind: no @ in front, no kind: prefix', () => {
  assert.match(checkUserName('@sre').why!, /"@sre" starts with @, which names a group/);
  assert.match(checkUserName('relay:edge1').why!, /"relay:edge1" holds ":": sso: and relay: name other kinds of principal/);
  assert.match(checkUserName('sso:bob').why!, /holds ":"/);
  assert.match(checkUserName('*').why!, /must be/);
});

test('group names: like user names, also : and / (Keycloak paths), and may start with /', () => {
  assert.equal(checkGroupName('/SRE/oncall').name, '/sre/oncall');
  assert.equal(checkGroupName('realm:Admins').name, 'realm:admins');
  assert.equal(checkGroupName('sre@example.com').name, 'sre@example.com');
  assert.match(checkGroupName('SRE Team').why!, /holds a space/);
  assert.match(checkGroupName('\u0455re').why!, /U\+0455/);
  assert.match(checkGroupName('@x').why!, /must be .* starting with a letter, digit or \//);
});

test('principals as rules write them: each kind has its own form, read back in normal form', () => {
  const cases: [string, string, string][] = [
    ['Alice', 'user', 'alice'], ['SSO:Alice', 'sso', 'sso:alice'], ['relay:Edge1', 'relay', 'relay:edge1'], ['@Ops', 'group', '@ops'], ['*', 'everyone', '*'],
  ];
  for (const [raw, kind, written] of cases) {
    const p = parsePrincipal(raw);
    assert.equal(p.ref?.kind, kind, raw);
    assert.equal(formatPrincipal(p.ref!), written);
  }
  assert.match(parsePrincipal('corp:alice').why!, /unknown kind "corp:" \(a token user is alice, a single sign-on user sso:alice, a group @ops, everyone \*\)/);
  assert.match(parsePrincipal('sso:@sre').why!, /^"sso:@sre": after "sso:": "@sre" starts with @/);
  assert.match(parsePrincipal('sso:relay:x').why!, /after "sso:": "relay:x" holds ":"/);
  assert.match(parsePrincipal('@').why!, /^"@": after "@": empty/);
  assert.match(parsePrincipal('\u0430lice').why!, /U\+0430/);
  assert.equal(principalLabel({ kind: 'relay', name: 'edge1' }), 'relay:edge1');
  assert.equal(principalLabel({ kind: 'user', name: 'sso:alice' }), 'sso:alice');
});

test('tokenName: the normal form, or BadParameter naming the problem', () => {
  assert.equal(tokenName('Bob'), 'bob');
  assert.throws(() => tokenName('relay:edge1'), (e: Error) => e instanceof BadParameter && /^name: "relay:edge1" holds ":"/.test(e.message));
});
