import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSshKeyLine, parseSshKeys, sshFingerprint, normalFingerprint } from './ssh-key.ts';

/** A key pair made by the real ssh-keygen: its public line, private file and `ssh-keygen -lf` line. */
function keygen(dir: string, args: string[], name: string) {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', [...args, '-f', file, '-N', '', '-q', '-C', `${name}@test`]);
  return { pub: fs.readFileSync(`${file}.pub`, 'utf8'), priv: fs.readFileSync(file, 'utf8'), lf: execFileSync('ssh-keygen', ['-lf', `${file}.pub`]).toString() };
}

test('keys made by ssh-keygen read back with the fingerprint ssh-keygen -lf prints, their type and comment', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshkey-'));
  try {
    for (const [args, type] of [[['-t', 'ed25519'], 'ssh-ed25519'], [['-t', 'rsa', '-b', '3072'], 'ssh-rsa'], [['-t', 'ecdsa', '-b', '256'], 'ecdsa-sha2-nistp256'],
      [['-t', 'ecdsa', '-b', '384'], 'ecdsa-sha2-nistp384'], [['-t', 'ecdsa', '-b', '521'], 'ecdsa-sha2-nistp521']] as const) {
      const k = keygen(dir, [...args], type);
      const r = parseSshKeyLine(k.pub);
      assert.ok(r.key, `${type}: ${r.why}`);
      assert.equal(r.key.type, type);
      assert.equal(r.key.comment, `${type}@test`);
      assert.equal(r.key.fingerprint, k.lf.split(' ')[1], `ssh-keygen -lf says ${k.lf}`);
      assert.equal(r.key.blob, k.pub.split(' ')[1]);
      assert.equal(normalFingerprint(r.key.fingerprint.slice('SHA256:'.length)), r.key.fingerprint);
      // Its private key is refused as a whole, in one message.
      const p = parseSshKeys(k.priv, 65536);
      assert.deepEqual(p.keys, []);
      assert.equal(p.problems.length, 1);
      assert.match(p.problems[0], /^line 1: a PRIVATE key: never hand it out; give the public one/);
    }
    // An authorized_keys of several, comments and blank lines skipped, a repeated key taken once.
    const a = keygen(dir, ['-t', 'ed25519'], 'a'), b = keygen(dir, ['-t', 'ed25519'], 'b');
    const r = parseSshKeys(`# mine\n\n${a.pub}${b.pub}${a.pub}`, 65536);
    assert.deepEqual([r.problems, r.keys.map((k) => k.comment)], [[], ['a@test', 'b@test']]);
    // An RSA key too short to be taken.
    const weak = keygen(dir, ['-t', 'rsa', '-b', '1024'], 'weak');
    assert.match(parseSshKeyLine(weak.pub).why!, /^an RSA key of 1024 bits: 2048 to 8192 are accepted/);
  } finally { fs.rmSync(dir, { recursive: true, force: true }); }
});

test('bad lines are refused with what is wrong, each named by its line', () => {
  const ed = (bytes: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, bytes.length]), bytes]).toString('base64');
  const good = `ssh-ed25519 ${ed(Buffer.alloc(32, 7))} ok`;
  assert.equal(parseSshKeyLine(good).key?.fingerprint, sshFingerprint(Buffer.from(ed(Buffer.alloc(32, 7)), 'base64')));
  const cases: [string, RegExp][] = [
    [`from="10.0.0.0/8",no-pty ${good}`, /authorized_keys options before the key \(from=, command=, no-pty, \.\.\.\) are not taken/],
    [`command="/bin/true" ${good}`, /authorized_keys options/],
    [`ssh-dss ${ed(Buffer.alloc(32))}`, /a DSA key: OpenSSH no longer accepts them/],
    [`sk-ssh-ed25519@openssh.com AAAA x`, /security-key keys and certificates are not supported/],
    [`ssh-ed25519-cert-v01@openssh.com AAAA x`, /security-key keys and certificates are not supported/],
    ['ssh-foo AAAA', /: unknown key type "ssh-foo": one of ssh-ed25519, ssh-rsa, /],
    ['ssh-ed25519', /without its base64 part/],
    ['ssh-ed25519 not*base64', /not valid base64/],
    [`ssh-ed25519 ${ed(Buffer.alloc(31))}`, /does not hold an ssh-ed25519 public key \(an ed25519 key is 32 bytes, this one 31\)/],
    [`ssh-ed25519 ${ed(Buffer.alloc(32)).slice(0, 40)}`, /not valid base64|truncated/],
    [`ssh-rsa ${ed(Buffer.alloc(32))}`, /does not hold an ssh-rsa public key|it says it is "ssh-ed25519"/],
    [`ssh-ed25519 ${'A'.repeat(5000)}`, /longer than 4096 characters/],
    [`${good.slice(0, -2)}\u001b[2J`, /comment must be at most 256 printable ASCII characters/],
    ['---- BEGIN SSH2 PUBLIC KEY ----', /RFC 4716 block: give the key in OpenSSH format/],
  ];
  for (const [l, re] of cases) {
    const r = parseSshKeys(`# header\n${good}\n${l}\n`, 65536);
    assert.equal(r.problems.length, 1, `${l}: ${r.problems}`);
    assert.match(r.problems[0], /^line 3: /, l);
    assert.match(r.problems[0], re, l);
  }
  assert.deepEqual(parseSshKeys('\n# nothing\n', 65536).problems, ['no public key in it (an OpenSSH public key line: TYPE BASE64 [COMMENT])']);
  assert.match(parseSshKeys(`${good}\n`.repeat(1000), 65536).problems[0], /^\d+ bytes: more than the 65536 bytes a key file may have/);
  assert.equal(normalFingerprint('md5:aa'), undefined);
});
