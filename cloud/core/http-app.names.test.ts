// The HTTP app without a socket (app.request): console names checked in one place before any route
// or store sees them, `Cache-Control: no-store` on every /v1 answer (errors too), and a verify
// that reports an unreadable head for its console only.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CloudCore } from './core.ts';
import { createHttpApp } from './http-app.ts';
import { embeddedPorts } from '../server/embedded-ports.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';

after(cleanup);

async function setup() {
  const dir = path.join(tmpDir('http-app'), 'data'); // its parent holds nothing else: walked whole below
  const { ports, close } = embeddedPorts(dir, { send: async () => true, close: async () => {} });
  const core = new CloudCore(ports);
  const app = createHttpApp(core, ports, { maxBodyBytes: 1024 });
  const { token } = await ports.tokens.create({ kind: 'user', name: 'root', admin: true });
  const auth = { authorization: `Bearer ${token}` };
  const req = (p: string, init: RequestInit = {}) => app.request(p, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
  return { dir, ports, core, app, req, close };
}

/** Every file and folder under `dir`. */
function walk(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f)).sort();
}

test('a console name that is not one is a 400 with the rule at every route and query that takes one; nothing is written', async () => {
  const { dir, req, close } = await setup();
  const before = walk(path.dirname(dir));
  const bad = ['..%2F..%2Fx', '..%2F', 'a%2Fb', '-rf', '_cloud', 'x'.repeat(129), 'a%20b'];
  const routes = (n: string) => [
    ['GET', `/v1/consoles/${n}`], ['POST', `/v1/consoles/${n}/down`], ['POST', `/v1/consoles/${n}/up`],
    ['GET', `/v1/consoles/${n}/replay`], ['PUT', `/v1/consoles/${n}/segments`], ['POST', `/v1/consoles/${n}/segments/upload-url`],
    ['POST', `/v1/consoles/${n}/segments/commit`], ['POST', `/v1/audit/reseal?console=${n}`], ['GET', `/v1/audit/verify?console=${n}`],
    ['GET', `/v1/access/check?console=${n}`], ['DELETE', `/v1/consoles/${n}`], ['POST', `/v1/consoles/${n}/move`],
  ];
  for (const n of bad) {
    for (const [method, p] of routes(n)) {
      if (n === '_cloud' && p.includes('/audit/')) continue; // the cloud's own stream is a chain of its own
      const r = await req(p, { method, ...(method === 'GET' ? {} : { body: '{}', headers: { 'content-type': 'application/json' } }) });
      const body = await r.json() as { error: { code: string; message: string } };
      assert.equal(r.status, 400, `${method} ${p}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'CC_ERR_BAD_PARAMETER');
      assert.match(body.error.message, /^console .*: must be 1 to 128 letters, digits or \. _ : @ -, starting with a letter or digit$/, `${method} ${p}`);
    }
  }
  assert.match((await (await req('/v1/audit/reseal', { method: 'POST' })).json() as { error: { message: string } }).error.message, /^console: required/);
  assert.deepEqual(walk(path.dirname(dir)), before, 'no file or folder was made');
  // The cloud's own stream where it is meant: its audit, its chain.
  assert.equal((await req('/v1/consoles/_cloud/audit')).status, 200);
  assert.equal((await req('/v1/audit/verify?console=_cloud')).status, 200);
  close();
});

test('every /v1 answer carries Cache-Control: no-store, errors included; /healthz and the web page are not API answers', async () => {
  const { req, app, close } = await setup();
  const answers = [
    await req('/v1/whoami'), await req('/v1/tokens', { method: 'POST', body: JSON.stringify({ name: 'bob' }), headers: { 'content-type': 'application/json' } }),
    await req('/v1/consoles/_cloud/audit'), await req('/v1/consoles/web01/replay'), await req('/v1/grep?pattern=x'), await req('/v1/audit/verify'),
    await app.request('/v1/auth/config'), await app.request('/v1/whoami'), await req('/v1/nothing'), await req('/v1/consoles/a%2Fb'),
    await req('/v1/access', { method: 'PUT', body: 'x'.repeat(2000), headers: { 'content-type': 'application/json' } }),
  ];
  assert.deepEqual(answers.map((r) => r.status), [200, 201, 200, 404, 200, 200, 200, 401, 404, 400, 413]);
  for (const r of answers) assert.equal(r.headers.get('cache-control'), 'no-store', `${r.url} ${r.status}`);
  assert.equal((await app.request('/healthz')).headers.get('cache-control'), null);
  close();
});

test('verify: a head that is not JSON reports that console as broken (naming the file); every other console still verifies', async () => {
  const { dir, req, core, close } = await setup();
  for (const c of ['web01', 'web02', 'web03']) await core.auditEvent(c, 'export', 'root', 'x');
  fs.writeFileSync(path.join(dir, 'audit-heads', 'web02.json'), 'not a head');
  const r = await req('/v1/audit/verify');
  assert.equal(r.status, 200);
  const body = await r.json() as { ok: boolean; consoles: { console: string; ok: boolean; broken?: { problem: string; detail: string } }[] };
  assert.equal(body.ok, false);
  const by = Object.fromEntries(body.consoles.map((x) => [x.console, x]));
  assert.deepEqual([by.web01.ok, by.web02.ok, by.web03.ok], [true, false, true]);
  assert.equal(by.web02.broken?.problem, 'unreadable head');
  assert.match(by.web02.broken!.detail, /audit-heads\/web02\.json is unreadable: not JSON: "not a head"/);
  close();
});

test('an answer goes out only after the audit store settled (the head\'s last move of an append, on DynamoDB)', async () => {
  const { ports, req, close } = await setup();
  let release!: () => void;
  ports.audit.settle = () => new Promise<void>((r) => { release = r; });
  let done = false;
  const answer = Promise.resolve(req('/v1/whoami')).then((r) => { done = true; return r; });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(done, false);
  release();
  assert.equal((await answer).status, 200);
  close();
});
