import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BadParameter, ConfigError, Unauthorized } from '../protocol/errors.ts';
import { NOT_LOGGED_IN, localLoginFile, normalizeUrl, resolveLogin, saveLogin, userLoginFile } from './login-config.ts';

function tempTree() {
  const root = mkdtempSync(join(tmpdir(), 'cloudcons-login-'));
  const home = join(root, 'home');
  const project = join(root, 'project');
  const cwd = join(project, 'sub', 'dir');
  mkdirSync(home, { recursive: true });
  mkdirSync(cwd, { recursive: true });
  return { root, home, project, cwd, done: () => rmSync(root, { recursive: true, force: true }) };
}
function write(file: string, content: unknown) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
}
const mode = (p: string) => statSync(p).mode & 0o777;

test('login: flags beat environment beat local file beat user file', (t) => {
  const d = tempTree(); t.after(d.done);
  const userFile = userLoginFile({}, d.home);
  write(userFile, { url: 'http://user.example', token: 'user-token' });
  const base = { cwd: d.cwd, home: d.home };
  assert.deepEqual(resolveLogin({ ...base, env: {} }), { url: 'http://user.example', token: 'user-token', source: userFile });

  const localFile = localLoginFile(d.project);
  write(localFile, { url: 'http://local.example:8080/', token: 'local-token' });
  assert.deepEqual(resolveLogin({ ...base, env: {} }), { url: 'http://local.example:8080', token: 'local-token', source: localFile });

  const env = { CLOUDCONS_URL: 'https://env.example', CLOUDCONS_TOKEN: 'env-token' };
  assert.deepEqual(resolveLogin({ ...base, env }), { url: 'https://env.example', token: 'env-token', source: 'environment' });

  assert.deepEqual(resolveLogin({ ...base, env, url: 'https://flag.example', token: 'flag-token' }),
    { url: 'https://flag.example', token: 'flag-token', source: 'flags' });
});

test('login: each variable is independent; a file token only goes to the URL it was saved for', (t) => {
  const d = tempTree(); t.after(d.done);
  const localFile = localLoginFile(d.project);
  write(localFile, { url: 'http://127.0.0.1:7070', token: 'demo-token' });
  const base = { cwd: d.cwd, home: d.home };
  // Token from the environment, URL from the file.
  assert.deepEqual(resolveLogin({ ...base, env: { CLOUDCONS_TOKEN: 'env-token' } }),
    { url: 'http://127.0.0.1:7070', token: 'env-token', source: `url: ${localFile}, token: environment` });
  // URL from the environment that matches the file: the file's token is used.
  assert.equal(resolveLogin({ ...base, env: { CLOUDCONS_URL: 'ws://127.0.0.1:7070/' } }).token, 'demo-token');
  // URL for another cloud: the demo token is not sent there.
  assert.throws(() => resolveLogin({ ...base, env: {}, url: 'https://prod.example' }), (e: unknown) => e instanceof Unauthorized && e.message === NOT_LOGGED_IN);
  // ... but the user file's token is, when it was saved for that cloud.
  write(userLoginFile({}, d.home), { url: 'https://prod.example', token: 'prod-token' });
  assert.deepEqual(resolveLogin({ ...base, env: {}, url: 'https://prod.example/' }),
    { url: 'https://prod.example', token: 'prod-token', source: `url: flags, token: ${userLoginFile({}, d.home)}` });
});

test('login: the local file is found in parent directories', (t) => {
  const d = tempTree(); t.after(d.done);
  write(localLoginFile(d.root), { url: 'http://far.example', token: 'far' });
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: {} }).url, 'http://far.example');
  write(localLoginFile(join(d.project, 'sub')), { url: 'http://near.example', token: 'near' });
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: {} }).url, 'http://near.example');
});

test('login: user file location follows XDG_CONFIG_HOME', (t) => {
  const d = tempTree(); t.after(d.done);
  assert.equal(userLoginFile({}, '/h'), '/h/.config/cloudcons/login.json');
  assert.equal(userLoginFile({ XDG_CONFIG_HOME: '/x' }, '/h'), '/x/cloudcons/login.json');
  assert.equal(userLoginFile({ XDG_CONFIG_HOME: 'rel' }, '/h'), '/h/.config/cloudcons/login.json');
  const xdg = join(d.root, 'xdg');
  write(join(xdg, 'cloudcons', 'login.json'), { url: 'http://xdg.example', token: 'x' });
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: { XDG_CONFIG_HOME: xdg } }).url, 'http://xdg.example');
});

test('login: nothing configured gives Unauthorized with the login hint', (t) => {
  const d = tempTree(); t.after(d.done);
  for (const env of [{}, { CLOUDCONS_URL: 'http://a.example' }, { CLOUDCONS_TOKEN: 'tok' }, { CLOUDCONS_URL: '', CLOUDCONS_TOKEN: '' }]) {
    assert.throws(() => resolveLogin({ cwd: d.cwd, home: d.home, env }), (e: unknown) => {
      assert.ok(e instanceof Unauthorized);
      assert.equal(e.message, 'not logged in: run `cloudcons login URL --token-file FILE` or set CLOUDCONS_URL and CLOUDCONS_TOKEN_FILE (or CLOUDCONS_TOKEN)');
      return true;
    });
  }
});

test('login: a malformed login file gives a ConfigError naming the file', (t) => {
  const d = tempTree(); t.after(d.done);
  const file = localLoginFile(d.project);
  for (const [content, hint] of [['{not json', /not valid JSON/], [{ url: 'http://a' }, /token/], [{ url: 'ftp://a', token: 't' }, /ftp:\/\/a/], ['[]', /expected object/i]] as const) {
    write(file, content);
    assert.throws(() => resolveLogin({ cwd: d.cwd, home: d.home, env: {} }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.ok(e.message.includes(file), e.message);
      assert.match(e.message, hint);
      return true;
    });
  }
  // Files are not read when flags and environment say everything.
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: { CLOUDCONS_TOKEN: 't' }, url: 'http://a' }).url, 'http://a');
});

test('login: URL validation and normalization', () => {
  assert.equal(normalizeUrl('http://h:1/'), 'http://h:1');
  assert.equal(normalizeUrl('https://h/prod/'), 'https://h/prod');
  assert.equal(normalizeUrl('ws://h:7070'), 'http://h:7070');
  assert.equal(normalizeUrl('wss://h/x'), 'https://h/x');
  for (const bad of ['ftp://h', 'localhost:8080', 'not a url', '', 'file:///etc/passwd']) {
    assert.throws(() => normalizeUrl(bad), (e: unknown) => e instanceof BadParameter && e.message.includes(`'${bad}'`));
  }
  assert.throws(() => resolveLogin({ env: {}, url: 'gopher://x', token: 't' }), BadParameter);
  assert.throws(() => resolveLogin({ env: { CLOUDCONS_URL: 'nope', CLOUDCONS_TOKEN: 't' } }), /'nope'/);
});

test('login: a bad token is rejected without echoing it', () => {
  assert.throws(() => resolveLogin({ env: {}, url: 'http://a', token: 'sec ret' }), (e: unknown) => e instanceof BadParameter && !e.message.includes('sec ret'));
  assert.throws(() => resolveLogin({ env: {}, url: 'http://a', token: '' }), BadParameter);
});

test('saveLogin: directory 0700, file 0600, atomic, and readable by resolveLogin', (t) => {
  const d = tempTree(); t.after(d.done);
  const file = localLoginFile(d.project);
  saveLogin(file, { url: 'wss://demo.example/', token: 'tok-1' });
  assert.equal(mode(dirname(file)), 0o700);
  assert.equal(mode(file), 0o600);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { url: 'https://demo.example', token: 'tok-1' });
  assert.deepEqual(resolveLogin({ cwd: d.cwd, home: d.home, env: {} }), { url: 'https://demo.example', token: 'tok-1', source: file });

  chmodSync(file, 0o644);
  saveLogin(file, { url: 'http://demo.example', token: 'tok-2' });
  assert.equal(mode(file), 0o600);
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: {} }).token, 'tok-2');
  assert.deepEqual(readdirSync(dirname(file)), ['login.json'], 'temp file left behind');
});

test('saveLogin: refuses a bad URL or token and leaves no file', (t) => {
  const d = tempTree(); t.after(d.done);
  const file = join(d.home, 'x', 'login.json');
  assert.throws(() => saveLogin(file, { url: 'mailto:a@b', token: 't' }), BadParameter);
  assert.throws(() => saveLogin(file, { url: 'http://a', token: 'a\nb' }), BadParameter);
  assert.throws(() => statSync(file), /ENOENT/);
});

test('login: the certificate pin comes from flags, else the environment, else the file that names the URL', (t) => {
  const d = tempTree(); t.after(d.done);
  const fp = `SHA256:${'AB:'.repeat(31)}CD`, fp2 = `SHA256:${'12:'.repeat(31)}34`;
  const file = userLoginFile({}, d.home);
  saveLogin(file, { url: 'https://pinned.example', token: 'tok', fingerprint: fp.replace('SHA256:', '').toLowerCase() });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).fingerprint, fp, 'stored in one form');
  const base = { cwd: d.cwd, home: d.home };
  assert.equal(resolveLogin({ ...base, env: {} }).fingerprint, fp);
  // URL and token from the environment: the pin saved with the same URL still applies, not with another.
  assert.equal(resolveLogin({ ...base, env: { CLOUDCONS_URL: 'https://pinned.example', CLOUDCONS_TOKEN: 't2' } }).fingerprint, fp);
  assert.equal(resolveLogin({ ...base, env: { CLOUDCONS_URL: 'https://other.example', CLOUDCONS_TOKEN: 't2' } }).fingerprint, undefined);
  assert.deepEqual(resolveLogin({ ...base, env: { CLOUDCONS_FINGERPRINT: fp2, CLOUDCONS_INSECURE: '1' } }), { url: 'https://pinned.example', token: 'tok', source: file, fingerprint: fp2, insecure: true });
  const viaFlag = resolveLogin({ ...base, env: { CLOUDCONS_FINGERPRINT: fp2 }, ca: 'ca.pem' });
  assert.deepEqual([viaFlag.ca, viaFlag.fingerprint], [join(d.cwd, 'ca.pem'), undefined], 'a flag wins, a relative CA path is made absolute');
  assert.throws(() => resolveLogin({ ...base, env: {}, ca: '/ca.pem', fingerprint: fp }), /flags: give a CA file or a certificate fingerprint to trust, not both/);

  saveLogin(file, { url: 'https://pinned.example', token: 'tok', ca: 'rel/ca.pem' });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).ca, join(process.cwd(), 'rel', 'ca.pem'));
  write(file, { url: 'https://pinned.example', token: 'tok', fingerprint: 'nope', ca: 'relative.pem' });
  assert.throws(() => resolveLogin({ ...base, env: {} }), (e: Error) => e instanceof ConfigError && /fingerprint: invalid certificate fingerprint/.test(e.message) && /ca: must be an absolute path/.test(e.message));
});

test('login: a token from --token-file or CLOUDCONS_TOKEN_FILE, not from the command line; --token still works, warned', (t) => {
  const d = tempTree(); t.after(d.done);
  const file = join(d.home, 'token');
  writeFileSync(file, 'ccu_fromfile\n', { mode: 0o600 });
  const warned: string[] = [];
  const warn = (l: string) => { warned.push(l); };
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: { CLOUDCONS_URL: 'http://a.example', CLOUDCONS_TOKEN: 'ccu_env' }, tokenFile: file, warn }).token, 'ccu_fromfile');
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: { CLOUDCONS_URL: 'http://a.example', CLOUDCONS_TOKEN_FILE: file, CLOUDCONS_TOKEN: 'ccu_env' }, warn }).token, 'ccu_fromfile');
  assert.equal(warned.length, 0);
  assert.equal(resolveLogin({ cwd: d.cwd, home: d.home, env: { CLOUDCONS_URL: 'http://a.example' }, token: 'ccu_flag', warn }).token, 'ccu_flag');
  assert.match(warned.join('\n'), /--token puts the token on the command line, where `ps` shows it/);
  assert.throws(() => resolveLogin({ cwd: d.cwd, home: d.home, env: { CLOUDCONS_URL: 'http://a.example' }, tokenFile: join(d.home, 'missing'), warn }), /token file .*missing: no such file/);
});
