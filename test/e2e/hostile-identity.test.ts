// Hostile identities end to end (issue 14 item 5): a real cloud process with single sign-on from a
// test issuer (test/oidc-issuer.ts), a real relay, token users and SSO users with the same names.
// An identity provider's user must never become a token user, a group, a relay or a look-alike of
// someone: SSO `bob` cannot touch token user bob's tokens, SSO names shaped like `@sre`, `root`,
// `relay:edge1` or with look-alike letters do not become admin (or anyone), names are compared
// lowercase, and `who` and the audit tell `alice` from `sso:alice`. Token names are checked the
// same way by the API and by `token create --data`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cloudcons, startCloud, tmpDir, until } from '../helpers.ts';
import { WsPeer } from '../hostile-rig.ts';
import { startTestIssuer } from '../oidc-issuer.ts';

after(cleanup);

interface ApiError { error: { code: string; message: string } }

/** Runs the CLI to its end without blocking this process (a blocked event loop misses the cloud
 *  closing idle keep-alive sockets, and the next request on one fails). */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = cloudcons(args, env);
  const code = await new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1)));
  return { code, stdout: p.out, stderr: p.err };
}

test('SSO users are sso:NAME: never a token user, a group, a relay or a look-alike; who and the audit tell them apart', { timeout: 180_000 }, async () => {
  const idp = await startTestIssuer();
  try {
    const dir = tmpDir('identity');
    const data = path.join(dir, 'data');
    const cloud = await startCloud(data, 0, { args: ['--oidc-issuer', idp.url, '--oidc-audience', idp.clientId, '--oidc-admin-group', 'console-admins'] });
    await cloud.proc.waitFor(/oidc: accepting ID tokens from/);
    const call = async (token: string, method: string, p: string, body?: unknown) => {
      const r = await fetch(cloud.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const admin = cloud.adminToken;
    const mk = async (name: string, kind = 'user') => {
      const r = await call(admin, 'POST', '/v1/tokens', { kind, name });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json as { token: string; id: string; name: string };
    };

    const relayTok = (await mk('edge1', 'relay')).token;
    fs.writeFileSync(path.join(dir, 'relay.yaml'), 'relay: { name: edge1 }\nconsoles:\n  demo: { type: exec, command: cat }\n');
    const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
    await relay.waitFor(/console demo up/);

    const put = await call(admin, 'PUT', '/v1/access', { doc: {
      admins: ['root', '@sre'],
      rules: [
        { consoles: '*', who: '*', allow: 'rw' },
        { consoles: '*', who: ['mallory', 'sso:mallory'], deny: ['attach', 'force', 'break'] },
      ],
    } });
    assert.equal(put.status, 200, JSON.stringify(put.json));

    // Token users, one created with capitals: names are kept (and compared) lowercase.
    const bob = await mk('Bob');
    assert.equal(bob.name, 'bob');
    const alice = await mk('alice');
    const mallory = await mk('Mallory');
    const sso = (name: string, groups: string[] = ['ops']) => idp.sign({ sub: `sub-${name}`, preferred_username: name, groups });
    const ssoBob = await sso('bob');
    const ssoAlice = await sso('alice');

    // whoami: the kind shows in the name.
    assert.equal((await call(bob.token, 'GET', '/v1/whoami')).json.name, 'bob');
    const whoSsoBob = (await call(ssoBob, 'GET', '/v1/whoami')).json;
    assert.equal(whoSsoBob.name, 'sso:bob');
    assert.equal(whoSsoBob.admin, false);

    // SSO bob is not token user bob: he sees none of bob's tokens and cannot revoke them.
    assert.deepEqual((await call(ssoBob, 'GET', '/v1/tokens')).json.tokens, []);
    const rev = await call(ssoBob, 'DELETE', `/v1/tokens/${bob.id}`);
    assert.equal(rev.status, 403, JSON.stringify(rev.json));
    assert.match((rev.json as unknown as ApiError).error.message, new RegExp(`^user sso:bob may not revoke token ${bob.id}: only admins may`));
    assert.equal((await call(bob.token, 'GET', '/v1/whoami')).status, 200, 'token bob still signs in');
    assert.deepEqual(((await call(bob.token, 'GET', '/v1/tokens')).json.tokens as { id: string }[]).map((t) => t.id), [bob.id], 'token bob lists his own');

    // SSO names shaped like groups, admins, relays or look-alikes: refused, or nobody special.
    const refusedNames: [string, RegExp][] = [
      ['@sre', /"@sre" starts with @, which names a group/],
      ['relay:edge1', /"relay:edge1" holds ":"/],
      ['r\u043e\u043et', /"r\\u043e\\u043et" holds U\+043E at position 2: only ASCII/], // Cyrillic o
      ['ro\u200bot', /holds U\+200B at position 3/],
      ['\u202etoor', /holds U\+202E at position 1/],
    ];
    for (const [name, why] of refusedNames) {
      const r = await call(await sso(name, ['sre']), 'GET', '/v1/whoami');
      assert.equal(r.status, 401, `${JSON.stringify(name)}: ${JSON.stringify(r.json)}`);
      const msg = (r.json as unknown as ApiError).error.message;
      assert.match(msg, new RegExp(`^token's preferred_username claim is not a usable user name: .*${why.source}`));
      assert.ok(/^[\x20-\x7e]*$/.test(msg), `the message shows the name escaped: ${msg}`);
    }
    for (const name of ['root', 'sre', 'admin']) {
      const tok = await sso(name, []);
      const w = (await call(tok, 'GET', '/v1/whoami')).json;
      assert.deepEqual([w.name, w.admin], [`sso:${name}`, false], `SSO ${name} is no admin`);
      assert.equal((await call(tok, 'GET', '/v1/access')).status, 403);
      assert.equal((await call(tok, 'POST', '/v1/tokens', { kind: 'user', name: 'x' })).status, 403);
    }
    // A member of the group is an admin: the group claim, in any case.
    assert.equal((await call(await sso('sam', ['SRE']), 'GET', '/v1/whoami')).json.admin, true);

    // A deny for mallory stops Mallory, token user or SSO user.
    for (const tok of [mallory.token, await sso('Mallory')]) {
      const chk = (await call(tok, 'GET', '/v1/access/check?console=demo')).json as { user: string; actions: Record<string, { allow: boolean }> };
      assert.match(chk.user, /^(sso:)?mallory$/);
      assert.equal(chk.actions.attach.allow, false, `${chk.user} attach`);
      assert.equal(chk.actions.spy.allow, true);
    }
    // access check names the kind; a user may check only themselves, and bob is not sso:bob.
    assert.equal((await call(ssoBob, 'GET', '/v1/access/check?console=demo&user=SSO:Bob')).status, 200);
    assert.equal((await call(ssoBob, 'GET', '/v1/access/check?console=demo&user=bob')).status, 403);
    const badUser = await call(admin, 'GET', '/v1/access/check?console=demo&user=relay:edge1');
    assert.equal(badUser.status, 400);
    assert.match((badUser.json as unknown as ApiError).error.message, /^user: relay:edge1 is a relay, not a user/);

    // who and the audit: token alice and SSO alice on one console are two people.
    const wsBase = cloud.url.replace(/^http/, 'ws');
    await until('demo listed up', async () => ((await call(admin, 'GET', '/v1/consoles/demo')).json.state === 'up'));
    const a1 = await WsPeer.open(`${wsBase}/v1/session`, alice.token);
    a1.send({ t: 'attach', c: 'demo', mode: 'rw', tail: 0 });
    await a1.next((m) => m.t === 'attached' && m.mode === 'rw');
    const a2 = await WsPeer.open(`${wsBase}/v1/session`, ssoAlice);
    a2.send({ t: 'attach', c: 'demo', mode: 'force', tail: 0 });
    const att = await a2.next((m) => m.t === 'attached');
    assert.equal(att.user, 'sso:alice');
    await a2.next((m) => m.t === 'attached' && m.mode === 'rw');
    a2.send({ t: 'in', d: Buffer.from('hello from sso\n').toString('base64') });
    await a2.next((m) => m.t === 'out' && Buffer.from(String(m.d), 'base64').toString().includes('hello from sso'));
    const viewers = ((await call(admin, 'GET', '/v1/consoles/demo')).json.viewers as { user: string; mode: string }[]);
    assert.deepEqual(viewers.map((v) => `${v.user}:${v.mode}`).sort(), ['alice:spy', 'sso:alice:rw']);
    const who = await run(['who', 'demo', '--url', cloud.url, '--token', admin], { XDG_CONFIG_HOME: tmpDir('identity-home') });
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^sso:alice\s+rw\s/m);
    assert.match(who.stdout, /^alice\s+spy\s/m);
    const records = (await call(admin, 'GET', '/v1/consoles/demo/audit')).json.records as { type: string; user?: string; detail?: string }[];
    assert.ok(records.some((r) => r.type === 'input' && r.user === 'sso:alice'), JSON.stringify(records.slice(-6)));
    assert.ok(records.some((r) => r.type === 'lock.force' && r.user === 'sso:alice'));
    assert.ok(records.some((r) => r.type === 'lock.bumped' && r.user === 'alice' && r.detail === 'by sso:alice'));
    assert.ok(!records.some((r) => r.type === 'input' && r.user === 'alice'), 'nothing typed is put on token alice');
    a1.close();
    a2.close();

    // Token names: the API and `token create --data` say the same about a bad one, and store nothing.
    for (const name of ['relay:edge9', '@sre', 'sso:bob', 'b\u043eb']) {
      const api = await call(admin, 'POST', '/v1/tokens', { kind: 'user', name });
      assert.equal(api.status, 400, JSON.stringify(api.json));
      const apiMsg = (api.json as unknown as ApiError).error.message;
      assert.match(apiMsg, /^name: /);
      const direct = await run(['token', 'create', '--user', name, '--data', data]);
      assert.equal(direct.code, 2, direct.stderr);
      assert.equal(direct.stderr.trim(), `cloudcons: ${apiMsg}`);
      assert.equal(direct.stdout.length, 0, 'no token printed');
      const relayDirect = await run(['relay-token', 'create', name, '--data', data]);
      assert.equal(relayDirect.code, 2, relayDirect.stderr);
    }
    const made = await run(['token', 'create', '--user', 'Carol', '--data', data]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /created user token \w+ for carol /);
    assert.equal((await call(made.stdout.trim(), 'GET', '/v1/whoami')).json.name, 'carol');
    const names = ((await call(admin, 'GET', '/v1/tokens')).json.tokens as { name: string }[]).map((t) => t.name);
    assert.ok(!names.some((n) => /[:\u0400-\u04ff]|^@/.test(n)), `no bad name stored: ${names.join(', ')}`);
    await relay.kill();
  } finally {
    await idp.stop();
  }
});
