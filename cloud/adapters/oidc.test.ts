// The OIDC verifier against a real issuer the test runs (test/oidc-issuer.ts): discovery, JWKS
// caching and rotation, and one clear error per way a token can be wrong.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionProblem, Unauthorized } from '../../protocol/errors.ts';
import { authenticate } from '../core/http-app.ts';
import type { Principal, TokenStore } from '../core/ports.ts';
import { entryConfig } from '../lambda/entry-shared.ts';
import { makeKey, startTestIssuer, type TestIssuer } from '../../test/oidc-issuer.ts';
import { OidcVerifier } from './oidc.ts';

let idp: TestIssuer;
before(async () => { idp = await startTestIssuer(); });
after(() => idp.stop());

const verifier = (o: Partial<ConstructorParameters<typeof OidcVerifier>[0]> = {}) =>
  new OidcVerifier({ issuer: idp.url, audience: idp.clientId, adminGroups: ['console-admins'], ...o });
const now = () => Math.floor(Date.now() / 1000);

async function refused(p: Promise<unknown>, cls: typeof Unauthorized | typeof ConnectionProblem, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof cls, `${e.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('a valid ID token is a user with groups; an admin group makes an admin; keys are fetched once', async () => {
  const v = verifier();
  const jwks = idp.hits.get('/jwks') ?? 0;
  const jwt = await idp.sign();
  const p = await v.verify(jwt);
  const exp = (JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as { exp: number }).exp;
  assert.deepEqual(p, { kind: 'user', name: 'sso:sso-alice', admin: true, tokenId: `oidc:${idp.url}#u-1001`, groups: ['ops', 'console-admins'], via: 'oidc', expires: exp * 1000 } satisfies Principal);
  const bob = await v.verify(await idp.sign({ sub: 'u-2', preferred_username: 'bob', groups: ['ops'] }));
  assert.equal(bob.name, 'sso:bob');
  assert.equal(bob.admin, false);
  assert.deepEqual(bob.groups, ['ops']);
  const none = await v.verify(await idp.sign({ sub: 'u-3', preferred_username: 'carol', groups: undefined }));
  assert.deepEqual(none.groups, []);
  assert.equal(idp.hits.get('/jwks'), jwks + 1, 'one JWKS fetch for three tokens');

  // Timing: a verification with cached keys, and the first one with discovery + JWKS fetch.
  const tok = await idp.sign();
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) await v.verify(tok);
  const cached = (performance.now() - t0) / 200;
  const t1 = performance.now();
  await verifier().verify(tok);
  const first = performance.now() - t1;
  console.log(`# verify with cached keys: ${cached.toFixed(3)} ms; first (discovery + JWKS over loopback): ${first.toFixed(1)} ms`);
});

test('claims: another user claim, nested groups, a single group string; a token without the user claim is refused', async () => {
  const v = verifier({ userClaim: 'email', groupsClaim: 'realm_access.roles', adminGroups: ['root'] });
  const p = await v.verify(await idp.sign({ email: 'dana@example.test', realm_access: { roles: ['root', 7, 'dev'] } }));
  assert.equal(p.name, 'sso:dana@example.test');
  assert.deepEqual(p.groups, ['root', 'dev']);
  assert.equal(p.admin, true);
  assert.deepEqual((await verifier({ groupsClaim: 'role' }).verify(await idp.sign({ role: 'ops' }))).groups, ['ops']);
  await refused(verifier().verify(await idp.sign({ preferred_username: undefined })), Unauthorized, /token has no preferred_username claim/);
  await refused(v.verify(await idp.sign({ email: undefined })), Unauthorized, /token has no email claim/);
  await refused(verifier().verify(await idp.sign({ preferred_username: 'two words' })), Unauthorized, /not a usable user name/);
});

test('the user is sso:<claim> in normal form: never a token user, a group, a relay or a look-alike of someone', async () => {
  const v = verifier({ adminGroups: ['SRE'] });
  assert.equal((await v.verify(await idp.sign({ preferred_username: 'Mallory' }))).name, 'sso:mallory', 'compared lowercase');
  for (const [name, why] of [
    ['@sre', /"@sre" starts with @, which names a group/],
    ['relay:edge1', /"relay:edge1" holds ":": sso: and relay: name other kinds of principal/],
    ['sso:root', /"sso:root" holds ":"/],
    ['\u0430dmin', /"\\u0430dmin" holds U\+0430 at position 1: only ASCII is accepted \(look-alike letters/], // Cyrillic a
    ['\uff41dmin', /holds U\+FF41/], // fullwidth a: NFKC would make it "admin"
    ['ad\u200bmin', /holds U\+200B at position 3/], // zero-width space
    ['\u202enimda', /holds U\+202E at position 1/], // right-to-left override
    ['admin\u0000', /holds the control character U\+0000/],
  ] as const) {
    await refused(v.verify(await idp.sign({ preferred_username: name })), Unauthorized, new RegExp(`^token's preferred_username claim is not a usable user name: .*${why.source}`));
  }
  // Groups: in normal form; one that is no valid group name is left out (logged), an admin group matches in any case.
  const logged: string[] = [];
  const err = console.error;
  console.error = (...a: unknown[]) => { logged.push(a.join(' ')); };
  let p: Principal;
  try {
    p = await v.verify(await idp.sign({ preferred_username: 'sam', groups: ['Ops', 'ops', 'sre', 'SRE Team', '\u0455re', '/Platform/OnCall'] }));
    await v.verify(await idp.sign({ preferred_username: 'sam', groups: ['SRE Team'] }));
  } finally { console.error = err; }
  assert.deepEqual(p.groups, ['ops', 'sre', '/platform/oncall']);
  assert.equal(p.admin, true, 'claim group sre is admin group SRE');
  assert.equal(logged.length, 2, `one line per bad group name, not per sign-in: ${logged.join(' | ')}`);
  assert.match(logged[0], /^oidc: left out a group of the groups claim \(no access rule can name it\): "SRE Team" holds a space/);
  assert.match(logged[1], /"\\u0455re" holds U\+0455/);
  assert.equal((await v.verify(await idp.sign({ preferred_username: 'sam', groups: ['\u0455re'] }))).admin, false, 'a look-alike of an admin group is not one');
  assert.throws(() => verifier({ adminGroups: ['ok', 'SRE Team'] }), /OIDC admin groups: "SRE Team" holds a space/);
});

test('expired, not yet valid, wrong audience, wrong issuer: each says so', async () => {
  const v = verifier();
  const exp = now() - 120;
  await refused(v.verify(await idp.sign({ iat: exp - 3600, exp })), Unauthorized, new RegExp(`token expired at ${new Date(exp * 1000).toISOString().replace(/[.]/g, '\\.')}`));
  // Within the clock tolerance (30 s) an expired token still passes; beyond it it does not.
  await v.verify(await idp.sign({ exp: now() - 10 }));
  await refused(verifier({ clockToleranceS: 0 }).verify(await idp.sign({ exp: now() - 10 })), Unauthorized, /token expired at/);
  await refused(v.verify(await idp.sign({ nbf: now() + 600 })), Unauthorized, /token not valid before .* \(check the clocks\)/);
  await refused(v.verify(await idp.sign({ aud: 'some-other-app' })), Unauthorized, /wrong audience: the token is for "some-other-app", this cloud accepts cloudcons-test/);
  await refused(v.verify(await idp.sign({ iss: 'https://evil.example' })), Unauthorized, /wrong issuer: the token is from "https:\/\/evil.example"/);
  // Several audiences configured: any one will do.
  assert.equal((await verifier({ audience: ['x', 'some-other-app'] }).verify(await idp.sign({ aud: 'some-other-app' }))).name, 'sso:sso-alice');
});

test('only an ID token: exp, iat and sub required; iat not in the future; a bounded lifetime; typ JWT; no logout token; azp ours', async () => {
  const v = verifier();
  await refused(v.verify(await idp.sign({ exp: undefined })), Unauthorized, /^token has no exp claim: an ID token must say when it expires/);
  await refused(v.verify(await idp.sign({ iat: undefined })), Unauthorized, /^token has no iat claim/);
  await refused(v.verify(await idp.sign({ sub: undefined })), Unauthorized, /^token has no sub claim/);
  await refused(v.verify(await idp.sign({ sub: '' })), Unauthorized, /sub claim is not a subject identifier/);
  await refused(v.verify(await idp.sign({ exp: 'tomorrow' as never })), Unauthorized, /^token claim exp is invalid/);
  // iat: within the clock tolerance (30 s) ahead it passes; beyond it, it is refused.
  await v.verify(await idp.sign({ iat: now() + 10 }));
  await refused(v.verify(await idp.sign({ iat: now() + 600, exp: now() + 3600 })), Unauthorized, /^token issued in the future \(.*; check the clocks\)/);
  // Lifetime (exp - iat): at most maxLifetimeS (default 24 h).
  await v.verify(await idp.sign({ iat: now(), exp: now() + 86_400 }));
  await refused(v.verify(await idp.sign({ iat: now(), exp: now() + 2 * 86_400 })), Unauthorized, /^token lifetime 172800 s .* is longer than this cloud accepts \(86400 s, --oidc-max-lifetime\)/);
  assert.equal((await verifier({ maxLifetimeS: 3 * 86_400 }).verify(await idp.sign({ iat: now(), exp: now() + 2 * 86_400 }))).name, 'sso:sso-alice');
  // The header's typ: JWT (any case, application/jwt) or none; access and logout tokens are not ID tokens.
  for (const typ of [null, 'JWT', 'jwt', 'application/jwt']) assert.equal((await v.verify(await idp.sign({}, { typ }))).name, 'sso:sso-alice', String(typ));
  for (const typ of ['at+jwt', 'logout+jwt', 'application/at+jwt', 'JOSE']) {
    await refused(v.verify(await idp.sign({}, { typ })), Unauthorized, new RegExp(`^token type \\(typ\\) "${typ.replace('+', '\\+')}" is not an ID token`));
  }
  await refused(v.verify(await idp.sign({ events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })), Unauthorized, /events claim: a logout token/);
  // azp: when present it must be us; a token for several audiences must name us in it.
  assert.equal((await v.verify(await idp.sign({ azp: idp.clientId }))).name, 'sso:sso-alice');
  await refused(v.verify(await idp.sign({ azp: 'other-client' })), Unauthorized, /^wrong authorized party: the token was issued to "other-client" \(azp\), this cloud is cloudcons-test/);
  await refused(v.verify(await idp.sign({ aud: [idp.clientId, 'other-client'] })), Unauthorized, /several audiences \(cloudcons-test, other-client\) and names no authorized party/);
  await refused(v.verify(await idp.sign({ aud: [idp.clientId, 'other-client'], azp: 'other-client' })), Unauthorized, /wrong authorized party/);
  assert.equal((await v.verify(await idp.sign({ aud: [idp.clientId, 'other-client'], azp: idp.clientId }))).name, 'sso:sso-alice');
  assert.equal((await v.verify(await idp.sign({ aud: [idp.clientId] }))).name, 'sso:sso-alice', 'one audience in a list needs no azp');
});

test('wrong signature (another key under a published kid), alg none, HS256 and garbage are refused', async () => {
  const v = verifier();
  const impostor = await makeKey('k1');
  await refused(v.verify(await idp.sign({}, { key: impostor })), Unauthorized, /signature does not verify \(key "k1"/);
  // A token whose payload was edited after signing.
  const [h, , s] = (await idp.sign()).split('.');
  const forged = [h, Buffer.from(JSON.stringify({ iss: idp.url, aud: idp.clientId, sub: 'x', preferred_username: 'admin', groups: ['console-admins'], exp: now() + 60 })).toString('base64url'), s].join('.');
  await refused(v.verify(forged), Unauthorized, /signature does not verify/);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = { iss: idp.url, aud: idp.clientId, sub: 'x', preferred_username: 'mallory', exp: now() + 60 };
  await refused(v.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`), Unauthorized, /algorithm "none" not allowed|malformed/);
  await refused(v.verify(`${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims)}.${b64({ x: 1 })}`), Unauthorized, /algorithm "HS256" not allowed/);
  await refused(v.verify('a.b.c'), Unauthorized, /malformed token/);
  // Only asymmetric algorithms can be configured.
  assert.throws(() => verifier({ algorithms: ['HS256'] }), /HS256 not allowed/);
  assert.throws(() => verifier({ algorithms: ['none'] }), /none not allowed/);
  assert.throws(() => new OidcVerifier({ issuer: 'http://idp.example', audience: 'x' }), /must be https/);
});

test('key rotation: an unknown kid refetches the JWKS (not more often than the cooldown); the new key is accepted', async () => {
  const issuer = await startTestIssuer();
  try {
    const v = new OidcVerifier({ issuer: issuer.url, audience: issuer.clientId, jwksCooldownMs: 300 });
    await v.verify(await issuer.sign());
    assert.equal(issuer.hits.get('/jwks'), 1);
    const k2 = await issuer.addKey('ES256');
    const fresh = await issuer.sign({}, { key: k2 });
    // Within the cooldown the keys are not fetched again: the kid is unknown.
    await refused(v.verify(fresh), Unauthorized, /no key "k2" at .* JWKS/);
    assert.equal(issuer.hits.get('/jwks'), 1);
    await new Promise((r) => setTimeout(r, 350));
    const p = await v.verify(fresh);
    assert.equal(p.name, 'sso:sso-alice');
    assert.equal(issuer.hits.get('/jwks'), 2, 'fetched again once for the unknown kid');
    await v.verify(await issuer.sign()); // the old key still works
    assert.equal(issuer.hits.get('/jwks'), 2);
    // A kid the issuer never published: refused after one refetch.
    await new Promise((r) => setTimeout(r, 350));
    await refused(v.verify(await issuer.sign({}, { kid: 'k9' })), Unauthorized, /no key "k9"/);
  } finally { await issuer.stop(); }
});

test('issuer down: a clear ConnectionProblem (502), never a crash; cached keys keep working; a failure is not remembered', async () => {
  const issuer = await startTestIssuer();
  const down = new OidcVerifier({ issuer: issuer.url, audience: issuer.clientId });
  const warm = new OidcVerifier({ issuer: issuer.url, audience: issuer.clientId });
  const tok = await issuer.sign();
  await warm.verify(tok);
  await issuer.stop();
  await refused(down.verify(tok), ConnectionProblem, new RegExp(`OIDC issuer not reachable: discovery at ${issuer.url}/\\.well-known/openid-configuration failed: (connect ECONNREFUSED|other side closed)`));
  await refused(down.verify(tok), ConnectionProblem, /not reachable/); // tried again, not a remembered failure
  assert.equal((await warm.verify(tok)).name, 'sso:sso-alice', 'keys cached before the outage still verify');
  // Keys past their cache time need the issuer.
  const short = new OidcVerifier({ issuer: issuer.url, audience: issuer.clientId, jwksCacheMs: 1 });
  await refused(short.verify(tok), ConnectionProblem, /not reachable/);
  // A discovery document naming another issuer is a configuration error, said as such.
  const other = await startTestIssuer();
  try {
    await refused(new OidcVerifier({ issuer: `${other.url}/`, audience: other.clientId }).verify(await other.sign()), ConnectionProblem, /names issuer "http:\/\/127\.0\.0\.1:\d+", not http:\/\/127\.0\.0\.1:\d+\/ /);
  } finally { await other.stop(); }
});

test('authenticate(): a JWT goes to the verifier, a cloudcons token to the token store; without OIDC a JWT is refused with a hint', async () => {
  const tokens: TokenStore = {
    verify: async (t) => (t === 'ccu_good' ? { kind: 'user', name: 'tok', admin: false, tokenId: 't1' } : undefined),
  } as TokenStore;
  const identity = verifier();
  const jwt = await idp.sign();
  assert.equal((await authenticate({ tokens, identity }, `Bearer ${jwt}`)).via, 'oidc');
  assert.equal((await authenticate({ tokens, identity }, 'Bearer ccu_good')).name, 'tok');
  await refused(authenticate({ tokens, identity }, `Bearer ${await idp.sign({ aud: 'x' })}`), Unauthorized, /wrong audience/);
  await refused(authenticate({ tokens }, `Bearer ${jwt}`), Unauthorized, /no OIDC issuer configured/);
  await refused(authenticate({ tokens, identity }, 'Bearer ccu_bad'), Unauthorized, /invalid or revoked token/);
});

test('Lambda configuration from the environment', () => {
  const base = { CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b' };
  assert.equal(entryConfig(base).oidc, undefined);
  assert.deepEqual(entryConfig({ ...base, CLOUDCONS_OIDC_ISSUER: 'https://idp.example', CLOUDCONS_OIDC_AUDIENCE: 'cc', CLOUDCONS_OIDC_ADMIN_GROUPS: 'a, b', CLOUDCONS_OIDC_CLOCK_TOLERANCE_S: '5' }).oidc, {
    issuer: 'https://idp.example', audience: 'cc', userClaim: undefined, groupsClaim: undefined, adminGroups: ['a', 'b'], clockToleranceS: 5, maxLifetimeS: undefined, jwksCacheMs: undefined, scopes: undefined,
  });
  assert.throws(() => entryConfig({ ...base, CLOUDCONS_OIDC_ISSUER: 'https://idp.example' }), /go together/);
});
