// What a new user does after `npm ci && npm start`: the demo prints the next command, and that
// command works as printed from a second terminal in the same folder, with no token copying.
// Also `cloudcons login`, and a broken relay config reported in one message.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, cloudcons, Terminal, tmpDir, until } from '../helpers.ts';

after(cleanup);
const clean = (home: string) => ({ CLOUDCONS_URL: '', CLOUDCONS_TOKEN: '', HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') });

test('the demo prints the next command, which attaches to a live shell from the same folder', async () => {
  const cwd = tmpDir('demo');
  const demo = cloudcons(['demo', '--port', '0'], clean(cwd), cwd);
  const m = await demo.waitFor(/Next, in a second terminal in this folder, run:\s+npx (cloudcons attach demo)/);
  assert.match(demo.out, /data directory: .*\.cloudcons\/data/);
  assert.equal(fs.statSync(path.join(cwd, '.cloudcons', 'login.json')).mode & 0o777, 0o600);
  await until('demo console up', () => /demo\s+up\s+exec\s+local/.test(cli(['ls'], clean(cwd), cwd).stdout.toString()));
  const t = new Terminal([...m[1].split(' ').slice(1), '-e', '^]x'], clean(cwd), cwd);
  await t.waitFor('[attached to demo: read-write]');
  t.write('echo answer=$((6*7))\r');
  await t.waitFor('answer=42');
  t.write('stty size\r');
  await t.waitFor('30 100'); // the terminal's size reached the pty
  t.write('\x05c.'); // not the escape of this session: passed through to the shell
  t.write('\r');
  t.write('\x1dx?'); // -e '^]x': help
  await t.waitFor("[help: type ^]x then one of]");
  t.write('\x1dx.');
  await t.waitFor('[disconnect]');
  await until('CLI exited', () => t.screen.length > 0 && cli(['who', 'demo', '--json'], clean(cwd), cwd).stdout.toString().trim() === '[]');
  const audit = cli(['audit', 'demo'], clean(cwd), cwd).stdout.toString();
  assert.match(audit, /input\s+"echo answer=\$\(\(6\*7\)\)\^M"/);
  const tail = cli(['replay', 'demo', '--tail', '20'], clean(cwd), cwd).stdout.toString();
  assert.match(tail, /answer=42/);
  await demo.kill('SIGINT');
  assert.match(demo.err, /SIGINT: shutting down/);
});

test('cloudcons login stores URL and token with mode 0600 and later commands need no flags', async () => {
  const home = tmpDir('login');
  const data = path.join(home, 'data');
  const cloud = cloudcons(['cloud', '--data', data, '--port', '0'], clean(home));
  const url = (await cloud.waitFor(/listening on (http:\/\/\S+)/))[1];
  const admin = fs.readFileSync(path.join(data, 'admin-token'), 'utf8').trim();
  assert.equal(fs.statSync(path.join(data, 'admin-token')).mode & 0o777, 0o600);
  const wrong = cli(['login', url, '--token', 'ccu_notarealtokennotarealtoken'], clean(home), home);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /invalid or revoked token/);
  const ok = cli(['login', url, '--token', admin], clean(home), home);
  assert.equal(ok.code, 0, ok.stderr);
  const file = path.join(home, '.config', 'cloudcons', 'login.json');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(cli(['ls'], clean(home), home).code, 0);
  const cloudAudit = cli(['audit', '_cloud', '--json'], clean(home), home);
  const recs = JSON.parse(cloudAudit.stdout.toString()) as { type: string; user?: string; detail?: string }[];
  assert.ok(recs.some((x) => x.type === 'auth.signin' && x.user === 'admin' && /^cloudcons login/.test(x.detail ?? '')), 'cloudcons login is an audited sign-in');
  // an admin makes a user token over the API; that user is not an admin
  const bob = cli(['token', 'create', '--user', 'bob'], clean(home), home);
  assert.equal(bob.code, 0, bob.stderr);
  const r = cli(['token', 'create', '--user', 'eve', '--url', url, '--token', bob.stdout.toString().trim()], clean(home), home);
  assert.match(r.stderr, /user bob may not create tokens: only admins may/);
  const unreachable = cli(['ls', '--url', 'http://127.0.0.1:1', '--token', admin], clean(home), home);
  assert.match(unreachable.stderr, /cannot reach the cloud at http:\/\/127\.0\.0\.1:1/);
});

test('a broken relay config is reported once, listing every problem with file, console and field', () => {
  const dir = tmpDir('badcfg');
  const file = path.join(dir, 'relay.yaml');
  fs.writeFileSync(file, 'consoles:\n  web01:\n    type: serial\n    baud: fast\n  demo:\n    type: exec\n  x:\n    type: telepathy\n');
  const r = cli(['relay', '--config', file, '--cloud', 'http://127.0.0.1:1', '--token', 'ccr_xxxxxxxxxxxxxxxxxxxxxxxx']);
  assert.equal(r.code, 2);
  assert.ok(r.stderr.includes(file), r.stderr);
  assert.match(r.stderr, /web01.*device/);
  assert.match(r.stderr, /web01.*baud/);
  assert.match(r.stderr, /demo.*command/);
  assert.match(r.stderr, /x.*type/);
  const missing = cli(['relay', '--config', path.join(dir, 'nope.yaml'), '--cloud', 'http://127.0.0.1:1', '--token', 'ccr_xxxxxxxxxxxxxxxxxxxxxxxx']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nope\.yaml/);
});
