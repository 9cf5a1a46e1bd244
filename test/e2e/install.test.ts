// install.sh into a temp root (--root), then upgrade and rollback with a spool that holds output
// the cloud has not stored: nothing lost, byte-exact. The relay runs as its unit says (ExecStart,
// EnvironmentFile, LoadCredential, StateDirectory, re-rooted into the temp tree), from
// <root>/usr/local/bin/cloudcons, against a cloud from the checkout. The release folders are the
// real release's when dist/release holds one (test/release-folder.ts), else assembled.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, openPtyPeer, Proc, serialRig, until } from '../helpers.ts';
import { releaseFolder } from '../release-folder.ts';
import { loadRelayConfig } from '../../edge-relay/config.ts';

after(cleanup);

function install(folder: string, args: string[]): string {
  const r = spawnSync('sh', [path.join(folder, 'install.sh'), ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `install.sh ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Every path under `root` with its link target or content hash: what "nothing changed" compares. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    const rel = path.relative(root, p);
    if (st.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(p)}`);
    else if (st.isDirectory()) { out.push(`${rel}/ ${(st.mode & 0o7777).toString(8)}`); for (const n of fs.readdirSync(p).sort()) visit(path.join(p, n)); }
    else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`);
  };
  visit(root);
  return out;
}

/** Starts the relay as the installed cloudcons-relay.service would, with every path it names under
 *  `root`: ExecStart (with $VARS from the EnvironmentFile), LoadCredential= copied into a
 *  credentials folder, STATE_DIRECTORY for StateDirectory=. */
function startUnit(root: string, unitName: string): Proc {
  const unit = fs.readFileSync(path.join(root, 'etc/systemd/system', unitName), 'utf8');
  const vals = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
  const env: Record<string, string> = {};
  for (const f of vals('EnvironmentFile')) {
    const file = path.join(root, f.replace(/^-/, ''));
    if (!fs.existsSync(file)) { assert.ok(f.startsWith('-'), `${f} is missing`); continue; }
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) env[m[1]!] = m[2]!;
    }
  }
  const creds = path.join(root, 'run/credentials', unitName);
  fs.mkdirSync(creds, { recursive: true, mode: 0o700 });
  for (const c of vals('LoadCredential')) {
    const [id, from] = c.split(/:(.*)/s);
    fs.copyFileSync(path.join(root, from!), path.join(creds, id!));
  }
  env.CREDENTIALS_DIRECTORY = creds;
  const state = vals('StateDirectory')[0];
  if (state) { env.STATE_DIRECTORY = path.join(root, 'var/lib', state); fs.mkdirSync(env.STATE_DIRECTORY, { recursive: true, mode: 0o700 }); }
  const argv = vals('ExecStart')[0]!.split(/\s+/).flatMap((a) => {
    const v = /^\$([A-Z_]+)$/.exec(a);
    if (v) return (env[v[1]!] ?? '').split(/\s+/).filter(Boolean); // systemd splits an unbraced $VAR
    return [a.startsWith('/') ? path.join(root, a) : a];
  });
  assert.equal(argv[0], path.join(root, 'usr/local/bin/cloudcons'));
  // Nothing from the test's own environment that would steer the relay elsewhere; a relay that
  // missed STATE_DIRECTORY spools into the temp tree's home, not the machine's.
  const clean = { CLOUDCONS_URL: undefined, CLOUDCONS_TOKEN_FILE: undefined, XDG_STATE_HOME: undefined, HOME: path.join(root, 'home'), ...env };
  return new Proc(argv[0]!, argv.slice(1), { env: clean as NodeJS.ProcessEnv });
}

const cmdline = (p: Proc) => fs.readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8').split('\0').join(' ');
const exeOf = (p: Proc) => fs.readlinkSync(`/proc/${p.child.pid}/exe`);

test('install.sh into a temp root: layout, idempotent; upgrade and rollback with unsent output in the spool lose nothing', { timeout: 240_000 }, async () => {
  const rig = await serialRig('install');
  const root = path.join(rig.dir, 'root');
  const v1 = releaseFolder(rig.dir, '0.1.0');
  const v2 = releaseFolder(rig.dir, '0.1.1');

  // First install.
  const said = install(v1, ['--root', root]);
  assert.match(said, /--root: no system user made/);
  const opt = path.join(root, 'opt/cloudcons');
  assert.equal(fs.readlinkSync(path.join(opt, 'current')), '0.1.0');
  assert.equal(fs.readlinkSync(path.join(root, 'usr/local/bin/cloudcons')), '../../../opt/cloudcons/current/bin/cloudcons');
  assert.equal(fs.realpathSync(path.join(root, 'usr/local/bin/cloudcons')), path.join(opt, '0.1.0/bin/cloudcons'));
  const example = fs.readFileSync(path.join(v1, 'share/examples/relay.yaml'));
  assert.ok(fs.readFileSync(path.join(root, 'etc/cloudcons/relay.yaml')).equals(example), 'relay.yaml is the example');
  assert.equal(fs.statSync(path.join(root, 'etc/cloudcons/relay.yaml')).mode & 0o777, 0o640);
  loadRelayConfig(path.join(root, 'etc/cloudcons/relay.yaml')); // the example loads as installed
  for (const u of ['cloudcons-relay.service', 'cloudcons-cloud.service']) {
    assert.ok(fs.readFileSync(path.join(root, 'etc/systemd/system', u)).equals(fs.readFileSync(path.join(v1, 'share/systemd', u))), u);
  }
  // Again: nothing changes (not even a file rewritten).
  const before = snapshot(root);
  assert.match(install(v1, ['--root', root]), /already in .*0\.1\.0, unchanged/);
  assert.deepEqual(snapshot(root), before, 'a second install of the same version changes nothing');

  // The operator's configuration: consoles, the cloud's URL, the token.
  const etc = path.join(root, 'etc/cloudcons');
  const relayYaml = `relay: { name: edge1 }\nconsoles:\n  ser1: { type: serial, device: ${rig.pair.dev}, baud: 115200 }\n`;
  fs.writeFileSync(path.join(etc, 'relay.yaml'), relayYaml);
  // Short reconnect waits: the cloud comes back within seconds here.
  fs.appendFileSync(path.join(etc, 'relay.env'), `CLOUDCONS_URL=${rig.url}\nCLOUDCONS_RELAY_OPTS=--reconnect-max-backoff-ms 500\n`);
  fs.copyFileSync(rig.tokenFile, path.join(etc, 'relay-token'));
  fs.chmodSync(path.join(etc, 'relay-token'), 0o600);

  const peer = openPtyPeer(rig.pair.peer);
  let sent = Buffer.alloc(0);
  const say = (what: string, n: number) => {
    const chunk = Buffer.from(`${what} ${randomBytes(n).toString('base64')}\r\n`);
    for (let at = 0; at < chunk.length;) {
      try { at += peer.write(chunk.subarray(at)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; }
    }
    sent = Buffer.concat([sent, chunk]);
    return chunk;
  };
  const storedAll = (what: string) => until(`${what}: every byte stored`, async () => ((await rig.stored())?.bytes.equals(sent) ? true : undefined), 30_000, 100);
  const spoolDir = path.join(root, 'var/lib/cloudcons/spool/edge1/ser1');
  const spoolBytes = () => (fs.existsSync(spoolDir) ? fs.readdirSync(spoolDir).filter((f) => f === 'active.log' || f.endsWith('.seg')).reduce((n, f) => n + fs.statSync(path.join(spoolDir, f)).size, 0) : 0);
  const runningFrom = (relay: Proc, version: string) => {
    const where = `${cmdline(relay)} ${exeOf(relay)}`;
    assert.ok(where.includes(path.join(opt, version) + '/'), `the relay runs from ${version}: ${where}`);
    assert.ok(!where.includes(rig.relayToken), 'no token on its command line');
  };

  // v1 runs; output arrives.
  let relay = startUnit(root, 'cloudcons-relay.service');
  await rig.relayUp(relay);
  runningFrom(relay, '0.1.0');
  say('v1 live', 3000);
  await storedAll('v1');

  /** The cloud goes away, the console keeps talking into the spool, the relay is stopped with
   *  that output unsent; `then` switches versions; the relay starts again, the cloud comes back. */
  const outage = async (what: string, then: () => void, version: string) => {
    await rig.cloud.kill('SIGKILL');
    const had = spoolBytes();
    const chunk = say(`${what} while the cloud is away`, 60_000);
    await until(`${what}: the spool to take the output`, () => spoolBytes() - had >= chunk.length * 0.7, 15_000);
    await relay.kill('SIGTERM');
    assert.equal(relay.child.exitCode, 0, relay.err);
    assert.ok(spoolBytes() > 0, 'the stopped relay left unsent output in its spool');
    then();
    relay = startUnit(root, 'cloudcons-relay.service');
    await relay.waitFor(/console ser1 up/);
    runningFrom(relay, version);
    say(`${what} before the cloud is back`, 2000);
    await rig.restartCloud();
    await rig.relayUp(relay);
    say(`${what} after`, 2000);
    await storedAll(what);
  };

  // Upgrade: install the newer folder, restart.
  await outage('upgrade', () => {
    const out = install(v2, ['--root', root]);
    assert.match(out, /0\.1\.1 is current \(was 0\.1\.0\)/);
    assert.match(out, /rollback: .*--rollback 0\.1\.0/);
    assert.equal(fs.readlinkSync(path.join(opt, 'current')), '0.1.1');
    assert.equal(fs.readFileSync(path.join(etc, 'relay.yaml'), 'utf8'), relayYaml, 'the operator\'s relay.yaml is kept');
    assert.match(fs.readFileSync(path.join(etc, 'relay.env'), 'utf8'), /CLOUDCONS_URL=/, 'and relay.env');
  }, '0.1.1');

  // Rollback: current back to 0.1.0 (the old folder is still there), restart.
  await outage('rollback', () => {
    const list = install(v2, ['--list', '--root', root]);
    assert.equal(list, '  0.1.0\n* 0.1.1\n');
    install(path.join(opt, 'current'), ['--rollback', '0.1.0', '--root', root]);
    assert.equal(fs.readlinkSync(path.join(opt, 'current')), '0.1.0');
  }, '0.1.0');

  await relay.kill('SIGTERM');
  assert.equal(relay.child.exitCode, 0, relay.err);
  peer.close();
});

test('install.sh refuses what it cannot do in one clear line, and changes nothing', async () => {
  const dir = (await import('../helpers.ts')).tmpDir('install-bad');
  const root = path.join(dir, 'root');
  const v1 = releaseFolder(dir, '0.1.0');
  const run = (args: string[], folder = v1) => spawnSync('sh', [path.join(folder, 'install.sh'), ...args], { encoding: 'utf8' });
  let r = run(['--rollback', '9.9.9', '--root', root]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^install.sh: version 9\.9\.9 is not installed in .*opt\/cloudcons \(--list shows the installed ones\)\n$/);
  r = run(['--bogus']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown option '--bogus' \(see --help\)/);
  r = run(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--rollback VERSION/);
  fs.writeFileSync(path.join(v1, 'VERSION'), '../evil\n');
  r = run(['--root', root]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /VERSION holds '\.\.\/evil', not a version/);
  assert.ok(!fs.existsSync(path.join(root, 'opt')), 'nothing installed');
});
