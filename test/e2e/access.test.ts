// Access rules end to end: a real cloud process, a real relay process, every role x every action
// through the real HTTP API and WebSocket endpoint, allowed and denied; relay assignment and
// impersonation; token expiry and revocation; `cloudcons access check`; the audit of it all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { cleanup, cloudcons, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);

const ACTIONS = ['list', 'spy', 'attach', 'force', 'break', 'replay', 'export', 'audit', 'down', 'up'] as const;
type Act = typeof ACTIONS[number];

const RULES = {
  admins: ['@wheel'],
  groups: { wheel: ['root'], ops: ['olive'], auditors: ['audrey'] },
  rules: [
    { consoles: 'lab*', who: '@ops', allow: 'rw' },
    { consoles: '*', who: 'reader', allow: 'ro' },
    { consoles: '*', who: '@auditors', allow: 'audit' },
    { consoles: 'lab*', who: 'mgr', allow: 'manage' },
    { consoles: '*', who: 'mallory', allow: 'rw' },
    { consoles: 'lab1', who: 'mallory', deny: ['force', 'break', 'export'] },
  ],
  relays: { edge1: ['lab*'] },
};

// Written out by hand (not computed by acl.ts, which is what is under test).
const Y = true, N = false;
const EXPECT: Record<string, Record<Act, boolean>> = {
  root:    { list: Y, spy: Y, attach: Y, force: Y, break: Y, replay: Y, export: Y, audit: Y, down: Y, up: Y },
  olive:   { list: Y, spy: Y, attach: Y, force: Y, break: Y, replay: Y, export: Y, audit: N, down: N, up: N },
  reader:  { list: Y, spy: Y, attach: N, force: N, break: N, replay: Y, export: Y, audit: N, down: N, up: N },
  audrey:  { list: Y, spy: N, attach: N, force: N, break: N, replay: N, export: N, audit: Y, down: N, up: N },
  mgr:     { list: Y, spy: N, attach: N, force: N, break: N, replay: N, export: N, audit: N, down: Y, up: Y },
  mallory: { list: Y, spy: Y, attach: Y, force: N, break: N, replay: Y, export: N, audit: N, down: N, up: N },
  nobody:  { list: N, spy: N, attach: N, force: N, break: N, replay: N, export: N, audit: N, down: N, up: N },
};

/** Opens a session WebSocket, sends attach, resolves with every message up to the answer. */
function session(wsUrl: string, token: string, c: string, mode: 'spy' | 'rw' | 'force') {
  const ws = new WebSocket(`${wsUrl}/v1/session`, { headers: { authorization: `Bearer ${token}` } });
  const msgs: { t: string; [k: string]: unknown }[] = [];
  ws.on('message', (raw) => msgs.push(JSON.parse(raw.toString())));
  ws.on('open', () => ws.send(JSON.stringify({ v: 1, t: 'attach', c, mode, tail: 0 })));
  ws.on('error', () => {});
  const answer = until(`answer to attach ${mode}`, () => msgs.find((m) => m.t === 'attached' || m.t === 'error'));
  const closed = new Promise<void>((r) => ws.on('close', () => r()));
  return { ws, msgs, answer, close: async () => { ws.close(); await closed; } };
}

test('access rules: every role x every action through HTTP and WebSocket; relays; tokens; access check; audit', { timeout: 180_000 }, async () => {
  const dir = tmpDir('access');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data);
  const wsUrl = cloud.url.replace(/^http/, 'ws');
  const seen: string[] = []; // every API answer, to look for secrets in
  const call = async (token: string, method: string, p: string, body?: unknown) => {
    const r = await fetch(cloud.url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await r.text();
    seen.push(text);
    return { status: r.status, text };
  };
  const admin = cloud.adminToken;
  const mk = async (kind: 'user' | 'relay', name: string, extra: Record<string, unknown> = {}) => {
    const r = await call(admin, 'POST', '/v1/tokens', { kind, name, ...extra });
    assert.equal(r.status, 201, r.text);
    return JSON.parse(r.text) as { token: string; id: string; expires?: number };
  };

  // The rules go in through the CLI, checked first: a broken file is refused and nothing changes.
  const env = { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: admin };
  const run = async (args: string[], e = env) => { const p = cloudcons(args, e); const code = await new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1))); return { code, out: p.out, err: p.err }; };
  fs.writeFileSync(path.join(dir, 'bad.yaml'), 'rules:\n  - who: x\n    allow: fly\n');
  const bad = await run(['access', 'set', path.join(dir, 'bad.yaml')]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /rules\.0\.allow: a role \(ro, rw, audit, manage, all\) or an action/);
  assert.match((await run(['access', 'show'])).out, /no access rules are set/);
  fs.writeFileSync(path.join(dir, 'access.yaml'), JSON.stringify(RULES));
  const set = await run(['access', 'set', path.join(dir, 'access.yaml')]);
  assert.equal(set.code, 0, set.err);
  assert.match(set.out, /access rules version 1 stored \(6 rules\)/);

  // A relay assigned lab* publishes lab1; other1 in its config is refused.
  const edge1 = await mk('relay', 'edge1');
  // lab2: a BMC-like console with an inline password (its peer is not there): the secret must not leak.
  const SECRET = 'S3cr3t-bmc-pw-4711';
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  lab1: { type: exec, command: cat }\n  other1: { type: exec, command: cat }\n  lab2: { type: ssh, host: 127.0.0.1, port: 1, user: root, password: '${SECRET}' }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', edge1.token]);
  await relay.waitFor(/not assigned to relay edge1/);
  await until('lab1 up', async () => JSON.parse((await call(admin, 'GET', '/v1/consoles/lab1')).text).state === 'up');
  assert.equal((await call(admin, 'GET', '/v1/consoles/other1')).status, 404, 'a console its relay may not publish is not there');

  // Another relay's token cannot say hello as edge1.
  const edge2 = await mk('relay', 'edge2');
  const imp = new WebSocket(`${wsUrl}/v1/relay`, { headers: { authorization: `Bearer ${edge2.token}` } });
  const impMsgs: { t: string; message?: string }[] = [];
  imp.on('message', (raw) => impMsgs.push(JSON.parse(raw.toString())));
  await new Promise((r) => imp.on('open', r));
  imp.send(JSON.stringify({ v: 1, t: 'hello', relay: 'edge1', boot: 'x', consoles: [{ name: 'lab1', type: 'exec', state: 'up', since: 1 }] }));
  await until('impersonation refused', () => impMsgs.some((m) => m.t === 'error' && /this token belongs to relay edge2, but the relay says it is edge1/.test(m.message!)));
  imp.close();
  assert.equal(JSON.parse((await call(admin, 'GET', '/v1/consoles/lab1')).text).relay, 'edge1');

  const tokens: Record<string, string> = { root: (await mk('user', 'root')).token };
  for (const u of Object.keys(EXPECT)) if (u !== 'root') tokens[u] = (await mk('user', u)).token;

  const got: Record<string, Record<Act, boolean>> = {};
  for (const [user, want] of Object.entries(EXPECT)) {
    const t = tokens[user];
    const g = {} as Record<Act, boolean>;
    // list: in the listing, and the console itself (404 otherwise: its name is not given away).
    const ls = JSON.parse((await call(t, 'GET', '/v1/consoles')).text) as { consoles: { name: string }[] };
    const one = await call(t, 'GET', '/v1/consoles/lab1');
    g.list = ls.consoles.some((c) => c.name === 'lab1');
    assert.equal(one.status, g.list ? 200 : 404, `${user} GET console: ${one.text}`);
    assert.ok(!ls.consoles.some((c) => c.name === 'other1'));
    // spy, attach, force, break over the WebSocket.
    const spy = session(wsUrl, t, 'lab1', 'spy');
    const sa = await spy.answer;
    g.spy = sa.t === 'attached';
    await spy.close();
    const rw = session(wsUrl, t, 'lab1', 'rw');
    const ra = await rw.answer;
    g.attach = ra.t === 'attached' && ra.mode === 'rw';
    if (g.attach) {
      // break: the writer asks; refused with a notice or sent (the relay answers either way).
      rw.ws.send(JSON.stringify({ v: 1, t: 'break', seq: '1' }));
      const n = await until('break answered', () => rw.msgs.find((m) => m.t === 'notice' && /break/.test(String(m.text))));
      g.break = !/break not sent/.test(String(n.text));
      // typing works for a writer: cat echoes it back.
      rw.ws.send(JSON.stringify({ v: 1, t: 'in', d: Buffer.from(`hi-${user}\n`).toString('base64') }));
      await until(`${user}'s input echoed`, () => rw.msgs.some((m) => m.t === 'out' && Buffer.from(String(m.d), 'base64').toString().includes(`hi-${user}`)));
    } else {
      g.break = false;
      if (ra.t === 'attached') assert.match(String(rw.msgs.find((m) => m.t === 'notice')?.text), /you may not write to lab1/);
    }
    await rw.close();
    const force = session(wsUrl, t, 'lab1', 'force');
    const fa = await force.answer;
    g.force = fa.t === 'attached' && fa.mode === 'rw';
    await force.close();
    // replay, export, audit over HTTP: 200, else 403 (or 404 for who may not even list it).
    const status = async (p: string) => { const r = await call(t, 'GET', p); assert.ok([200, 403, 404].includes(r.status), `${user} ${p}: ${r.status} ${r.text}`); if (r.status !== 200) assert.equal(r.status, g.list ? 403 : 404, `${user} ${p}: ${r.text}`); return r.status === 200; };
    g.replay = await status('/v1/consoles/lab1/replay?tail=5');
    g.export = await status('/v1/consoles/lab1/replay?from=0&format=chunks&export=1');
    g.audit = await status('/v1/consoles/lab1/audit?limit=5');
    const down = await call(t, 'POST', '/v1/consoles/lab1/down');
    g.down = down.status === 200;
    if (g.down) await until('lab1 down', async () => JSON.parse((await call(admin, 'GET', '/v1/consoles/lab1')).text).state === 'down');
    const up = await call(t, 'POST', '/v1/consoles/lab1/up');
    g.up = up.status === 200;
    if (!g.up && g.down) await call(admin, 'POST', '/v1/consoles/lab1/up');
    await until('lab1 up again', async () => JSON.parse((await call(admin, 'GET', '/v1/consoles/lab1')).text).state === 'up');
    got[user] = g;
    assert.deepEqual(g, want, `${user}: what the endpoints allowed`);
  }
  assert.deepEqual(got, EXPECT);

  // Only admins manage tokens and rules; a user sees and revokes their own tokens.
  assert.equal((await call(tokens.olive, 'POST', '/v1/tokens', { kind: 'user', name: 'x' })).status, 403);
  assert.equal((await call(tokens.olive, 'PUT', '/v1/access', { doc: {} })).status, 403);
  assert.equal((await call(tokens.olive, 'GET', '/v1/access')).status, 403);
  const mine = JSON.parse((await call(tokens.olive, 'GET', '/v1/tokens')).text).tokens as { name: string }[];
  assert.deepEqual([...new Set(mine.map((x) => x.name))], ['olive']);

  // access check explains; a user may check only themselves.
  const chk = await run(['access', 'check', 'mallory', 'lab1']);
  assert.equal(chk.code, 0, chk.err);
  assert.match(chk.out, /force\s+DENY\s+denied by rule 6/);
  assert.match(chk.out, /attach\s+allow\s+allowed by rule 5/);
  assert.equal((await run(['access', 'check', 'mallory', 'lab1', '--action', 'force'])).code, 1);
  assert.match((await run(['access', 'check', 'eve', 'lab1', '--group', 'ops', '--action', 'attach'])).out, /allow\s+allowed by rule 1/);
  const self = await run(['access', 'check', 'reader', 'lab1'], { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: tokens.olive });
  assert.notEqual(self.code, 0);
  assert.match(self.err, /may not check the access of reader: only admins may/);

  // An expiry past what a date can show is refused before anything is stored (it once made a
  // token, then failed writing the audit record: a 500 and a token nobody was told about).
  const before = (await call(admin, 'GET', '/v1/tokens')).text;
  const far = await call(admin, 'POST', '/v1/tokens', { kind: 'user', name: 'far', expires: 2 ** 53 });
  assert.equal(far.status, 400, far.text);
  assert.match(far.text, /expires: a time in the future up to 9999-12-31/);
  assert.equal((await call(admin, 'GET', '/v1/tokens')).text, before);
  assert.equal((await call(admin, 'POST', '/v1/tokens', { kind: 'user', name: 'far', expires: Date.UTC(9999, 11, 31) })).status, 201);

  // Tokens: a revoked one is refused at once, saying so; an expired one likewise.
  const temp = await mk('user', 'temp', { expires: Date.now() + 1500 });
  assert.equal((await call(temp.token, 'GET', '/v1/whoami')).status, 200);
  const rev = await run(['token', 'revoke', JSON.parse((await call(admin, 'POST', '/v1/tokens', { kind: 'user', name: 'gone' })).text).id]);
  assert.equal(rev.code, 0, rev.err);
  assert.match(rev.out, /gone\s+.*revoked .* by admin/);
  await until('temp expired', async () => (await call(temp.token, 'GET', '/v1/whoami')).status === 401, 5000);
  assert.match((await call(temp.token, 'GET', '/v1/consoles')).text, /expired at/);
  const list = await run(['token', 'list']);
  assert.match(list.out, /temp\s+.*expired/);
  // A connection open when its token is revoked is closed by the revocation (core.tokenRevoked).
  const late = await mk('user', 'reader', { expires: null }); // a second token of reader's (ro)
  const lateS = session(wsUrl, late.token, 'lab1', 'spy');
  assert.equal((await lateS.answer).t, 'attached');
  lateS.ws.send(JSON.stringify({ v: 1, t: 'ping', id: 3 }));
  await until('pong before the revocation', () => lateS.msgs.some((m) => m.t === 'pong'));
  const closed = new Promise<number>((r) => lateS.ws.once('close', (code) => r(code)));
  assert.equal((await run(['token', 'revoke', late.id])).code, 0);
  assert.equal(await closed, 4001);
  assert.match(String(lateS.msgs.find((m) => m.t === 'error')?.message), new RegExp(`your token ${late.id} was revoked at .* by admin: sign in again`));
  const nope = await fetch(`${cloud.url}/v1/consoles`, { headers: { authorization: 'Bearer ccu_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
  assert.equal(nope.status, 401);

  // The audit: denials, token and rule changes, sign-ins and failures, exports.
  const lab = JSON.parse((await call(admin, 'GET', '/v1/consoles/lab1/audit')).text).records as { type: string; user?: string; detail?: string }[];
  assert.ok(lab.some((r) => r.type === 'access.denied' && r.user === 'reader' && /^force|^replay|^export|^audit|^down/.test(r.detail ?? '') ), 'a denial on the console');
  assert.ok(lab.some((r) => r.type === 'lock.denied' || (r.type === 'break.denied' && r.user === 'mallory')), 'mallory\'s break refused');
  assert.ok(lab.some((r) => r.type === 'export' && r.user === 'olive'));
  const cl = JSON.parse((await call(admin, 'GET', '/v1/consoles/_cloud/audit')).text).records as { type: string; user?: string; detail?: string }[];
  for (const t of ['access.change', 'token.create', 'token.revoke', 'auth.signin', 'auth.failure', 'auth.ended', 'relay.refused', 'relay.name']) assert.ok(cl.some((r) => r.type === t), `${t} in the cloud stream`);
  assert.ok(cl.some((r) => r.type === 'auth.failure' && /expired at/.test(r.detail ?? '')));
  assert.equal((await call(tokens.olive, 'GET', '/v1/consoles/_cloud/audit')).status, 403);

  // The BMC password is in no API answer, audit record, log line or process list.
  assert.equal(JSON.parse((await call(admin, 'GET', '/v1/consoles/lab2')).text).type, 'ssh');
  await call(admin, 'GET', '/v1/consoles/lab2/audit');
  await call(admin, 'GET', '/v1/consoles/lab2/replay?from=0');
  const ps = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => { try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'); } catch { return ''; } });
  for (const [where, text] of [['API answers', seen.join('\n')], ['relay log', relay.out + relay.err], ['cloud log', cloud.proc.out + cloud.proc.err], ['process list', ps.join('\n')],
    ['audit files', fs.readdirSync(path.join(data, 'audit'), { recursive: true }).map((f) => { try { return fs.readFileSync(path.join(data, 'audit', String(f)), 'utf8'); } catch { return ''; } }).join('\n')]] as const) {
    assert.ok(!text.includes(SECRET), `the BMC password shows in the ${where}`);
  }

  // Reseal is for admins, and refused on an intact chain.
  assert.equal((await call(tokens.olive, 'POST', '/v1/audit/reseal?console=lab1')).status, 403);
  const rs = await call(admin, 'POST', '/v1/audit/reseal?console=lab1');
  assert.equal(rs.status, 409, rs.text);
  assert.match(rs.text, /ends where its head proves .*nothing to reseal/);

  // Rotating a relay's token: a second token for edge1 works beside the first; once the first is
  // revoked, a new connection with it is refused and the second one still publishes.
  const edge1b = await mk('relay', 'edge1');
  assert.equal((await run(['token', 'revoke', edge1.id])).code, 0);
  const old = await new Promise<number>((r) => { const w = new WebSocket(`${wsUrl}/v1/relay`, { headers: { authorization: `Bearer ${edge1.token}` } }); w.on('unexpected-response', (_q, res) => r(res.statusCode ?? 0)); w.on('open', () => { w.close(); r(101); }); w.on('error', () => {}); });
  assert.equal(old, 401);
  const fresh = new WebSocket(`${wsUrl}/v1/relay`, { headers: { authorization: `Bearer ${edge1b.token}` } });
  const freshMsgs: { t: string }[] = [];
  fresh.on('message', (raw) => freshMsgs.push(JSON.parse(raw.toString())));
  await new Promise((r) => fresh.on('open', r));
  fresh.send(JSON.stringify({ v: 1, t: 'hello', relay: 'edge1', boot: 'rotated', consoles: [{ name: 'lab1', type: 'exec', state: 'up', since: 1 }] }));
  await until('welcome with the new token', () => freshMsgs.some((m) => m.t === 'welcome'));
  fresh.close();
  relay.kill();
});
