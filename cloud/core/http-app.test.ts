// The HTTP API without a socket (app.request()) on embedded ports, with single sign-on from a test
// issuer: who owns which token, and how token names and `access check` subjects are read.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OidcVerifier } from '../adapters/oidc.ts';
import { FsAccessStore } from '../adapters/fs/access-store.ts';
import { FsKeyStore } from '../adapters/fs/key-store.ts';
import { FsAuditStore } from '../adapters/fs/audit-store.ts';
import { FsRelayRegistry } from '../adapters/fs/relay-registry.ts';
import { FsConsoleRegistry } from '../adapters/fs/console-registry.ts';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { FsTokenStore } from '../adapters/fs/token-store.ts';
import { MemoryLockStore } from '../adapters/memory/lock-store.ts';
import { MemorySessionStore } from '../adapters/memory/session-store.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';
import { startTestIssuer, type TestIssuer } from '../../test/oidc-issuer.ts';
import { tokenName } from '../../protocol/principal.ts';
import { CloudCore } from './core.ts';
import { createHttpApp } from './http-app.ts';
import type { CloudPorts } from './ports.ts';

let idp: TestIssuer;
before(async () => { idp = await startTestIssuer(); });
after(async () => { await idp.stop(); await cleanup(); });

async function setup() {
  const dir = tmpDir('http');
  const ports: CloudPorts = {
    locks: new MemoryLockStore(), sessions: new MemorySessionStore(), consoles: new FsConsoleRegistry(dir), relays: new FsRelayRegistry(dir), segments: new FsSegmentStore(dir), hot: new FsHotTail(dir),
    audit: new FsAuditStore(dir), tokens: new FsTokenStore(dir), access: new FsAccessStore(dir), keys: new FsKeyStore(dir), identity: new OidcVerifier({ issuer: idp.url, audience: idp.clientId }),
    sender: { send: async () => true, close: async () => {} }, clock: { now: () => Date.now() },
  };
  const app = createHttpApp(new CloudCore(ports), ports);
  const admin = (await ports.tokens.create({ kind: 'user', name: 'root', admin: true })).token;
  const call = async (token: string, method: string, p: string, body?: unknown) => {
    const r = await app.request(p, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> & { error?: { message: string } } };
  };
  return { ports, admin, call };
}

test('a user of single sign-on owns no token: sso:bob neither lists nor revokes token user bob\'s; bob does', async () => {
  const { admin, call } = await setup();
  const bob = (await call(admin, 'POST', '/v1/tokens', { kind: 'user', name: 'bob' })).body as { token: string; id: string };
  const ssoBob = await idp.sign({ sub: 'u-bob', preferred_username: 'Bob', groups: [] });
  assert.equal((await call(ssoBob, 'GET', '/v1/whoami')).body.name, 'sso:bob');
  assert.deepEqual((await call(ssoBob, 'GET', '/v1/tokens')).body.tokens, []);
  const r = await call(ssoBob, 'DELETE', `/v1/tokens/${bob.id}`);
  assert.equal(r.status, 403, JSON.stringify(r.body));
  assert.equal((await call(bob.token, 'GET', '/v1/whoami')).status, 200, 'not revoked');
  assert.deepEqual(((await call(bob.token, 'GET', '/v1/tokens')).body.tokens as { id: string }[]).map((t) => t.id), [bob.id]);
  const own = await call(bob.token, 'DELETE', `/v1/tokens/${bob.id}`);
  assert.equal(own.status, 200, JSON.stringify(own.body));
});

test('POST /v1/tokens: the name in normal form, or 400 saying what tokenName says', async () => {
  const { admin, call } = await setup();
  const made = await call(admin, 'POST', '/v1/tokens', { kind: 'user', name: 'Dana.Smith@Example.com' });
  assert.equal(made.status, 201);
  assert.equal(made.body.name, 'dana.smith@example.com');
  for (const name of ['relay:edge1', '@sre', 'sso:bob', '\u0430lice', 'al\u200bice', 'x'.repeat(129), 7]) {
    const r = await call(admin, 'POST', '/v1/tokens', { kind: 'user', name });
    assert.equal(r.status, 400, JSON.stringify(name));
    assert.throws(() => tokenName(name), (e: Error) => e.message === r.body.error!.message);
    assert.equal((await call(admin, 'POST', '/v1/tokens', { kind: 'relay', name })).status, 400);
  }
});

test('access check: the user is a token user or sso:user in normal form; a relay, a group or a look-alike is a bad parameter', async () => {
  const { admin, call, ports } = await setup();
  await ports.access.put({ rules: [{ who: 'sso:alice', allow: 'ro' }, { who: '@ops', allow: 'rw' }] }, 0);
  const chk = (q: string) => call(admin, 'GET', `/v1/access/check?console=c1&${q}`);
  const sso = await chk('user=SSO:Alice');
  assert.equal(sso.body.user, 'sso:alice');
  assert.equal((sso.body.actions as Record<string, { allow: boolean }>).spy.allow, true);
  assert.equal(((await chk('user=alice')).body.actions as Record<string, { allow: boolean }>).spy.allow, false, 'token alice is someone else');
  assert.equal(((await chk('user=x&groups=@OPS')).body.actions as Record<string, { allow: boolean }>).attach.allow, true, 'groups in normal form');
  for (const [q, re] of [
    ['user=relay:edge1', /^user: relay:edge1 is a relay, not a user/],
    ['user=@ops', /^user: @ops is a group, not a user/],
    ['user=*', /^user: \* is a rule for everyone, not a user/],
    ['user=%D0%B0lice', /^user: "\\u0430lice" holds U\+0430/],
    ['user=x&groups=a%20b', /^groups: "a b" holds a space/],
  ] as const) {
    const r = await chk(q);
    assert.equal(r.status, 400, q);
    assert.match(r.body.error!.message, re);
  }
});
