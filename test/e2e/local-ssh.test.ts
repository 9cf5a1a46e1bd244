// Local break-glass SSH access at the relay (issue 17): a real relay process with a socat pty
// console and NO cloud (--cloud points at a closed port), driven by the real OpenSSH client
// (host key checked against a known_hosts file, keys made with ssh-keygen, a pty with -tt through
// node-pty). Listing, attach and type (bytes checked at the device end), a second key as spy that
// cannot type, force, breaks, `^Ec.`; refusals (a key not allowed, a user not known, a password,
// a wrong host key) with a message; the host key made 0600 and reused across a restart with the
// same fingerprint; the lock's epoch counter going on across it; the sign-in limits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as pty from '@lydell/node-pty';
import ssh2 from 'ssh2';
import { cleanup, cli, cloudcons, freePort, openPtyPeer, PtyPair, serialRig, tmpDir, until, type Proc } from '../helpers.ts';

const missing = ['ssh', 'ssh-keygen'].filter((c) => spawnSync(c, ['-V']).error);
const skip = missing.length ? `needs ${missing.join(' and ')} (apt-get install openssh-client)` : false;

const dir = tmpDir('local-ssh');
const f = (n: string) => path.join(dir, n);
const terms = new Set<pty.IPty>();
after(async () => { for (const t of terms) { try { t.kill('SIGKILL'); } catch { /* gone */ } } await cleanup(); });

let relay: Proc;
let port = 0;
let pair: PtyPair;
let peer: ReturnType<typeof openPtyPeer>;
const hostKeyFile = f('hk/ssh_host_ed25519_key');

function keygen(name: string): string {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', f(name)]);
  assert.equal(r.status, 0, r.stderr.toString());
  return fs.readFileSync(f(`${name}.pub`), 'utf8').trim();
}

function writeConfig(limits: string): void {
  fs.writeFileSync(f('relay.yaml'), [
    'relay: { name: edge1 }',
    'log: { level: debug }',
    'breaks:',
    "  5: { string: 'BRK5\\r' }",
    'local:',
    `  ssh: { listen: 127.0.0.1:0, hostKey: ${hostKeyFile}, ${limits} }`,
    '  users:',
    `    alice: { keys: ['${fs.readFileSync(f('alice.pub'), 'utf8').trim()}'], rw: ['*'] }`,
    `    bob: { authorizedKeys: bob.keys, rw: ['ser*'] }`,
    `    eve: { keys: ['${fs.readFileSync(f('eve.pub'), 'utf8').trim()}'], ro: ['*'] }`,
    'consoles:',
    `  ser1: { type: serial, device: ${pair.dev}, baud: 115200, breaklist: ['1', '5'] }`,
    `  other: { type: exec, command: [/bin/cat] }`,
    '',
  ].join('\n'));
}

async function startRelay(): Promise<void> {
  const closed = await freePort(); // nobody listens there: the cloud is down
  relay = cloudcons(['relay', '--config', f('relay.yaml'), '--spool', f('spool'), '--cloud', `http://127.0.0.1:${closed}`, '--token-file', f('token')]);
  port = Number((await relay.waitFor(/local ssh: listening on 127\.0\.0\.1:(\d+)/))[1]);
  await relay.waitFor(/console ser1 up/);
  // known_hosts as a user would write it after checking the fingerprint the relay logged.
  fs.writeFileSync(f('known_hosts'), `[127.0.0.1]:${port} ${spawnSync('ssh-keygen', ['-y', '-f', hostKeyFile]).stdout.toString().trim()}\n`);
}

const sshOpts = (key: string, known = f('known_hosts')) => ['-F', '/dev/null', '-p', String(port), '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`,
  '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', '-i', f(key)];

/** A non-interactive ssh run to its end. */
function sshRun(key: string, user: string, command: string[] = [], extra: string[] = []): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn('ssh', [...sshOpts(key), ...extra, `${user}@127.0.0.1`, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d: Buffer) => { out += d; });
    c.stderr.on('data', (d: Buffer) => { err += d; });
    c.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

/** ssh -tt on a real pty, as a person at a terminal. */
class SshTerm {
  screen = '';
  exit?: number;
  readonly p: pty.IPty;
  constructor(key: string, user: string, command: string[]) {
    this.p = pty.spawn('ssh', [...sshOpts(key), '-tt', `${user}@127.0.0.1`, ...command], { cols: 100, rows: 30, env: process.env as Record<string, string> });
    terms.add(this.p);
    this.p.onData((d) => { this.screen += d; });
    this.p.onExit((e) => { this.exit = e.exitCode; terms.delete(this.p); });
  }
  write(s: string): void { this.p.write(s); }
  waitFor(text: string | RegExp, ms = 10_000): Promise<boolean> {
    return until(`${text} on ${JSON.stringify(this.screen.slice(-300))}`, () => (typeof text === 'string' ? this.screen.includes(text) : text.test(this.screen)), ms);
  }
}

const ESC = '\x05c';
const quiet = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  if (skip) return;
  pair = await PtyPair.create(dir);
  for (const k of ['alice', 'bob', 'eve', 'mallory', 'other1', 'other2']) keygen(k);
  fs.writeFileSync(f('bob.keys'), `# bob's keys\n${fs.readFileSync(f('bob.pub'), 'utf8')}`);
  fs.writeFileSync(f('token'), `ccr_${'0'.repeat(40)}\n`, { mode: 0o600 });
  writeConfig('maxAuthTries: 2, authPerSourcePerMinute: 1000, maxBufferBytes: 65536');
  await startRelay();
  peer = openPtyPeer(pair.peer);
});

test('the host key is made at first start, mode 0600, and its fingerprint logged as ssh-keygen -lf prints it', { skip }, () => {
  assert.equal(fs.statSync(hostKeyFile).mode & 0o777, 0o600);
  const lf = spawnSync('ssh-keygen', ['-lf', hostKeyFile]).stdout.toString().split(' ')[1];
  assert.match(lf, /^SHA256:/);
  assert.match(relay.out + relay.err, new RegExp(`local ssh: host key ${lf.replace(/[+/]/g, '\\$&')} \\(${hostKeyFile}, made now\\)`));
});

test('no command (or ls) lists the consoles the user may use, with state, right and writer', { skip }, async () => {
  const a = await sshRun('alice', 'alice');
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /cut off from the cloud/);
  assert.match(a.out, /^ser1 +up +serial +rw +- +-$/m);
  assert.match(a.out, /^other +up +exec +rw/m);
  const b = await sshRun('bob', 'bob', ['ls']);
  assert.equal(b.code, 0, b.err);
  assert.match(b.out, /^ser1 +up +serial +rw/m);
  assert.doesNotMatch(b.out, /^other/m, 'bob has no right on other: not listed');
  const e = await sshRun('eve', 'eve');
  assert.match(e.out, /^ser1 +up +serial +ro/m);
});

test('attach, type, see the echo; a second key is a spy that cannot type; force; breaks; ^Ec. detaches', { skip }, async () => {
  const alice = new SshTerm('alice', 'alice', ['ser1']);
  await alice.waitFor(/read-write: the relay holds the lock \(cut off from the cloud; epoch (\d+)\)/);
  alice.write('hello\r');
  await until('hello at the device', () => peer.received().toString().includes('hello\r'));
  assert.deepEqual(peer.received(), Buffer.from('hello\r'), 'exactly the typed bytes reach the device');
  peer.write('device says hi\r\n');
  await alice.waitFor('device says hi');

  const bob = new SshTerm('bob', 'bob', ['ser1']);
  await bob.waitFor(/spy: ser1 is written by alice@local/);
  bob.write('nope\r');
  await bob.waitFor('[read-only: you are a spy');
  peer.write('second line\r\n');
  await bob.waitFor('second line');
  await alice.waitFor('second line');
  assert.deepEqual(peer.received(), Buffer.from('hello\r'), 'a spy\'s keystrokes never reach the device');

  bob.write(`${ESC}w`);
  await bob.waitFor(/rw  alice@local.*\r\n spy bob@local/s);
  const listed = await sshRun('eve', 'eve');
  assert.match(listed.out, /^ser1 +up +serial +ro +alice@local +bob$/m);

  bob.write(`${ESC}f`);
  await bob.waitFor(/read-write: the relay holds the lock/);
  await alice.waitFor('bob forced the write lock: you are a spy now');
  bob.write('from bob\r');
  alice.write('from alice\r');
  await until('bob\'s line at the device', () => peer.received().toString().includes('from bob\r'));
  await quiet(300);
  assert.deepEqual(peer.received(), Buffer.from('hello\rfrom bob\r'), 'after force only the new writer types');

  bob.write(`${ESC}l?`);
  await bob.waitFor(/breaks of ser1: 1: .*5: /);
  bob.write(`${ESC}l5`);
  await until('break 5 at the device', () => peer.received().toString().endsWith('BRK5\r'));
  await bob.waitFor('break 5 sent');

  alice.write(`${ESC}.`);
  await alice.waitFor('[disconnected]');
  await until('alice\'s ssh to exit', () => alice.exit !== undefined);
  assert.equal(alice.exit, 0);
  bob.write(`${ESC}.`);
  await until('bob\'s ssh to exit', () => bob.exit !== undefined);

  // eve may only watch: even a force is a spy.
  const eve = new SshTerm('eve', 'eve', ['ser1', '-f']);
  await eve.waitFor('spy: eve may only watch ser1 here');
  eve.write('x');
  await quiet(300);
  assert.ok(peer.received().toString().endsWith('BRK5\r'), 'a read-only user\'s keystrokes never reach the device');
  eve.write(`${ESC}.`);
  await until('eve\'s ssh to exit', () => eve.exit !== undefined);

  // Everything went through the local audit (logged at debug level by default), in order.
  const log = relay.out + relay.err;
  for (const re of [/local audit: signin - by alice \(SHA256:/, /local audit: attach ser1 by alice/, /local audit: lock ser1 by alice .*epoch \d+/,
    /local audit: input ser1 by alice .*\[6 bytes\]/, /local audit: force ser1 by bob .*took the write lock from alice/, /local audit: break ser1 by bob .*5: /,
    /local audit: detach ser1 by alice .*detached \(escape\)/, /local audit: lock.refused ser1 by eve .*read-only right/]) assert.match(log, re);
});

test('a key not allowed, a user not known and a password are refused with a message; a wrong host key is refused by the client', { skip }, async () => {
  const bad = await sshRun('mallory', 'alice');
  assert.equal(bad.code, 255);
  assert.match(bad.err, /cloudcons: key SHA256:\S+ is not allowed for user alice at this relay/);
  assert.match(bad.err, /Permission denied \(publickey\)/);
  const nobody = await sshRun('alice', 'nobody');
  assert.equal(nobody.code, 255);
  assert.match(nobody.err, /is not allowed for user nobody/);
  // The server offers keys only; a client that sends a password anyway is refused.
  const pw = await new Promise<string>((resolve) => {
    const c = new ssh2.Client();
    c.on('ready', () => { c.end(); resolve('signed in'); });
    c.on('error', (e) => resolve(e.message));
    c.connect({ host: '127.0.0.1', port, username: 'alice', password: 'secret', tryKeyboard: false, hostVerifier: () => true });
  });
  assert.match(pw, /All configured authentication methods failed/);
  // alice's own public key with a signature that is not hers: the signature is checked.
  const forged = await new Promise<string>((resolve) => {
    const key = ssh2.utils.parseKey(fs.readFileSync(f('alice'))) as ssh2.ParsedKey;
    key.sign = () => randomBytes(64);
    const c = new ssh2.Client();
    c.on('ready', () => { c.end(); resolve('signed in'); });
    c.on('error', (e) => resolve(e.message));
    let tried = false;
    c.connect({ host: '127.0.0.1', port, username: 'alice', hostVerifier: () => true,
      authHandler: (_left, _partial, next) => { if (tried) return next(false as never); tried = true; next({ type: 'publickey', username: 'alice', key }); } });
  });
  assert.match(forged, /All configured authentication methods failed/);
  await relay.waitFor(/sign-in refused for "alice" from 127\.0\.0\.1 \(publickey\): bad signature for key SHA256:/);
  await relay.waitFor(/sign-in refused for "alice" from 127\.0\.0\.1 \(password\): password is not accepted \(keys only\)/);
  // A relay whose key is not the one in known_hosts: the client refuses to talk to it.
  keygen('impostor');
  fs.writeFileSync(f('wrong_known_hosts'), `[127.0.0.1]:${port} ${fs.readFileSync(f('impostor.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
  const wrong = await new Promise<{ code: number; err: string }>((resolve) => {
    const c = spawn('ssh', [...sshOpts('alice', f('wrong_known_hosts')), 'alice@127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d; });
    c.on('close', (code) => resolve({ code: code ?? -1, err }));
  });
  assert.equal(wrong.code, 255);
  assert.match(wrong.err, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
});

test('maxAuthTries: the connection is closed after that many refused keys (a good key after them is not tried)', { skip }, async () => {
  const r = await sshRun('other1', 'alice', [], ['-i', f('other2'), '-i', f('alice')]);
  assert.equal(r.code, 255, `alice's key was tried after two refused ones: ${r.out}`);
  assert.match(r.err, /too many refused sign-in attempts \(2\): disconnected/);
});

test('a client that stops reading skips output and is told; the relay and the other sessions never wait for it', { skip }, async () => {
  const stuck = new SshTerm('eve', 'eve', ['ser1']);
  const reader = new SshTerm('bob', 'bob', ['ser1', '-s']);
  await stuck.waitFor('[spy: eve may only watch ser1 here]');
  await reader.waitFor('[spy: read-only]');
  process.kill(stuck.p.pid, 'SIGSTOP'); // its ssh reads nothing more: windows and buffers fill up
  const t0 = Date.now();
  let ms: number;
  try {
    // 16 MiB: the writes get through only as fast as the relay reads the device.
    const flood = Buffer.from(`${'x'.repeat(1021)}\r\n`.repeat(64));
    for (let sent = 0; sent < 16 * 1024 * 1024;) {
      try { sent += peer.write(flood); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; await quiet(1); }
      if (Date.now() - t0 > 60_000) assert.fail(`the relay stopped reading the device after ${sent} bytes`);
    }
    peer.write('END-OF-FLOOD\r\n');
    await reader.waitFor('END-OF-FLOOD', 30_000);
    ms = Date.now() - t0;
  } finally { process.kill(stuck.p.pid, 'SIGCONT'); }
  await stuck.waitFor(/\[\d+ bytes of output skipped: this connection is too slow \(local\.ssh\.maxBufferBytes 65536\)\]/, 30_000);
  const skipped = Number(/\[(\d+) bytes of output skipped/.exec(stuck.screen)![1]);
  assert.ok(skipped > 0 && skipped < 16 * 1024 * 1024);
  console.log(`16 MiB through the relay in ${ms} ms with one client stopped; it skipped ${skipped} bytes`);
  for (const t of [stuck, reader]) { t.write(`${ESC}.`); await until('ssh to exit', () => t.exit !== undefined); }
});

test('a restart reuses the host key (same fingerprint, same file) and never reuses a lock epoch; the per-source limit', { skip }, async () => {
  const before = fs.readFileSync(hostKeyFile);
  const fp = /local ssh: host key (SHA256:\S+)/.exec(relay.out + relay.err)![1];
  const epochs = [...(relay.out + relay.err).matchAll(/epoch (\d+)/g)].map((m) => Number(m[1]));
  await relay.kill();
  writeConfig('maxAuthTries: 2, authPerSourcePerMinute: 3');
  await startRelay();
  assert.deepEqual(fs.readFileSync(hostKeyFile), before);
  assert.match(relay.out + relay.err, new RegExp(`local ssh: host key ${fp.replace(/[+/]/g, '\\$&')} \\(${hostKeyFile}\\)`));
  const ok = await sshRun('alice', 'alice'); // the old known_hosts line still fits
  assert.equal(ok.code, 0, ok.err);

  const alice = new SshTerm('alice', 'alice', ['ser1']);
  const m = /epoch (\d+)/.exec((await alice.waitFor(/read-write: .*epoch \d+/), alice.screen))!;
  assert.ok(Number(m[1]) > Math.max(...epochs), `epoch ${m[1]} after the restart, ${Math.max(...epochs)} before`);
  alice.write(`${ESC}.`);
  await until('alice\'s ssh to exit', () => alice.exit !== undefined);

  // Three refused attempts from 127.0.0.1 in a minute: then even alice's good key is refused.
  await sshRun('mallory', 'alice');
  await sshRun('other1', 'alice', [], ['-i', f('other2')]);
  const after = await sshRun('alice', 'alice');
  assert.equal(after.code, 255);
  assert.match(after.err, /too many refused sign-in attempts from 127\.0\.0\.1: try again in a minute/);

  // local.* is read at start: a reload that changes it says so, and changes nothing of it.
  writeConfig('maxAuthTries: 3, authPerSourcePerMinute: 3');
  relay.child.kill('SIGHUP');
  await relay.waitFor(/reloaded .*NOT applied, needs a restart: local \(SSH access: listen, host key, limits, users\) changed/);
});

test('while the relay is connected to the cloud a local session only watches; cut off it may write; connected again it is a spy', { skip }, async () => {
  await relay.kill();
  const rig = await serialRig('local-ssh-cloud', ['--reconnect-max-backoff-ms', '500']);
  const hk = path.join(rig.dir, 'host_key');
  fs.writeFileSync(path.join(rig.dir, 'relay.yaml'), [
    'relay: { name: edge1 }',
    `local:\n  ssh: { listen: 127.0.0.1:0, hostKey: ${hk} }`,
    `  users:\n    alice: { keys: ['${fs.readFileSync(f('alice.pub'), 'utf8').trim()}'], rw: ['*'] }`,
    `consoles:\n  ser1: { type: serial, device: ${rig.pair.dev}, baud: 115200 }\n`,
  ].join('\n'));
  relay = rig.startRelay();
  port = Number((await relay.waitFor(/local ssh: listening on 127\.0\.0\.1:(\d+)/))[1]);
  await rig.relayUp(relay);
  fs.writeFileSync(f('known_hosts'), `[127.0.0.1]:${port} ${spawnSync('ssh-keygen', ['-y', '-f', hk]).stdout.toString().trim()}\n`);
  const dev = openPtyPeer(rig.pair.peer);

  const list = await sshRun('alice', 'alice');
  assert.match(list.out, /connected to the cloud: local sessions watch only/);
  const alice = new SshTerm('alice', 'alice', ['ser1']);
  await alice.waitFor('[spy: the relay is connected: attach through the cloud (cloudcons attach); local write under the cloud\'s lock comes next]');
  alice.write('online\r');
  await alice.waitFor('[read-only: the relay is connected');
  dev.write('still watching\r\n');
  await alice.waitFor('still watching');
  assert.equal(dev.received().length, 0, 'nothing typed locally reaches the device while the cloud holds the lock');

  await rig.cloud.kill();
  await alice.waitFor('the relay lost its connection to the cloud: local write is possible');
  alice.write(`${ESC}a`);
  await alice.waitFor(/read-write: the relay holds the lock/);
  alice.write('offline\r');
  await until('the offline line at the device', () => dev.received().length >= 8);
  assert.deepEqual(dev.received(), Buffer.from('offline\r'));

  await rig.restartCloud();
  await alice.waitFor('the relay is connected to the cloud again: you are a spy now', 20_000);
  alice.write('late\r');
  await alice.waitFor(/read-only: the relay is connected[^]*read-only: the relay is connected/);
  assert.deepEqual(dev.received(), Buffer.from('offline\r'), 'a local writer is a spy once the cloud is back');
  alice.write(`${ESC}.`);
  await until('alice\'s ssh to exit', () => alice.exit !== undefined);

  // What alice did over local SSH is in ser1's audit, from the relay's journal, in order, via
  // local, under relay.yaml's name for her; and the chain verifies.
  const auth = { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: rig.adminToken };
  const local = async () => {
    const r = cli(['audit', 'ser1', '--json'], auth);
    assert.equal(r.code, 0, r.stderr.toString());
    return (JSON.parse(r.stdout.toString()) as Record<string, unknown>[]).filter((x) => x.via === 'local');
  };
  const recs = await until('the local records of ser1 in its audit', async () => { const l = await local(); return l.some((x) => x.type === 'detach') ? l : undefined; }, 30_000);
  const typed = recs.filter((x) => x.type === 'input').map((x) => Buffer.from(String(x.data), 'base64').toString());
  assert.deepEqual(typed, ['offline\r'], 'only the keystrokes that reached the device, once each');
  assert.ok(recs.every((x) => x.user === 'local:alice@edge1' && x.relay === 'edge1'), JSON.stringify(recs));
  assert.deepEqual(recs.map((x) => x.type).filter((t) => ['attach', 'lock', 'input', 'detach'].includes(String(t))), ['attach', 'lock', 'input', 'detach']);
  const v = cli(['audit', 'verify'], auth);
  assert.equal(v.code, 0, v.stdout.toString() + v.stderr.toString());
});
