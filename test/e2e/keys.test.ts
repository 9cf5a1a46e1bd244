// Local access, the cloud's part (issue 17), end to end with a real cloud, real relay processes and
// the real CLI: users' SSH keys (`cloudcons keys add|list|remove`, own and, for admins, anyone's;
// bad key files and the per-user limit refused clearly), `cloudcons relay-local on|off`, all
// audited; the relay keeps the snapshot the cloud sends (spool/local-access.json), follows key,
// rule and switch changes while connected, and loads it again when restarted with the cloud down.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditRecord, SshKeyRecord } from '../../cloud/core/ports.ts';
import type { RelayView } from '../../cloud/core/core.ts';
import { cleanup, cloudcons, createToken, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const p = cloudcons(args, env);
  const code = await new Promise<number>((r) => p.child.once('close', (c) => r(c ?? -1)));
  return { code, out: p.out, err: p.err };
}

/** A key pair made by ssh-keygen: its .pub line and what `ssh-keygen -lf` says its fingerprint is. */
function keygen(dir: string, name: string) {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-t', 'ed25519', '-f', file, '-N', '', '-q', '-C', `${name}@laptop`]);
  const pub = fs.readFileSync(`${file}.pub`, 'utf8');
  return { file, pub, blob: pub.split(' ')[1], fp: execFileSync('ssh-keygen', ['-lf', `${file}.pub`]).toString().split(' ')[1] };
}

test('keys are kept per user and audited; relay-local is an admin\'s; the relay keeps the snapshot, follows changes, and loads it with the cloud down', { timeout: 120_000 }, async () => {
  const dir = tmpDir('keys-e2e');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data, 0, { args: ['--max-keys-per-user', '2'] });
  const env = (token: string) => ({ CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: token });
  const admin = env(cloud.adminToken), alice = env(createToken(data, 'user', 'alice')), bob = env(createToken(data, 'user', 'bob'));
  const relayToken = createToken(data, 'relay', 'edge1');
  const [a1, a2, a3, b1] = ['a1', 'a2', 'a3', 'b1'].map((n) => keygen(dir, n));
  const write = (name: string, text: string) => { const f = path.join(dir, name); fs.writeFileSync(f, text); return f; };
  const rules = (bobToo: boolean) => write(`rules-${bobToo}.yaml`, `groups: { ops: [alice] }\nrules:\n  - { consoles: "c*", who: "@ops", allow: rw }\n${bobToo ? '  - { consoles: c2, who: bob, allow: ro }\n' : ''}`);
  assert.equal((await run(['access', 'set', rules(true)], admin)).code, 0);

  // Alice adds her own two keys from one authorized_keys-style file; the list says what ssh-keygen -lf says.
  let r = await run(['keys', 'add', write('alice.keys', `# alice\n${a1.pub}\n${a2.pub}`)], alice);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `added ${a1.fp} for alice\nadded ${a2.fp} for alice\n`);
  const list = JSON.parse((await run(['keys', 'list', '--json'], alice)).out) as { user: string; keys: SshKeyRecord[] };
  assert.deepEqual(list.keys.map((k) => [k.type, k.fingerprint, k.comment, k.addedBy, k.blob]), [['ssh-ed25519', a1.fp, 'a1@laptop', 'alice', a1.blob], ['ssh-ed25519', a2.fp, 'a2@laptop', 'alice', a2.blob]]);
  r = await run(['keys', 'list'], alice);
  assert.match(r.out, /^TYPE\s+FINGERPRINT\s+COMMENT\s+ADDED\s+BY\n/);
  assert.match(r.out, new RegExp(`\\nssh-ed25519\\s+${a1.fp.replace(/[+/]/g, '\\$&')}\\s+a1@laptop\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+alice\\n`));
  // The limit (--max-keys-per-user 2); another user's keys only for admins.
  r = await run(['keys', 'add', `${a3.file}.pub`], alice);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /user alice has 2 SSH keys and would have 3: at most 2 \(maxKeysPerUser\); remove one first \(cloudcons keys remove FINGERPRINT\)/);
  r = await run(['keys', 'add', '--user', 'bob', `${b1.file}.pub`], alice);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /user alice may not add SSH keys of user bob: only admins may/);
  r = await run(['keys', 'list', '--user', 'bob'], alice);
  assert.match(r.err, /user alice may not list the SSH keys of user bob: only admins may/);
  r = await run(['keys', 'add', '--user', 'bob', `${b1.file}.pub`], admin);
  assert.equal(r.out, `added ${b1.fp} for bob\n`, r.err);
  assert.deepEqual((JSON.parse((await run(['keys', 'list', '--user', 'bob', '--json'], admin)).out) as typeof list).keys.map((k) => [k.fingerprint, k.addedBy]), [[b1.fp, 'admin']]);
  // Bad key files: refused whole, the line named; a private key never stored.
  r = await run(['keys', 'add', write('bad.keys', `${a3.pub}from="10.0.0.0/8" ${a3.pub}ssh-foo AAAA\n`)], bob);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /no key added: line 2: authorized_keys options before the key .* are not taken.*; line 3: unknown key type "ssh-foo"/);
  r = await run(['keys', 'add', a3.file], bob);
  assert.match(r.err, /no key added: line 1: a PRIVATE key: never hand it out; give the public one/);
  assert.equal((JSON.parse((await run(['keys', 'list', '--json'], bob)).out) as typeof list).keys.length, 1, 'nothing of them stored');
  r = await run(['keys', 'remove', 'SHA256:nope'], bob);
  assert.match(r.err, /fingerprint: SHA256: and 43 base64 characters/);

  // The switch: admins only; kept before the relay ever connected.
  r = await run(['relay-local', 'off', 'edge1'], alice);
  assert.match(r.err, /user alice may not turn local access off at relay edge1: only admins may/);
  r = await run(['relay-local', 'off', 'edge1'], admin);
  assert.equal(r.out, 'local access at relay edge1: off (the relay is not connected: it hears at its next connection)\n', r.err);

  // The relay gets its snapshot after its welcome and keeps it in its spool.
  const spool = path.join(dir, 'spool');
  const yaml = write('relay.yaml', 'relay: { name: edge1 }\nconsoles:\n  c1: { type: exec, command: [/bin/sh, -c, "exec sleep 100000"] }\n  c2: { type: exec, command: [/bin/sh, -c, "exec sleep 100000"] }\n  d1: { type: exec, command: [/bin/sh, -c, "exec sleep 100000"] }\n');
  const tokenFile = write('relay-token', `${relayToken}\n`);
  const startRelay = () => cloudcons(['relay', '--config', yaml, '--cloud', cloud.url, '--spool', spool], { CLOUDCONS_TOKEN_FILE: tokenFile, STATE_DIRECTORY: '' });
  let relay = startRelay();
  const file = path.join(spool, 'local-access.json');
  type Kept = { relay: string; receivedAt: number; id: string; enabled: boolean; users: { user: string; keys: { type: string; blob: string; fingerprint: string }[]; rights: Record<string, string> }[] };
  const kept = () => (fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) as Kept : undefined);
  const k = (x: typeof a1) => ({ type: 'ssh-ed25519', blob: x.blob, fingerprint: x.fp });
  let snap = await until('the snapshot in the spool', kept, 20_000);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(snap.relay, 'edge1');
  assert.ok(Math.abs(Date.now() - snap.receivedAt) < 60_000);
  assert.equal(snap.enabled, false);
  assert.deepEqual(snap.users, [
    { user: 'alice', keys: [k(a1), k(a2)], rights: { c1: 'rw', c2: 'rw' } },
    { user: 'bob', keys: [k(b1)], rights: { c2: 'ro' } },
  ]);
  await relay.waitFor(/local access: snapshot from the cloud: 2 users, 3 keys, local access off/);

  // Changes while it is connected: the switch, a key removed, a rule changed: each in the next snapshot.
  r = await run(['relay-local', 'on', 'edge1'], admin);
  assert.equal(r.out, 'local access at relay edge1: on\n', r.err);
  snap = await until('local access on at the relay', () => { const s = kept(); return s?.enabled ? s : undefined; });
  assert.equal(((JSON.parse((await run(['relays', '--json'], admin)).out)) as RelayView[]).find((x) => x.name === 'edge1')?.localOff, undefined);
  r = await run(['keys', 'remove', a1.fp], alice);
  assert.equal(r.out, `removed ${a1.fp} (ssh-ed25519 a1@laptop) of alice\n`, r.err);
  snap = await until('a1 gone from the relay\'s snapshot', () => { const s = kept(); return s?.users.find((u) => u.user === 'alice')?.keys.length === 1 ? s : undefined; });
  assert.deepEqual(snap.users.find((u) => u.user === 'alice')?.keys, [k(a2)]);
  assert.equal((await run(['access', 'set', rules(false)], admin)).code, 0);
  snap = await until('bob gone from the relay\'s snapshot (no right left on its consoles)', () => { const s = kept(); return s?.users.length === 1 ? s : undefined; });
  assert.deepEqual(snap.users, [{ user: 'alice', keys: [k(a2)], rights: { c1: 'rw', c2: 'rw' } }]);

  // The audit has who did what for whom.
  const audit = JSON.parse((await run(['audit', '_cloud', '--json'], admin)).out) as AuditRecord[];
  const seen = audit.filter((x) => /^(ssh-key|relay\.local)/.test(x.type)).map((x) => `${x.type} ${x.user}: ${x.detail}`);
  assert.deepEqual(seen, [
    `ssh-key.add alice: SSH key ${a1.fp} (ssh-ed25519 a1@laptop) added for user alice`,
    `ssh-key.add alice: SSH key ${a2.fp} (ssh-ed25519 a2@laptop) added for user alice`,
    `ssh-key.add admin: SSH key ${b1.fp} (ssh-ed25519 b1@laptop) added for user bob`,
    'relay.local admin: local access at relay edge1 turned off',
    'relay.local admin: local access at relay edge1 turned on',
    `ssh-key.remove alice: SSH key ${a1.fp} (ssh-ed25519 a1@laptop) of user alice removed`,
  ]);
  assert.ok(audit.some((x) => x.type === 'access.denied' && x.user === 'alice' && /add SSH keys of user bob: not an admin/.test(x.detail ?? '')));

  // The cloud gone (kill -9), the relay restarted: the kept snapshot is loaded, unchanged.
  const bytes = fs.readFileSync(file);
  await cloud.proc.kill('SIGKILL');
  await relay.kill();
  relay = startRelay();
  await relay.waitFor(/local access: the cloud's snapshot of \S+ loaded \(1 users, 1 keys, local access on\)/);
  await relay.waitFor(/cannot reach the cloud|disconnected|ECONNREFUSED/, 20_000);
  assert.deepEqual(fs.readFileSync(file), bytes);
  await relay.kill();
});
