// A hostile relay (and a user with no rights) against a real cloud process and an honest relay
// process `edge1` with a pty console `ser1`, in the default configuration (no `relays:` rules).
// A console name belongs to the relay that registered it until an admin moves or removes it; a
// relay's claims (fences, sessions, times, output) are checked; what it can make the cloud audit or
// hold in memory is bounded; nobody else notices.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { encodeSegment } from '../../protocol/segment.ts';
import { cleanup, cli, openPtyPeer, until, type Proc } from '../helpers.ts';
import { assertResponsive, hostileRig, type HostileRig, type WsPeer } from '../hostile-rig.ts';

after(cleanup);

let rig: HostileRig;
let edge1: Proc;
let device: ReturnType<typeof openPtyPeer>;
let evil: WsPeer;
let admin: WsPeer;
let adminSession: string;
before(async () => {
  rig = await hostileRig('hrelay');
  edge1 = rig.relay;
  device = openPtyPeer(rig.pair.peer);
});

type Rec = { type: string; user?: string; detail?: string; session?: string; data?: string };
const json = async <T>(r: Response): Promise<T> => { if (!r.ok) throw new Error(`${r.status} ${await r.text()}`); return r.json() as Promise<T>; };
const auditOf = async (c: string) => (await json<{ records: Rec[] }>(await rig.as(rig.adminToken, `/v1/consoles/${c}/audit`))).records;
const consoleOf = async (c: string) => json<{ state: string; relay: string }>(await rig.as(rig.adminToken, `/v1/consoles/${c}`));
const info = (name: string, over: Record<string, unknown> = {}) => ({ name, type: 'exec', state: 'up', since: Date.now(), ...over });
const hello = (peer: WsPeer, consoles: Record<string, unknown>[]) => peer.send({ t: 'hello', relay: 'evil', boot: 'b', consoles });
/** Everything `peer` sent before this resolves has been handled by the cloud (it answers in order). */
let pingId = 1;
async function settled(peer: WsPeer): Promise<void> {
  const id = pingId++ * 7 + 1; // never a token re-check ping (a multiple of 3) would close nothing, but keep clear of them
  peer.send({ t: 'ping', id });
  await peer.next((m) => m.t === 'pong' && m.id === id, 30_000);
}
const asCli = (token: string, args: string[]) => cli(args, { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: token });
/** evil's connection (opened again if an earlier test closed it), with its own console evil1. */
async function evilWithConsole(): Promise<WsPeer> {
  if (!evil || evil.closed) evil = await rig.socket('relay', rig.evil);
  const from = evil.msgs.length;
  hello(evil, [info('evil1')]);
  await evil.next((m) => m.t === 'welcome', 10_000, from);
  return evil;
}
/** The admin's session on ser1 (attached if it is not yet). */
async function adminOnSer1(): Promise<void> {
  if (admin) return;
  admin = await rig.socket('session', rig.adminToken);
  admin.send({ t: 'attach', c: 'ser1', mode: 'rw' });
  adminSession = String((await admin.next((m) => m.t === 'attached')).session);
}

test('another relay cannot publish ser1 while edge1 is connected, nor after edge1 is killed: refused, audited, no input reaches it, none of its output is stored', async () => {
  evil = await rig.socket('relay', rig.evil);
  hello(evil, [info('ser1')]);
  const refused = await evil.next((m) => m.t === 'error' && /consoles refused/.test(String(m.message)));
  assert.equal(refused.message, 'consoles refused (ignored): ser1 (registered to relay edge1)');
  await until('the refusal in ser1\'s trail', async () => (await auditOf('ser1')).find((r) => r.type === 'relay.refused' && r.user === 'relay:evil'));

  await edge1.kill('SIGKILL');
  await until('ser1 down', async () => (await consoleOf('ser1')).state === 'down', 15_000);
  const before = await rig.stored();
  const from = evil.msgs.length;
  hello(evil, [info('ser1')]);
  await evil.next((m) => m.t === 'error' && /consoles refused/.test(String(m.message)), 10_000, from);
  assert.equal((await consoleOf('ser1')).relay, 'edge1');
  const trail = (await auditOf('ser1')).filter((r) => r.type === 'relay.refused');
  assert.match(trail.at(-1)!.detail!, /^relay evil tried to publish ser1, which belongs to relay edge1 \(not connected\): refused/);

  // The admin types a login and a password: none of it goes to evil.
  await adminOnSer1();
  admin.send({ t: 'in', d: Buffer.from('root\r').toString('base64') });
  admin.send({ t: 'in', d: Buffer.from('hunter2\r').toString('base64') });
  await admin.next((m) => m.t === 'notice' && /input not sent: console is down/.test(String(m.text)));
  // evil writes a fake prompt for ser1's history, and states.
  evil.send({ t: 'out', c: 'ser1', o: before?.end ?? 0, ts: Date.now(), d: Buffer.from('\r\nlogin: ').toString('base64') });
  evil.send({ t: 'console', info: info('ser1') });
  await settled(evil);
  await settled(admin);
  assert.deepEqual(evil.msgs.filter((m) => m.t === 'in'), [], 'no keystroke reached evil');
  const after1 = await rig.stored();
  assert.equal(after1?.end, before?.end);
  assert.ok(after1?.bytes.equals(before!.bytes), 'ser1\'s stored output is unchanged');
  assert.equal((await consoleOf('ser1')).state, 'down');
  const cloudTrail = (await auditOf('_cloud')).filter((r) => r.user === 'relay:evil' && r.type === 'relay.refused');
  assert.ok(cloudTrail.some((r) => /relay evil sent 'out' for console ser1, which belongs to relay edge1: ignored/.test(r.detail ?? '')));

  // edge1 comes back: ser1 is its again, up.
  edge1 = rig.startRelay();
  await rig.relayUp(edge1);
  assert.equal((await consoleOf('ser1')).relay, 'edge1');
});

test('a user with no rights sending two dozen 16 MiB segment uploads is refused before a byte of them is read: RSS stays put, /healthz stays fast', async () => {
  const put = (hold: boolean) => new Promise<{ status: string; ms: number; sent: number }>((resolve) => {
    const t0 = performance.now();
    const s = net.connect(rig.port, '127.0.0.1');
    let answer = '', sent = 0;
    const giveUp = setTimeout(() => { answer ||= 'no answer in 20 s'; s.destroy(); }, 20_000);
    const done = () => { clearTimeout(giveUp); resolve({ status: answer.split('\r\n')[0], ms: performance.now() - t0, sent }); };
    s.on('data', (d) => { answer += d.toString(); if (answer.includes('\r\n\r\n')) { s.destroy(); done(); } });
    s.on('error', () => done());
    s.on('close', () => done());
    s.write(`PUT /v1/consoles/ser1/segments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${rig.nobody}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${16 * 1024 * 1024}\r\n\r\n`);
    if (hold) return; // headers only: the body never comes
    const chunk = Buffer.alloc(256 * 1024, 0x5a);
    const pump = () => { while (sent < 16 * 1024 * 1024 && !s.destroyed) { sent += chunk.length; if (!s.write(chunk)) { s.once('drain', pump); return; } } };
    pump();
  });
  const rss0 = rig.rss();
  let peak = rss0;
  const sampler = setInterval(() => { try { peak = Math.max(peak, rig.rss()); } catch { /* exited */ } }, 20);
  const probe = await rig.health(10); // the attack lasts a second or two: at least 100 samples
  const [held, sending] = await Promise.all([Promise.all(Array.from({ length: 12 }, () => put(true))), Promise.all(Array.from({ length: 12 }, () => put(false)))]);
  await new Promise((r) => setTimeout(r, 1000));
  const health = await probe.stop();
  clearInterval(sampler);
  for (const r of [...held, ...sending]) assert.equal(r.status, 'HTTP/1.1 403 Forbidden');
  assert.ok(held.every((r) => r.ms < 5000), `answered without waiting for the body: ${held.map((r) => Math.round(r.ms)).join(', ')} ms`);
  const grew = (peak - rss0) / 2 ** 20;
  console.log(`# 24 x 16 MiB uploads by a user with no rights: cloud RSS ${(rss0 / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MB (+${grew.toFixed(0)}); /healthz p50 ${health.p50.toFixed(1)} ms p99 ${health.p99.toFixed(1)} ms max ${health.max.toFixed(1)} ms (${health.samples.length} samples); held requests answered in ${Math.round(Math.max(...held.map((r) => r.ms)))} ms at most`);
  assert.ok(grew < 64, `cloud RSS grew by ${grew.toFixed(0)} MB`);
  assertResponsive(health, 'during the uploads');
  // The refusals are on the record, rationed like failed sign-ins.
  const failures = (await auditOf('_cloud')).filter((r) => r.type === 'auth.failure' && /segment upload for ser1: a user token \(nobody\) cannot upload segments/.test(r.detail ?? ''));
  assert.ok(failures.length >= 1 && failures.length <= 24, `${failures.length} records`);
});

test('live output with a time of 1e300 is a bad frame naming it; nothing is stored', async () => {
  await evilWithConsole();
  const from = evil.msgs.length;
  evil.send({ t: 'out', c: 'evil1', o: 0, ts: 1e300, d: Buffer.from('x').toString('base64') });
  const err = await evil.next((m) => m.t === 'error', 10_000, from);
  assert.equal(err.code, 'CC_ERR_BAD_FRAME');
  assert.match(String(err.message), /^bad 'out' message: ts: must be a time in ms since the epoch from 0 to 253402300799999 \(9999-12-31\), got 1e\+300$/);
  await settled(evil);
  const replay = await rig.as(rig.adminToken, '/v1/consoles/evil1/replay?from=0&format=raw');
  assert.equal(replay.headers.get('x-cloudcons-end'), '0', 'nothing stored for evil1');
});

test('fences: 2^53-1 in a hello is a bad frame; a claim far above what the cloud handed out is refused and audited, and fencing goes on from the real one', async () => {
  if (!evil || evil.closed) evil = await rig.socket('relay', rig.evil);
  let from = evil.msgs.length;
  hello(evil, [info('evil1', { fence: Number.MAX_SAFE_INTEGER })]);
  const bad = await evil.next((m) => m.t === 'error', 10_000, from);
  assert.match(String(bad.message), /consoles\.0\.fence: must be a whole number from 0 to 281474976710656 \(2\^48\), got 9007199254740991/);
  from = evil.msgs.length;
  hello(evil, [info('evil1', { fence: 2 ** 48 })]);
  const refused = await evil.next((m) => m.t === 'error', 10_000, from);
  assert.match(String(refused.message), /^relay evil claimed to have seen fence 281474976710656 for evil1, but this cloud handed out at most 0 \(fenceClaimSlack 1000\): the claim is ignored/);
  assert.ok((await auditOf('evil1')).some((r) => r.type === 'relay.fence' && r.user === 'relay:evil'));
  assert.ok((await auditOf('_cloud')).some((r) => r.type === 'relay.fence' && /fence 281474976710656 for evil1/.test(r.detail ?? '')));
  const w = await rig.socket('session', rig.adminToken);
  w.send({ t: 'attach', c: 'evil1', mode: 'rw' });
  assert.equal((await w.next((m) => m.t === 'attached')).fence, 1);
  w.close();
});

test('a forged `rejected` naming the admin\'s session of ser1 tells the admin nothing and forges no record', async () => {
  await evilWithConsole();
  await adminOnSer1();
  const seen = admin.msgs.length;
  evil.send({ t: 'rejected', c: 'evil1', fence: 1, session: adminSession, what: 'in', reason: 'session expired: type your password again' });
  evil.send({ t: 'rejected', c: 'ser1', fence: 1, session: adminSession, what: 'in', reason: 'session expired' });
  evil.send({ t: 'break-sent', c: 'evil1', fence: 1, session: adminSession, seq: '1' });
  await settled(evil);
  await settled(admin);
  assert.deepEqual(admin.msgs.slice(seen).filter((m) => m.t === 'notice'), [], 'no notice reached the admin');
  for (const c of ['ser1', 'evil1']) assert.deepEqual((await auditOf(c)).filter((r) => r.type.endsWith('.dropped')), [], `no forged record in ${c}`);
  const ignored = (await auditOf('_cloud')).filter((r) => r.type === 'relay.ignored' && r.user === 'relay:evil');
  assert.equal(ignored.length, 2);
  assert.match(ignored[0].detail!, new RegExp(`relay evil sent 'rejected' for console evil1 naming session ${adminSession}, a session of another console: ignored`));
});

test('an audit flood from a relay leaves a bounded number of records and a summary of the rest', async () => {
  await evilWithConsole();
  const n = 5000;
  for (let i = 0; i < n; i++) evil.send({ t: 'event', c: 'evil1', what: 'flapping', detail: `flap ${i}` });
  await settled(evil);
  const kept = (await auditOf('evil1')).filter((r) => r.type === 'console.flapping').length;
  assert.ok(kept >= 2900 && kept <= 3100, `${kept} of ${n} flapping records written (relayAuditBurst 3000, then 600 a minute)`);
  const notes = () => auditOf('_cloud').then((rs) => rs.filter((r) => r.user === 'relay:evil' && r.type.startsWith('relay.audit')));
  assert.deepEqual((await notes()).map((r) => r.type), ['relay.audit.limited']);
  evil.close(); // leaving puts the count on the record
  const summary = await until('the summary', async () => (await notes()).find((r) => r.type === 'relay.audit.suppressed'));
  const m = /^(\d+) audit records caused by relay evil from .* were not written \(relayAuditsPerMin 600, relayAuditBurst 3000\): console\.flapping x(\d+)/.exec(summary.detail ?? '');
  assert.ok(m, summary.detail);
  assert.equal(Number(m[2]), n - kept);
});

test('2000 junk consoles: the relay\'s 1024th is the last registered, the rest refused with the limit named; console rm and move are an admin\'s; the audit page still loads', async () => {
  await evilWithConsole();
  const names = Array.from({ length: 2000 }, (_, i) => `junk${String(i).padStart(4, '0')}`);
  const errors: string[] = [];
  for (let i = 0; i < names.length; i += 250) {
    const from = evil.msgs.length;
    hello(evil, names.slice(i, i + 250).map((n) => info(n)));
    await evil.next((m) => m.t === 'welcome', 15_000, from);
    await settled(evil);
    errors.push(...evil.msgs.slice(from).filter((m) => m.t === 'error').map((m) => String(m.message)));
  }
  const all = (await json<{ consoles: { name: string; relay: string }[] }>(await rig.as(rig.adminToken, '/v1/consoles'))).consoles;
  assert.equal(all.filter((c) => c.relay === 'evil').length, 1024, 'evil1 and 1023 junk consoles');
  assert.ok(all.some((c) => c.name === 'junk1022') && !all.some((c) => c.name === 'junk1023'));
  assert.match(errors[0], /^relay evil has 1024 consoles registered, its limit \(maxConsolesPerRelay 1024\): \d+ new consoles refused: junk1023, junk1024, .* and \d+ more; an admin frees names with cloudcons console rm NAME$/);

  // console rm / move: admins only; rm refused while evil publishes the console.
  for (const args of [['console', 'rm', 'junk0000'], ['console', 'move', 'junk0001', '--relay', 'edge1']]) {
    const r = asCli(rig.reader, args);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /user reader may not (remove|move) console junk000[01]: only admins may/);
  }
  const busy = asCli(rig.adminToken, ['console', 'rm', 'junk0000']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /relay evil is connected and publishes it/);
  const moved = asCli(rig.adminToken, ['console', 'move', 'junk0001', '--relay', 'edge1']);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stdout.toString(), /console junk0001: moved to relay edge1/);
  await evil.next((m) => m.t === 'ctl' && m.c === 'junk0001' && m.op === 'down');
  evil.close();
  await until('evil\'s consoles down', async () => (await consoleOf('junk0000')).state === 'down');
  const rm = asCli(rig.adminToken, ['console', 'rm', 'junk0000']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout.toString(), /console junk0000: removed \(it was relay evil's; its output and audit are kept\)/);
  assert.equal((await rig.as(rig.adminToken, '/v1/consoles/junk0000')).status, 404);
  for (const [c, type] of [['junk0000', 'console.remove'], ['junk0001', 'console.move']]) {
    assert.ok((await auditOf(c)).some((r) => r.type === type && r.user === 'admin'), `${type} in ${c}'s trail`);
    assert.ok((await auditOf('_cloud')).some((r) => r.type === type && r.user === 'admin' && r.detail!.startsWith(`console ${c}:`)), `${type} in _cloud`);
  }

  // The web viewer's audit page across all of them (where chromium is installed).
  if (!fs.existsSync('/usr/bin/chromium')) return;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${rig.url}/#/audit`);
    await page.fill('#token', rig.adminToken);
    await page.click('button[type=submit]');
    const status = page.getByTestId('audit-status');
    await status.filter({ hasText: /^\d+ of \d+ records/ }).waitFor({ timeout: 120_000 });
    assert.doesNotMatch(await status.innerText(), /Cannot load/);
    await page.getByLabel('Which records').selectOption('all');
    await page.locator('tr.audit', { hasText: 'console.move' }).first().waitFor();
  } finally {
    await browser.close();
  }
});

test('a segment with other bytes over output stored live is refused with 409, audited, and stored output is unchanged', async () => {
  const start = (await rig.stored())!.end;
  device.write('AAAAYY');
  await until('AAAAYY stored live', async () => (await rig.stored())!.end >= start + 6);
  const before = (await rig.stored())!;
  assert.equal(before.bytes.subarray(start, start + 6).toString(), 'AAAAYY');
  // The owner's token (a relay that turned hostile, or one impersonated) uploads other bytes.
  const forged = await encodeSegment('ser1', [{ offset: start, ts: Date.now(), data: Buffer.from('ZZZZZZ') }]);
  const res = await rig.as(rig.relayToken, '/v1/consoles/ser1/segments', { method: 'PUT', body: forged, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 409);
  const msg = ((await res.json()) as { error: { message: string } }).error.message;
  assert.match(msg, new RegExp(`^segment ${start}-${start + 6} of ser1 (differs from the output stored live at|differs from the stored segment|overlaps the stored segment)`));
  const after1 = (await rig.stored())!;
  assert.equal(after1.bytes.subarray(start, start + 6).toString(), 'AAAAYY');
  const rec = (await auditOf('ser1')).find((r) => r.type === 'output.conflict');
  assert.equal(rec?.user, 'relay:edge1');
  assert.match(rec!.detail!, /the output stored first is kept \(relay edge1's upload refused\)$/);
  // evil cannot even try: ser1 is not its.
  const evilPut = await rig.as(rig.evil, '/v1/consoles/ser1/segments', { method: 'PUT', body: forged });
  assert.equal(evilPut.status, 403);
});
