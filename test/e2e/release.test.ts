// The release as an operator gets it (`npm run release`, scripts/release.mjs): both tarballs built
// from this checkout and unpacked into a temp folder, then run with no Node on PATH and a bare
// environment. x64: --version, a relay (token from a file) with a socat pty console against a
// cloud from the checkout, output replayed byte-exact through the release's own CLI, the process
// being the bundled runtime with no token on its command line, the web viewer served by the
// release's cloud. arm64: every native file is an aarch64 ELF, and under qemu-user (Debian's
// qemu-user-static and the arm64 C library from multiarch, which .ci/run installs) --version and a
// relay with an exec and a serial console reach the cloud. The wrong machine gets one line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanup, createToken, openPtyPeer, Proc, PtyPair, ROOT, serialRig, startCloud, tmpDir, until } from '../helpers.ts';
import { haveSshd, startSshd } from '../sshd.ts';

after(cleanup);

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ARCHES = { x64: { elf: 62, file: /ELF 64-bit LSB .*x86-64/ }, arm64: { elf: 183, file: /ELF 64-bit LSB .*ARM aarch64/ } } as const;
type Arch = keyof typeof ARCHES;
const hostOk = process.platform === 'linux' && process.arch === 'x64';
const skipHost = hostOk ? false : `the release tests run on linux-x64 (this is ${process.platform}-${process.arch})`;
// qemu-user and the arm64 libraries Node's runtime links (libc, libstdc++, libatomic), from
// Debian's multiarch packages.
const QEMU = '/usr/bin/qemu-aarch64-static';
const ARM_LIBS = ['/lib/ld-linux-aarch64.so.1', '/usr/lib/aarch64-linux-gnu/libstdc++.so.6', '/usr/lib/aarch64-linux-gnu/libatomic.so.1'];
const armMissing = [QEMU, ...ARM_LIBS].filter((f) => !fs.existsSync(f));
const skipArm = skipHost || (armMissing.length ? `no ${armMissing.join(', ')}: dpkg --add-architecture arm64 && apt-get update && apt-get install qemu-user-static libc6:arm64 libstdc++6:arm64 libatomic1:arm64` : false);

let work = '';
const folder: Record<Arch, string> = { x64: '', arm64: '' };
const tarball = (a: Arch) => path.join(work, 'out', `cloudcons-${VERSION}-linux-${a}.tar.gz`);
let env: NodeJS.ProcessEnv = {};
let buildLog = '';

before(() => {
  if (skipHost) return;
  work = tmpDir('release');
  // The registry tarballs come from the cache the release keeps (~/.cache/cloudcons-release), so
  // only a machine's first run downloads them.
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/release.mjs'), '--out', path.join(work, 'out')], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `npm run release failed:\n${r.stdout}\n${r.stderr}`);
  buildLog = r.stdout + r.stderr;
  for (const a of Object.keys(ARCHES) as Arch[]) {
    fs.mkdirSync(path.join(work, a));
    const x = spawnSync('tar', ['-xzf', tarball(a), '-C', path.join(work, a)], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    folder[a] = path.join(work, a, `cloudcons-${VERSION}-linux-${a}`);
  }
  // PATH: every program of /usr/bin but Node and its tools, as on a box that has none.
  const bin = path.join(work, 'path');
  fs.mkdirSync(bin);
  for (const n of fs.readdirSync('/usr/bin')) if (!/^(node|nodejs|npm|npx|corepack)$/.test(n)) fs.symlinkSync(path.join('/usr/bin', n), path.join(bin, n));
  env = { PATH: bin, HOME: work, LANG: 'C.UTF-8' };
  const which = spawnSync('/bin/sh', ['-c', 'command -v node'], { env, encoding: 'utf8' });
  assert.notEqual(which.status, 0, `node is on the test's PATH: ${which.stdout}`);
});

/** Runs a release's bin/cloudcons to completion in the bare environment. */
function run(a: Arch, args: string[], extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(path.join(folder[a], 'bin/cloudcons'), args, { env: { ...env, ...extra }, encoding: 'buffer', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}
const elfMachine = (f: string) => { const h = fs.readFileSync(f).subarray(0, 20); return h.length === 20 && h.readUInt32BE(0) === 0x7f454c46 ? h.readUInt16LE(18) : undefined; };
/** Writes all of `b` to a pty peer, waiting while the pty is full (its writes do not block). */
async function writeAll(peer: { write(b: Buffer): number }, b: Buffer): Promise<void> {
  for (let i = 0; i < b.length;) {
    try { i += peer.write(b.subarray(i, i + 4096)); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
const files = (d: string) => fs.readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(d, path.join(e.parentPath, e.name)));

test('both tarballs: one folder each, the layout, under 50 MB, and every native file an ELF of the folder\'s architecture', { skip: skipHost, timeout: 60_000 }, () => {
  const hasFile = spawnSync('file', ['--version']).status === 0;
  for (const a of Object.keys(ARCHES) as Arch[]) {
    const size = fs.statSync(tarball(a)).size;
    assert.ok(size < 50e6, `${a}: ${(size / 1e6).toFixed(1)} MB, the aim is under 50 MB`);
    const top = new Set(spawnSync('tar', ['-tzf', tarball(a)], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.trim().split('\n').map((l) => l.split('/')[0]));
    assert.deepEqual([...top], [`cloudcons-${VERSION}-linux-${a}`]);
    const d = folder[a];
    assert.equal(fs.readFileSync(path.join(d, 'VERSION'), 'utf8'), `${VERSION}\n`);
    for (const f of ['bin/cloudcons', 'runtime/node']) assert.ok(fs.statSync(path.join(d, f)).mode & 0o111, `${a}: ${f} is executable`);
    for (const f of ['runtime/LICENSE', 'lib/cloudcons.mjs', 'lib/web/index.html', 'lib/web/assets/app.js', 'lib/THIRD-PARTY-LICENSES.txt']) assert.ok(fs.existsSync(path.join(d, f)), `${a}: ${f}`);
    // packaging/'s files where the layout puts them (or, not written yet, a warning saying so).
    for (const [from, to] of [['install.sh', 'install.sh'], ['systemd/cloudcons-relay.service', 'share/systemd/cloudcons-relay.service'],
      ['systemd/cloudcons-cloud.service', 'share/systemd/cloudcons-cloud.service'], ['relay.yaml', 'share/examples/relay.yaml']]) {
      const src = path.join(ROOT, 'packaging', from);
      if (!fs.existsSync(src)) { assert.match(buildLog, new RegExp(`warning: packaging/${from.split('/')[0]} is missing; the ${a} release has no`)); continue; }
      assert.ok(fs.readFileSync(path.join(d, to)).equals(fs.readFileSync(src)), `${a}: ${to} is packaging/${from}`);
      assert.equal(fs.statSync(path.join(d, to)).mode & 0o777, fs.statSync(src).mode & 0o777, `${a}: ${to} keeps its mode`);
    }
    const all = files(d);
    // The native files are exactly the runtime and the two modules, prebuilt for this architecture.
    const elves = all.filter((f) => elfMachine(path.join(d, f)) !== undefined).sort();
    assert.deepEqual(elves.map((f) => f.replace(/bindings-cpp\.(armv8\.)?glibc\.node$/, 'bindings-cpp.glibc.node')), [
      `lib/node_modules/@lydell/node-pty-linux-${a}/pty.node`,
      `lib/node_modules/@serialport/bindings-cpp/prebuilds/linux-${a}/@serialport+bindings-cpp.glibc.node`,
      'runtime/node',
    ]);
    for (const f of elves) {
      assert.equal(elfMachine(path.join(d, f)), ARCHES[a].elf, `${a}: ${f} e_machine`);
      if (hasFile) assert.match(spawnSync('file', ['-b', path.join(d, f)], { encoding: 'utf8' }).stdout, ARCHES[a].file, `${a}: file(1) on ${f}`);
    }
    // Nothing npm or node-gyp-build would try to compile or load from elsewhere; only what cannot be bundled.
    assert.deepEqual(all.filter((f) => /binding\.gyp|cpu-features|sshcrypto|(^|\/)build\//.test(f)), []);
    const pkgs = new Set(all.filter((f) => f.startsWith('lib/node_modules/')).map((f) => /^lib\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)![1]));
    assert.deepEqual([...pkgs].sort(), ['@lydell/node-pty', `@lydell/node-pty-linux-${a}`, '@serialport/bindings-cpp', '@serialport/bindings-interface', 'debug', 'ms', 'node-gyp-build']);
  }
});

test('x64 with no node on PATH: --version, then a relay (token from a file) whose pty console output the release CLI replays byte-exact, with an ssh console; the process is the bundled runtime, its command line holds no token; the release cloud serves the web viewer', { skip: skipHost, timeout: 120_000 }, async (t) => {
  const v = run('x64', ['--version']);
  assert.equal(v.stderr, '');
  assert.equal(v.stdout.toString(), `${VERSION}\n`);
  // Through a symlink, as install.sh links it (/usr/local/bin/cloudcons -> .../bin/cloudcons).
  const link = path.join(work, 'cloudcons-link');
  fs.symlinkSync(path.relative(work, path.join(folder.x64, 'bin/cloudcons')), link);
  assert.equal(spawnSync(link, ['--version'], { env, encoding: 'utf8' }).stdout, `${VERSION}\n`);

  const rig = await serialRig('rel-x64');
  // An ssh console too, when sshd is there: ssh2 is bundled without its native parts.
  const marker = `via-ssh-${randomBytes(6).toString('hex')}`;
  if (haveSshd) {
    const sshd = await startSshd();
    fs.appendFileSync(path.join(rig.dir, 'relay.yaml'), `  ssh1: { type: ssh, host: 127.0.0.1, port: ${sshd.port}, user: ${os.userInfo().username}, keyFile: ${sshd.key}, hostKey: '${sshd.hostFp}', command: 'echo ${marker}; exec sleep 600' }\n`);
  } else t.diagnostic('no ssh console: OpenSSH server is not installed (apt-get install openssh-server)');
  const relay = new Proc(path.join(folder.x64, 'bin/cloudcons'), ['relay', '--config', path.join(rig.dir, 'relay.yaml'), '--spool', path.join(rig.dir, 'spool'),
    '--cloud', rig.url, '--token-file', rig.tokenFile], { env, cleanEnv: true });
  await rig.relayUp(relay);
  if (haveSshd) {
    await until('the ssh console\'s output stored', async () => {
      const r = await fetch(`${rig.url}/v1/consoles/ssh1/replay?from=0&format=raw`, { headers: rig.auth });
      return r.ok && (await r.text()).includes(marker) ? true : undefined;
    }, 30_000, 200);
  }
  const pid = relay.child.pid!;
  assert.equal(fs.readlinkSync(`/proc/${pid}/exe`), fs.realpathSync(path.join(folder.x64, 'runtime/node')), 'the relay runs on the bundled runtime');
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.ok(!cmdline.some((s) => s.includes(rig.relayToken)), `no token on the command line: ${cmdline.join(' ')}`);
  const peer = openPtyPeer(rig.pair.peer);
  const sent = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(20_000)]);
  await writeAll(peer, sent);
  await until('the output stored', async () => ((await rig.stored())?.bytes.equals(sent) ? true : undefined), 30_000, 100);
  const adminFile = path.join(rig.dir, 'admin-token');
  fs.writeFileSync(adminFile, rig.adminToken, { mode: 0o600 });
  const replay = run('x64', ['replay', 'ser1', '--from', '0', '--url', rig.url, '--token-file', adminFile]);
  assert.equal(replay.code, 0, replay.stderr);
  assert.ok(replay.stdout.equals(sent), `replayed ${replay.stdout.length} bytes, sent ${sent.length}`);
  await relay.kill('SIGTERM');

  // The release's embedded cloud serves the viewer from lib/web (no checkout, no dist/ around it).
  const cloud = new Proc(path.join(folder.x64, 'bin/cloudcons'), ['cloud', '--data', path.join(work, 'cloud-data'), '--port', '0'], { env, cleanEnv: true, cwd: work });
  const url = (await cloud.waitFor(/listening on (http:\/\/[\d.:]+)/, 30_000))[1];
  for (const [p, f] of [['/', 'index.html'], ['/assets/app.js', 'assets/app.js']]) {
    const res = await fetch(`${url}${p}`);
    assert.equal(res.status, 200, p);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(path.join(folder.x64, 'lib/web', f))), `${p} is lib/web/${f}`);
  }
  await cloud.kill('SIGTERM');
});

test('arm64 under qemu-user: --version, and a relay with an exec and a serial console reaching the cloud (its pty and serialport modules are aarch64 and load)', { skip: skipArm, timeout: 180_000 }, async () => {
  const emu = { CLOUDCONS_EMULATOR: QEMU };
  const v = run('arm64', ['--version'], emu);
  assert.equal(v.stdout.toString(), `${VERSION}\n`, v.stderr);
  const dir = tmpDir('rel-arm64');
  const cloud = await startCloud(path.join(dir, 'data'));
  const tokenFile = path.join(dir, 'relay-token');
  fs.writeFileSync(tokenFile, `${createToken(path.join(dir, 'data'), 'relay', 'edgearm')}\n`, { mode: 0o600 });
  const pair = await PtyPair.create(dir);
  const marker = `arm64-exec-${randomBytes(6).toString('hex')}`;
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edgearm }\nconsoles:\n  arm1: { type: exec, command: [/bin/sh, -c, 'echo ${marker}; exec sleep 600'] }\n  arm2: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
  const relay = new Proc(path.join(folder.arm64, 'bin/cloudcons'), ['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'),
    '--cloud', cloud.url, '--token-file', tokenFile], { env: { ...env, ...emu }, cleanEnv: true });
  await relay.waitFor(/console arm2 up/, 90_000);
  const exe = fs.readlinkSync(`/proc/${relay.child.pid}/exe`);
  assert.equal(exe, QEMU, 'the relay runs under qemu-user');
  const stored = async (c: string) => {
    const r = await fetch(`${cloud.url}/v1/consoles/${c}/replay?from=0&format=raw`, { headers: { authorization: `Bearer ${cloud.adminToken}` } }).catch(() => undefined);
    return r?.ok ? Buffer.from(await r.arrayBuffer()) : undefined;
  };
  await until('the exec console\'s output stored', async () => ((await stored('arm1'))?.toString().includes(marker) ? true : undefined), 60_000, 200);
  const peer = openPtyPeer(pair.peer);
  const sent = randomBytes(4000);
  await writeAll(peer, sent);
  await until('the serial console\'s output stored', async () => ((await stored('arm2'))?.equals(sent) ? true : undefined), 60_000, 200);
  await relay.kill('SIGTERM');
});

test('the wrong machine: one line naming the right tarball, before the runtime runs (a qemu binfmt_misc handler would otherwise run it emulated)', { skip: skipHost, timeout: 60_000 }, () => {
  // The arm64 folder on this x86_64 machine.
  const arm = run('arm64', ['--version']);
  assert.equal(arm.code, 1);
  assert.equal(arm.stdout.length, 0);
  assert.equal(arm.stderr, `cloudcons: this is the linux-arm64 release and cannot run on this Linux x86_64 machine; install cloudcons-${VERSION}-linux-x64.tar.gz instead\n`);
  // The x64 folder where uname says aarch64, or a 32-bit ARM machine.
  const fake = path.join(work, 'fake-uname');
  fs.mkdirSync(fake, { recursive: true });
  for (const [machine, want] of [['aarch64', `install cloudcons-${VERSION}-linux-arm64.tar.gz instead`], ['armv7l', 'cloudcons releases are for Linux on x86_64 (linux-x64) and aarch64 (linux-arm64)']]) {
    fs.writeFileSync(path.join(fake, 'uname'), `#!/bin/sh\ncase "$1" in -s) echo Linux ;; -m) echo ${machine} ;; esac\n`, { mode: 0o755 });
    const r = run('x64', ['--version'], { PATH: `${fake}:${env.PATH}` });
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0);
    assert.equal(r.stderr, `cloudcons: this is the linux-x64 release and cannot run on this Linux ${machine} machine; ${want}\n`);
  }
});
