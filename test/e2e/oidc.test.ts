// Single sign-on end to end: a cloud process started with --oidc-issuer pointing at an issuer this
// test runs (test/oidc-issuer.ts), a relay with a shell console, and users who present ID tokens
// (JWTs) instead of cloudcons tokens: over HTTP, on a session WebSocket, and through the CLI.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { cleanup, cloudcons, createToken, startCloud, tmpDir, until } from '../helpers.ts';
import { startTestIssuer } from '../oidc-issuer.ts';

after(cleanup);

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const p = cloudcons(args, env);
  const code = await new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1)));
  return { code, out: p.out, err: p.err };
}

test('OIDC: ID tokens over HTTP, a WebSocket attach and the CLI; bad tokens get 401 saying why', { timeout: 120_000 }, async () => {
  const idp = await startTestIssuer();
  const dir = tmpDir('oidc');
  const data = path.join(dir, 'data');
  try {
    const cloud = await startCloud(data, 0, { args: ['--oidc-issuer', idp.url, '--oidc-audience', idp.clientId, '--oidc-admin-group', 'console-admins', '--oidc-admin-group', 'root'] });
    await cloud.proc.waitFor(/oidc: accepting ID tokens from/);
    const relayTok = createToken(data, 'relay', 'edge1');
    fs.writeFileSync(path.join(dir, 'relay.yaml'), "relay: { name: edge1 }\nconsoles:\n  demo: { type: exec, command: [/bin/sh], env: { PS1: 'demo$ ' } }\n");
    const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
    await relay.waitFor(/console demo up/);

    const alice = await idp.sign(); // sso-alice, groups ops + console-admins
    const bob = await idp.sign({ sub: 'u-2002', preferred_username: 'sso-bob', groups: ['ops'] });
    const get = (p: string, tok?: string) => fetch(`${cloud.url}${p}`, { headers: tok ? { authorization: `Bearer ${tok}` } : {} });

    // HTTP: who, and the console list.
    const who = await (await get('/v1/whoami', alice)).json();
    const exp = (JSON.parse(Buffer.from(alice.split('.')[1], 'base64url').toString()) as { exp: number }).exp;
    assert.deepEqual(who, { kind: 'user', name: 'sso:sso-alice', admin: true, tokenId: `oidc:${idp.url}#u-1001`, groups: ['ops', 'console-admins'], via: 'oidc', expires: exp * 1000 });
    assert.equal(((await (await get('/v1/whoami', bob)).json()) as { admin: boolean }).admin, false);
    await until('demo listed for an SSO user', async () => {
      const r = await get('/v1/consoles', bob);
      assert.equal(r.status, 200, await r.clone().text());
      return ((await r.json()) as { consoles: { name: string; state: string }[] }).consoles.find((c) => c.name === 'demo' && c.state === 'up');
    });
    // The web viewer's sign-in settings need no token and hold no secret.
    assert.deepEqual(await (await get('/v1/auth/config')).json(), { oidc: {
      issuer: idp.url, clientId: idp.clientId, authorizationEndpoint: `${idp.url}/authorize`, tokenEndpoint: `${idp.url}/token`, scopes: 'openid profile email',
    } });

    // Bad JWTs: 401 with the reason.
    const now = Math.floor(Date.now() / 1000);
    for (const [tok, re] of [
      [await idp.sign({ iat: now - 7200, exp: now - 3600 }), /^token expired at /],
      [await idp.sign({ aud: 'grafana' }), /^wrong audience: the token is for "grafana"/],
      [alice.slice(0, -4) + (alice.endsWith('AAAA') ? 'BBBB' : 'AAAA'), /^signature does not verify/],
      [await idp.sign({ preferred_username: undefined }), /^token has no preferred_username claim/],
    ] as const) {
      const r = await get('/v1/consoles', tok);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(r.status, 401, body.error.message);
      assert.equal(body.error.code, 'CC_ERR_UNAUTHORIZED');
      assert.match(body.error.message, re);
    }
    // cloudcons tokens keep working beside SSO.
    assert.equal(((await (await get('/v1/whoami', cloud.adminToken)).json()) as { name: string }).name, 'admin');

    // A session WebSocket with an ID token: attach read-write, type, see the answer; audited under the SSO name (sso:NAME).
    const ws = new WebSocket(`${cloud.url.replace(/^http/, 'ws')}/v1/session`, { headers: { authorization: `Bearer ${alice}` } });
    let seen = '';
    const msgs: { t: string; mode?: string; user?: string }[] = [];
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString());
      msgs.push(m);
      if (m.t === 'out' || m.t === 'history') seen += Buffer.from(m.d, 'base64').toString();
    });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    ws.send(JSON.stringify({ v: 1, t: 'attach', c: 'demo', mode: 'rw', tail: 10 }));
    await until('attached read-write', () => msgs.find((m) => m.t === 'attached' && m.mode === 'rw'));
    ws.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from('echo sso-$((6*7))\n').toString('base64') }));
    await until('the shell answered', () => /\nsso-42/.test(seen), 15_000);
    ws.close();
    const audit = (await (await get('/v1/consoles/demo/audit', alice)).json()) as { records: { type: string; user?: string }[] };
    assert.ok(audit.records.some((r) => r.type === 'input' && r.user === 'sso:sso-alice'), JSON.stringify(audit.records.slice(-5)));

    // A WebSocket with a bad ID token is refused at the upgrade, with the reason.
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      const bad = new WebSocket(`${cloud.url.replace(/^http/, 'ws')}/v1/session`, { headers: { authorization: `Bearer ${bob.split('.').slice(0, 2).join('.')}.${'x'.repeat(20)}` } });
      bad.on('unexpected-response', (_req, res) => { let b = ''; res.on('data', (d: Buffer) => { b += d; }); res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b })); });
      bad.on('error', () => { /* after unexpected-response */ });
    });
    assert.equal(refused.status, 401);
    assert.match(refused.body, /signature does not verify/);
    // An ID token never opens the relay endpoint.
    const relayTry = await new Promise<number>((resolve) => {
      const r = new WebSocket(`${cloud.url.replace(/^http/, 'ws')}/v1/relay`, { headers: { authorization: `Bearer ${alice}` } });
      r.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      r.on('error', () => { /* after unexpected-response */ });
    });
    assert.equal(relayTry, 403);

    // The CLI: an ID token as --token, as CLOUDCONS_TOKEN, and stored by `login`.
    const home = tmpDir('oidc-home');
    const ls = await run(['ls', '--url', cloud.url, '--token', bob], { XDG_CONFIG_HOME: home });
    assert.equal(ls.code, 0, ls.err);
    assert.match(ls.out, /demo\s+up\s+exec\s+edge1/);
    const whoami = await run(['whoami'], { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: alice, XDG_CONFIG_HOME: home });
    assert.equal(whoami.code, 0, whoami.err);
    assert.match(whoami.out, /^sso:sso-alice \(admin\) on http/);
    assert.match(whoami.out, /^groups: ops, console-admins$/m);
    assert.match(whoami.out, new RegExp(`^signed in via OpenID Connect: ${idp.url}#u-1001$`, 'm'));
    const login = await run(['login', cloud.url, '--token', bob], { XDG_CONFIG_HOME: home, CLOUDCONS_URL: '', CLOUDCONS_TOKEN: '' });
    assert.equal(login.code, 0, login.err);
    assert.match(login.out, /logged in to .* as sso:sso-bob;/);
    const stored = await run(['ls', '--json'], { XDG_CONFIG_HOME: home, CLOUDCONS_URL: '', CLOUDCONS_TOKEN: '' });
    assert.equal(stored.code, 0, stored.err);
    assert.ok((JSON.parse(stored.out) as { name: string }[]).some((c) => c.name === 'demo'));
    const expired = await run(['ls', '--url', cloud.url, '--token', await idp.sign({ iat: now - 7200, exp: now - 3600 })], { XDG_CONFIG_HOME: home });
    assert.equal(expired.code, 3, 'not logged in');
    assert.match(expired.err, /cloudcons: token expired at .* \(sign in again for a fresh ID token\)/);
    assert.ok(!cloud.proc.err.includes(alice) && !cloud.proc.out.includes(alice), 'no ID token in the cloud log');
    await relay.kill();
  } finally {
    await idp.stop();
  }
});
