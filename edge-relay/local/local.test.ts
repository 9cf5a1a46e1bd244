// The pieces of local SSH access without a server: key lines and fingerprints (against
// ssh-keygen's), relay.yaml's users as an AccessSource, the relay's own lock and its epoch counter.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { ConfigError } from '../../protocol/errors.ts';
import { ConfigAccess } from './config-access.ts';
import { EPOCH_FILE, LocalLocks } from './local-lock.ts';
import { loadHostKey, parsePublicKeyLine, readAuthorizedKeys } from './ssh-keys.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-local-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const pub = (comment: string) => ssh2.utils.generateKeyPairSync('ed25519', { comment }).public;
const noKeygen = spawnSync('ssh-keygen', ['-V']).error ? 'needs ssh-keygen (apt-get install openssh-client)' : false;

test('a key line: type, blob and fingerprint as ssh-keygen -lf prints it; broken lines are not keys', { skip: noKeygen }, () => {
  const line = pub('alice@laptop');
  fs.writeFileSync(path.join(dir, 'a.pub'), `${line}\n`);
  const k = parsePublicKeyLine(line)!;
  assert.equal(k.type, 'ssh-ed25519');
  assert.equal(k.comment, 'alice@laptop');
  assert.equal(k.fingerprint, spawnSync('ssh-keygen', ['-lf', path.join(dir, 'a.pub')]).stdout.toString().split(' ')[1]);
  const [type, b64] = line.split(' ');
  assert.equal(parsePublicKeyLine(`ssh-rsa ${b64}`), undefined, 'the blob names another type');
  assert.equal(parsePublicKeyLine(`${type} ${b64.slice(0, 12)}`), undefined, 'a cut-off blob');
  assert.equal(parsePublicKeyLine(`no-pty ${line}`), undefined, 'options in front are not taken');
});

test('relay.yaml users: a key signs in as its user only; rights from the globs, rw winning over ro', () => {
  const [a, b, c] = [pub('a'), pub('b'), pub('c')];
  fs.writeFileSync(path.join(dir, 'bob.keys'), `# bob\n\n${b}\n`);
  const src = new ConfigAccess({
    alice: { keys: [a], rw: ['web*'], ro: ['*'] },
    bob: { authorizedKeys: 'bob.keys', ro: ['db0[1-3]'] },
  }, path.join(dir, 'relay.yaml'));
  const blob = (l: string) => parsePublicKeyLine(l)!.blob;
  const alice = src.lookup('alice', blob(a))!;
  assert.equal(alice.source, 'relay.yaml');
  assert.equal(alice.fingerprint, parsePublicKeyLine(a)!.fingerprint);
  assert.deepEqual(['web01', 'db01', 'x'].map((n) => alice.right(n)), ['rw', 'ro', 'ro']);
  const bob = src.lookup('bob', blob(b))!;
  assert.deepEqual(['db01', 'db04', 'web01'].map((n) => bob.right(n)), ['ro', undefined, undefined]);
  assert.equal(src.lookup('alice', blob(b)), undefined, 'bob\'s key is not alice\'s');
  assert.equal(src.lookup('carol', blob(c)), undefined);
  assert.equal(src.enabled(), true);
  assert.deepEqual(src.summary(), ['alice (1 key)', 'bob (1 key)']);
});

test('authorizedKeys files that cannot be used are reported together, naming user, file and lines', () => {
  fs.writeFileSync(path.join(dir, 'bad.keys'), `${pub('ok')}\nnot a key\n\nssh-ed25519 AAAA\n`);
  try {
    new ConfigAccess({ x: { authorizedKeys: 'bad.keys' }, y: { authorizedKeys: 'missing.keys' } }, path.join(dir, 'relay.yaml'));
    assert.fail('expected a ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.match(e.problems[0], /^local: user x: authorizedKeys: .*bad\.keys: line 2: unknown key type "not".*; line 4: the base64 part does not hold an ssh-ed25519 public key/);
    assert.match(e.problems[1], /^local: user y: authorizedKeys: ENOENT/);
  }
  assert.throws(() => readAuthorizedKeys(path.join(dir, 'bad.keys')), /line 2: .*; line 4: /);
});

test('the host key: made once with mode 0600 in a 0700 folder, then the same key', () => {
  const file = path.join(dir, 'state', 'host_key');
  const made = loadHostKey(file);
  assert.equal(made.made, true);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
  const again = loadHostKey(file);
  assert.equal(again.made, false);
  assert.equal(again.fingerprint, made.fingerprint);
  assert.equal(parsePublicKeyLine(again.publicLine)!.fingerprint, made.fingerprint);
  fs.writeFileSync(path.join(dir, 'pubonly'), `${pub('x')}\n`);
  assert.throws(() => loadHostKey(path.join(dir, 'pubonly')), /not an unencrypted private key/);
});

test('the relay\'s lock: one writer, force takes it; every grant a new epoch, on disk, never reused after a restart', () => {
  const d = fs.mkdtempSync(path.join(dir, 'spool-'));
  const locks = new LocalLocks(d);
  const a = locks.take('web01', { session: 's1', user: 'alice', fingerprint: 'fa' }, false);
  assert.ok(a.ok && a.holder.epoch === 1);
  const b = locks.take('web01', { session: 's2', user: 'bob', fingerprint: 'fb' }, false);
  assert.ok(!b.ok && b.holder.user === 'alice');
  assert.equal(locks.release('web01', 's2'), false, 'only the holder gives it up');
  const f = locks.take('web01', { session: 's2', user: 'bob', fingerprint: 'fb' }, true);
  assert.ok(f.ok && f.holder.epoch === 2 && f.bumped?.user === 'alice');
  assert.equal(fs.readFileSync(path.join(d, EPOCH_FILE), 'utf8'), '2\n');
  const after = new LocalLocks(d);
  const c = after.take('db01', { session: 's3', user: 'carol', fingerprint: 'fc' }, false);
  assert.ok(c.ok && c.holder.epoch === 3);
  fs.writeFileSync(path.join(d, EPOCH_FILE), 'garbage');
  assert.throws(() => new LocalLocks(d), /not an epoch counter/);
});
