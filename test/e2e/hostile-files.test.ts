// Issue 14, a hostile user, relay and file against the cloud's files, end to end with real
// processes (test/hostile-rig.ts): console names that would leave the audit folders, the data
// directory and the relay's spool under umask 000, a 15 KB path in a failed sign-in, caching of
// API answers, HSTS, and a head file edited by hand.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CloudTls } from '../../protocol/tls.ts';
import { cleanup, cli, cloudcons, looseModes, openPtyPeer, tmpDir, until } from '../helpers.ts';
import { hostileRig, type HostileRig } from '../hostile-rig.ts';

// Every process this file starts (cloud, relay, CLI) inherits it, as from a shell's `umask 000`.
process.umask(0);
let rig: HostileRig;
before(async () => { rig = await hostileRig('hostile-files', { relayArgs: ['--segment-ms', '1000', '--segment-bytes', '4096'] }); });
after(cleanup);

/** Paths under `root`, but those in folders that change on their own (live output, the spool). */
function files(root: string): string[] {
  const skip = new Set(['spool', 'hot', 'segments']);
  return fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => !f.split(path.sep).some((p) => skip.has(p)) && !f.endsWith('.tmp')).sort();
}

test('reseal and verify with a console name that is not one: 400 with the rule, nothing written anywhere', async () => {
  const marker = `cc-hostile-${randomBytes(4).toString('hex')}`;
  const before = files(rig.dir);
  const names = [`../../${marker}`, `../../../${marker}`, `..%2F..%2F${marker}`, '/etc/passwd', `a/../../${marker}`, `_cloud/../${marker}`, '..', '-rf', 'x'.repeat(129), ''];
  for (const n of names) {
    for (const [method, p] of [['POST', '/v1/audit/reseal'], ['GET', '/v1/audit/verify'], ['GET', '/v1/access/check']]) {
      const r = await rig.as(rig.adminToken, `${p}?console=${encodeURIComponent(n)}`, { method });
      const body = await r.json() as { error?: { code: string; message: string } };
      if (n === '' && p === '/v1/audit/verify') { assert.equal(r.status, 200, 'no console: every console'); continue; }
      assert.equal(r.status, 400, `${method} ${p} ${JSON.stringify(n)}: ${JSON.stringify(body)}`);
      assert.equal(body.error?.code, 'CC_ERR_BAD_PARAMETER');
      assert.match(body.error!.message, /^console.*(must be 1 to 128 letters, digits or \. _ : @ -, starting with a letter or digit|required)/);
    }
    const r = await rig.as(rig.adminToken, `/v1/consoles/${encodeURIComponent(n)}/audit`);
    assert.ok(r.status === 400 || (n === '' && r.status === 404) || n === '..', `${n}: ${r.status}`);
  }
  assert.deepEqual(files(rig.dir), before, 'no file or folder appeared or went');
  assert.equal(fs.existsSync(path.join(path.dirname(rig.dir), `${marker}.json`)), false);
  // Offline, the same rule (the cloud's data directory read directly).
  const off = cli(['audit', 'reseal', `../../${marker}`, '--data', rig.dataDir]);
  assert.equal(off.code, 2, off.stderr);
  assert.match(off.stderr, /console "\.\.\/\.\.\/cc-hostile-[0-9a-f]+": must be 1 to 128 letters/);
  assert.deepEqual(files(rig.dir), before);
});

test('under umask 000, the data directory and the spool hold no file or folder that group or others may use', async () => {
  for (const p of [rig.cloud, rig.relay]) assert.match(fs.readFileSync(`/proc/${p.child.pid}/status`, 'utf8'), /^Umask:\s+0000$/m, 'the processes really run with umask 000');
  // Output (hot tail, spool, sealed and uploaded segments) and audit (typed input).
  const dev = openPtyPeer(rig.pair.peer);
  const ws = await rig.socket('session', rig.adminToken);
  ws.send({ t: 'attach', c: 'ser1', mode: 'rw', tail: 0 });
  await ws.next((m) => m.t === 'attached');
  ws.send({ t: 'in', d: Buffer.from('secret typed line\r').toString('base64') });
  await until('the input at the device', () => dev.received().includes('secret typed line'));
  dev.write(`${'console output '.repeat(400)}\r\n`);
  await until('a segment stored', () => fs.existsSync(path.join(rig.dataDir, 'segments', 'logs', 'ser1')), 20_000);
  await until('the input audited', async () => ((await (await rig.as(rig.adminToken, '/v1/consoles/ser1/audit')).json()) as { records: { type: string }[] }).records.some((r) => r.type === 'input'));
  ws.close();
  const spool = path.join(rig.dir, 'spool');
  for (const d of [rig.dataDir, spool]) assert.ok(fs.readdirSync(d).length > 0, d);
  for (const want of ['audit', 'audit-heads', 'hot', 'segments', 'tokens.json', 'admin-token', 'access.json']) assert.ok(fs.existsSync(path.join(rig.dataDir, want)), want);
  assert.deepEqual(looseModes(rig.dataDir), []);
  assert.deepEqual(looseModes(spool), []);
});

test('an unauthenticated request with a 15 KB path writes a bounded auth.failure record that still says why', async () => {
  const long = `/v1/consoles/${'a'.repeat(15_000)}/audit`;
  const r = await fetch(`${rig.url}${long}`, { headers: { authorization: 'Bearer ccu_not-a-token-at-all-xxxxxxxx' } });
  assert.equal(r.status, 401);
  const recs = ((await (await rig.as(rig.adminToken, '/v1/consoles/_cloud/audit?limit=20')).json()) as { records: { type: string; detail?: string }[] }).records;
  const f = recs.filter((x) => x.type === 'auth.failure').at(-1)!;
  assert.ok(f.detail!.length <= 1024, `${f.detail!.length} characters`);
  assert.match(f.detail!, /^HTTP GET \/v1\/consoles\/a+\.\.\. \[cut: \d+ more characters\]: invalid or revoked token$/);
  const line = fs.readFileSync(path.join(rig.dataDir, 'audit', '_cloud.jsonl'), 'utf8').split('\n').filter(Boolean).at(-1)!;
  assert.ok(Buffer.byteLength(line) < 2048, `the stored line is ${Buffer.byteLength(line)} bytes`);
});

test('every /v1 answer says Cache-Control: no-store (a new token\'s secret, audit with typed input, errors); plain HTTP sends no HSTS', async () => {
  const answers = [
    await rig.as(rig.adminToken, '/v1/tokens', { method: 'POST', body: JSON.stringify({ name: 'carol' }), headers: { 'content-type': 'application/json' } }),
    await rig.as(rig.adminToken, '/v1/consoles/ser1/audit'), await rig.as(rig.adminToken, '/v1/consoles/ser1/replay?tail=5'),
    await rig.as(rig.adminToken, '/v1/whoami'), await rig.as(rig.adminToken, '/v1/tokens'), await rig.as(rig.adminToken, '/v1/audit/verify'),
    await rig.as(rig.reader, '/v1/consoles'), await rig.as(rig.nobody, '/v1/consoles/ser1/audit'), await rig.as(rig.reader, '/v1/access'),
    await fetch(`${rig.url}/v1/whoami`), await rig.as(rig.adminToken, '/v1/no-such-route'), await rig.as(rig.adminToken, '/v1/consoles/a%2Fb'),
  ];
  assert.deepEqual(answers.map((r) => r.status), [201, 200, 200, 200, 200, 200, 200, 404, 403, 401, 404, 400]);
  for (const r of answers) {
    assert.equal(r.headers.get('cache-control'), 'no-store', `${r.url}: ${r.status}`);
    assert.equal(r.headers.get('strict-transport-security'), null, 'not over plain HTTP');
  }
  assert.match(((await answers[0].json()) as { token: string }).token, /^ccu_/);
});

test('a cloud serving HTTPS sends HSTS on every answer: the viewer, the API, errors', async () => {
  const data = path.join(tmpDir('hostile-hsts'), 'data');
  const p = cloudcons(['cloud', '--data', data, '--port', '0', '--tls-self-signed']);
  const url = (await p.waitFor(/listening on (https:\/\/\S+)/))[1];
  const fingerprint = (await p.waitFor(/TLS certificate fingerprint: (SHA256:\S+)/))[1];
  const t = new CloudTls({ fingerprint });
  const admin = fs.readFileSync(path.join(data, 'admin-token'), 'utf8').trim();
  for (const [pth, auth] of [['/', false], ['/assets/none.js', false], ['/healthz', false], ['/v1/whoami', true], ['/v1/whoami', false], ['/v1/nothing', true]] as const) {
    const r = await t.fetch(`${url}${pth}`, { headers: auth ? { authorization: `Bearer ${admin}` } : {} });
    assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000', `${pth} ${r.status}`);
  }
  await p.kill();
});

test('a head file edited by hand: verify reports that console (unreadable head, naming the file), every other console still verifies', async () => {
  const head = path.join(rig.dataDir, 'audit-heads', 'ser1.json');
  const text = fs.readFileSync(head, 'utf8');
  fs.writeFileSync(head, text.replace('"seq":', '"seq":"'));
  const r = await rig.as(rig.adminToken, '/v1/audit/verify');
  assert.equal(r.status, 200);
  const v = await r.json() as { ok: boolean; consoles: { console: string; ok: boolean; broken?: { problem: string; detail: string } }[] };
  const by = Object.fromEntries(v.consoles.map((c) => [c.console, c]));
  assert.equal(v.ok, false);
  assert.deepEqual([by.ser1?.ok, by.ser1?.broken?.problem, by._cloud?.ok], [false, 'unreadable head', true]);
  assert.match(by.ser1.broken!.detail, /audit-heads\/ser1\.json is unreadable/);
  // Offline the same, one line each.
  const off = cli(['audit', 'verify', '--data', rig.dataDir]);
  assert.equal(off.code, 1, off.stderr);
  assert.match(off.stdout.toString(), /^_cloud: ok, /m);
  assert.match(off.stdout.toString(), /^ser1: BROKEN at seq \d+ .*: unreadable head: the audit chain head audit-heads\/ser1\.json is unreadable: /m);
  // Appends to ser1 fail closed: its input is refused, not forwarded unaudited.
  const ws = await rig.socket('session', rig.adminToken);
  ws.send({ t: 'attach', c: 'ser1', mode: 'rw', tail: 0 });
  const err = await ws.next((m) => m.t === 'error');
  assert.match(String(err.message), /the audit chain head audit-heads\/ser1\.json is unreadable/);
  ws.close();
  fs.writeFileSync(head, text);
});
