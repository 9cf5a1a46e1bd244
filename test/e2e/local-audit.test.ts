// The relay's local audit journal end to end (issue 17), with real cloud and relay processes and a
// serial console on a pty: records made while the cloud is down (the relay's test hook stands in
// for the SSH server) are on disk when record() returned and survive a SIGKILL of the relay; a
// password typed after a login prompt is journaled redacted; when the cloud is back they are
// chained into the console's audit in order, via: local, once each, also when the relay dies
// between the upload and its confirmation; `cloudcons audit verify` passes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, openPtyPeer, serialRig, until } from '../helpers.ts';
import { JOURNAL_DIR } from '../../edge-relay/local/audit-journal.ts';

after(cleanup);

test('local audit records survive a relay SIGKILL and a cloud outage, are chained once each in order via local, redacted at a password prompt', { timeout: 180_000 }, async () => {
  const rig = await serialRig('localaudit');
  const hook = path.join(rig.dir, 'hook');
  fs.mkdirSync(hook);
  const env = { CLOUDCONS_TEST_LOCAL_AUDIT_DIR: hook };
  let relay = rig.startRelay([], env);
  await rig.relayUp(relay);
  const peer = openPtyPeer(rig.pair.peer);
  await rig.cloud.kill('SIGKILL'); // the cloud is away: what follows is local only

  const spool = path.join(rig.dir, 'spool');
  const inSpool = (s: string) => fs.readdirSync(path.join(spool, 'ser1')).some((f) => fs.readFileSync(path.join(spool, 'ser1', f)).includes(s));
  /** The device prints `s`; returns once the relay has it (in its spool: the journal was fed it). */
  const shows = async (s: string) => { peer.write(s); await until(`${JSON.stringify(s)} in the spool`, () => inSpool(s)); };
  let n = 0;
  /** A local session does something: the hook records it; returns once record() returned. */
  const does = async (what: string, data?: string, detail?: string) => {
    const f = path.join(hook, `${String(++n).padStart(4, '0')}`);
    fs.writeFileSync(`${f}.tmp`, JSON.stringify({ console: 'ser1', what, user: 'root', source: 'relay.yaml', fingerprint: 'SHA256:Vh4rRZl3D4mYlqJx0Bm0yB7wHnlmV+Q0bTgGJ1nZQ8A', session: 'ssh-7', ts: Date.now(), detail, data: data === undefined ? undefined : Buffer.from(data).toString('base64') }));
    fs.renameSync(`${f}.tmp`, `${f}.json`);
    await until(`${what} recorded`, () => !fs.existsSync(`${f}.json`) && !fs.existsSync(`${f}.json.refused`) ? true : fs.existsSync(`${f}.json.refused`) ? assert.fail(relay.out + relay.err) : undefined);
  };
  await does('attach', undefined, 'as writer');
  await shows('\r\nweb01 login: ');
  await does('input', 'root\r');
  await shows('root\r\nPassword: ');
  await does('input', 'hunter2\r');
  await shows('\r\nroot@web01:~# ');
  await does('input', 'id\r');
  await does('detach');
  await relay.kill('SIGKILL');

  const journal = path.join(spool, JOURNAL_DIR, 'ser1.jsonl');
  const lines = () => fs.readFileSync(journal, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines().slice(1).map((r) => [r.seq, r.what]), [[1, 'attach'], [2, 'input'], [3, 'input'], [4, 'input'], [5, 'detach']], 'all on disk after SIGKILL');
  assert.ok(!fs.readFileSync(journal, 'utf8').includes(Buffer.from('hunter2').toString('base64').slice(0, 8)), 'the password is not in the journal');

  // The cloud is back; the relay uploads and dies when the cloud confirms (before its journal learns it).
  await rig.restartCloud();
  relay = rig.startRelay([], { ...env, CLOUDCONS_TEST_CRASH_AT: 'audit-ok' });
  await until('the relay to die at the confirm', () => relay.exited, 30_000);
  assert.equal(lines().length, 6, 'still in the journal: never confirmed');
  const auth = { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: rig.adminToken };
  const local = () => {
    const r = cli(['audit', 'ser1', '--json'], auth);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout.toString()) as Record<string, unknown>[]).filter((x) => x.via === 'local');
  };
  assert.equal(local().length, 5, 'chained before the relay died');

  // Started again: it sends them again; the cloud confirms without chaining them twice.
  relay = rig.startRelay([], env);
  await until('the journal emptied', () => lines().length === 1, 30_000);
  const recs = local();
  assert.deepEqual(recs.map((r) => [r.jseq, r.type, r.user, r.data === undefined ? r.detail : Buffer.from(String(r.data), 'base64').toString()]), [
    [1, 'attach', 'local:root@edge1', 'as writer'],
    [2, 'input', 'local:root@edge1', 'root\r'],
    [3, 'input', 'local:root@edge1', '[redacted: 8 bytes typed at a password prompt]'],
    [4, 'input', 'local:root@edge1', 'id\r'],
    [5, 'detach', 'local:root@edge1', undefined],
  ]);
  for (const r of recs) {
    assert.equal(r.relay, 'edge1');
    assert.equal(r.session, 'ssh-7');
    assert.equal(r.fingerprint, 'SHA256:Vh4rRZl3D4mYlqJx0Bm0yB7wHnlmV+Q0bTgGJ1nZQ8A');
    assert.ok(Number(r.relayTime) <= Number(r.time), 'happened at the relay before the cloud chained it');
  }
  const seqs = recs.map((r) => Number(r.seq));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in the chain in journal order');
  const all = cli(['audit', 'ser1', '--json'], auth).stdout.toString();
  assert.ok(!all.includes(Buffer.from('hunter2').toString('base64').slice(0, 8)) && !all.includes('hunter2'), 'the password is nowhere in the audit');
  const text = cli(['audit', 'ser1'], auth);
  assert.match(text.stdout.toString(), /local:root@edge1 .*input .*"id\^M" {2}\(via local: relay edge1 at \d{4}-/);
  const v = cli(['audit', 'verify'], auth);
  assert.equal(v.code, 0, v.stdout.toString() + v.stderr);
  assert.match(v.stdout.toString(), /^ser1: ok/m);
});
