// Transport security end to end, through real processes on loopback: a cloud serving HTTPS + WSS
// with a certificate from a test CA, relays and the CLI trusting it by --ca, by fingerprint (flag,
// environment, relay config) and refusing a wrong pin or an unknown CA before anything is sent;
// `cloud --tls-self-signed` (fingerprint printed, pinned by `login`, reused on restart); the web
// viewer over HTTPS/WSS in a browser; plain HTTP only on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeSelfSigned } from '../../cloud/server/tls.ts';
import { certFingerprint, cloudTls } from '../../protocol/tls.ts';
import { cleanup, cli, cloudcons, createToken, freePort, Proc, Terminal, tmpDir, until } from '../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';

let dir: string, data: string, url: string, cloud: Proc, fp: string;
const files: Record<string, string> = {};
const tokens: Record<string, string> = {};
/** Environment for a CLI run: nothing from the caller's login files or CLOUDCONS_* variables. */
const clean = (extra: NodeJS.ProcessEnv = {}) => ({ CLOUDCONS_URL: '', CLOUDCONS_TOKEN: '', CLOUDCONS_CA: '', CLOUDCONS_FINGERPRINT: '', CLOUDCONS_INSECURE: '', XDG_CONFIG_HOME: path.join(dir, 'config'), ...extra });
const as = (user: string, extra: NodeJS.ProcessEnv = {}) => clean({ CLOUDCONS_URL: url, CLOUDCONS_TOKEN: tokens[user], ...extra });

async function startTlsCloud(dataDir: string, args: string[]): Promise<{ proc: Proc; url: string; fingerprint: string }> {
  const proc = cloudcons(['cloud', '--data', dataDir, ...args], clean());
  const [, u] = await proc.waitFor(/listening on (https:\/\/\S+)/);
  const [, f] = await proc.waitFor(/TLS certificate fingerprint: (SHA256:\S+)/);
  return { proc, url: u, fingerprint: f };
}

function relay(name: string, consoleName: string, args: string[], yamlExtra = '', env: NodeJS.ProcessEnv = {}): Proc {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `relay:\n  name: ${name}\n${yamlExtra}consoles:\n  ${consoleName}: { type: exec, command: [/bin/sh], env: { PS1: '${consoleName}$ ' } }\n`);
  return cloudcons(['relay', '--config', file, '--spool', path.join(dir, `spool-${name}`), '--cloud', url, '--token', tokens[name], '--segment-ms', '300', ...args], clean(env));
}

function consoles(env: NodeJS.ProcessEnv, args: string[] = []): { name: string; state: string }[] {
  const r = cli(['ls', '--json', ...args], env, dir);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString());
}

before(async () => {
  dir = tmpDir('tls');
  data = path.join(dir, 'data');
  const ca = await makeSelfSigned([], { commonName: 'cloudcons test CA' });
  const otherCa = await makeSelfSigned([], { commonName: 'some other CA' });
  const leaf = await makeSelfSigned(['127.0.0.1', 'localhost'], { ca });
  for (const [n, text] of Object.entries({ ca: ca.cert, otherCa: otherCa.cert, cert: leaf.cert, key: leaf.key })) {
    files[n] = path.join(dir, `${n}.pem`);
    fs.writeFileSync(files[n], text, { mode: 0o600 });
  }
  ({ proc: cloud, url, fingerprint: fp } = await startTlsCloud(data, ['--port', '0', '--tls-cert', files.cert, '--tls-key', files.key]));
  assert.equal(fp, certFingerprint(leaf.cert), 'the cloud prints its certificate\'s fingerprint');
  tokens.alice = createToken(data, 'user', 'alice');
  for (const r of ['edge1', 'edge2', 'edge3']) tokens[r] = createToken(data, 'relay', r);
});
after(cleanup);

test('CLI and relays over HTTPS/WSS trusting the cloud by --ca, and by fingerprint (flag, environment, relay config)', async () => {
  const r1 = relay('edge1', 'tls1', ['--ca', files.ca]);
  const r2 = relay('edge2', 'tls2', [], `  cloud: { fingerprint: '${fp.replace('SHA256:', '').replace(/:/g, '').toLowerCase()}' }\n`);
  await r1.waitFor(/connected to https:\/\//);
  await r2.waitFor(/connected to https:\/\//);
  await until('both consoles up, listed over HTTPS with --ca', () => {
    const cs = consoles(as('alice'), ['--ca', files.ca]);
    return cs.find((c) => c.name === 'tls1')?.state === 'up' && cs.find((c) => c.name === 'tls2')?.state === 'up';
  }, 20_000);
  assert.equal(consoles(as('alice', { CLOUDCONS_FINGERPRINT: fp })).length, 2, 'ls with CLOUDCONS_FINGERPRINT');
  assert.equal(consoles(as('alice'), ['--fingerprint', fp]).length, 2, 'ls with --fingerprint');

  // attach over WSS: type, see the shell's answer; then a spy by fingerprint on the other console.
  const t = new Terminal(['attach', 'tls1', '--ca', files.ca], as('alice'), dir);
  await t.waitFor('[attached to tls1: read-write]');
  t.write('echo tls-$((6*7))\r');
  await t.waitFor(/\ntls-42/);
  t.write('\x05c.');
  await t.waitFor('[disconnect]');
  const s = new Terminal(['attach', 'tls2', '-s', '--fingerprint', fp], as('alice'), dir);
  await s.waitFor('[attached to tls2: spy, read-only]');
  s.write('\x05c.');
  await s.waitFor('[disconnect]');

  // The relay's segment uploads (HTTP PUT) go through the same pin: sealed output reaches the store.
  await r1.waitFor(/segment uploads go through the cloud/, 15_000);
  await until('a segment of tls1 stored', () => fs.readdirSync(path.join(data, 'segments', 'logs', 'tls1'), { recursive: true }).some((f) => String(f).endsWith('.seg')), 15_000);
  const rep = cli(['replay', 'tls1', '--from', '0', '--fingerprint', fp], as('alice'), dir);
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(rep.stdout.toString(), /tls-42/);

  // The web viewer comes from the same HTTPS origin.
  const page = await cloudTls({ ca: files.ca }).fetch(`${url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  await r1.kill();
  await r2.kill();
});

test('a wrong fingerprint, an unknown CA or no trust at all: refused with the fingerprint seen, and nothing reaches the cloud', async () => {
  const logBefore = cloud.err.length;
  const wrong = `SHA256:${'AB:'.repeat(31)}CD`;
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--fingerprint', wrong], {}, new RegExp(`presented a TLS certificate with fingerprint ${fp}, not the pinned ${wrong}; refusing to connect`)],
    [['--ca', files.otherCa], {}, new RegExp(`cannot verify the TLS certificate of the cloud at 127\\.0\\.0\\.1:\\d+: it is signed by a CA that is not trusted .*presented fingerprint ${fp}`)],
    [[], { CLOUDCONS_CA: files.otherCa }, /it is signed by a CA that is not trusted/],
    [[], {}, /cannot verify the TLS certificate .*--ca FILE .*--fingerprint SHA256:/],
  ];
  for (const [args, env, re] of cases) {
    const r = cli(['ls', ...args], as('alice', env), dir);
    assert.equal(r.code, 1, `ls ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    const a = cli(['attach', 'tls1', ...args], as('alice', env), dir);
    assert.equal(a.code, 1, `attach ${args.join(' ')}`);
    assert.match(a.stdout.toString() + a.stderr, re);
  }
  const r3 = relay('edge3', 'tls3', ['--fingerprint', wrong]);
  await r3.waitFor(/presented a TLS certificate with fingerprint SHA256:\S+, not the pinned/, 15_000);
  await r3.kill();
  assert.ok(!consoles(as('alice'), ['--ca', files.ca]).some((c) => c.name === 'tls3'), 'the refused relay\'s console is unknown to the cloud');
  const log = cloud.err.slice(logBefore);
  assert.doesNotMatch(log, /edge3|session alice connected|relay \S+ connected/, 'no WebSocket of a refused client was opened');
});

test('cloud --tls-self-signed: its printed fingerprint is the pin; login stores it; the certificate is reused on restart', async () => {
  const d = path.join(dir, 'ss-data');
  const port = await freePort();
  let c = await startTlsCloud(d, ['--port', String(port), '--tls-self-signed']);
  assert.match(c.proc.out, /self-signed, made now/);
  assert.match(c.proc.out, new RegExp(`cloudcons login ${c.url} --token TOKEN --fingerprint ${c.fingerprint}`));
  const admin = fs.readFileSync(path.join(d, 'admin-token'), 'utf8').trim();
  const env = clean({ XDG_CONFIG_HOME: path.join(dir, 'ss-config') });

  const refused = cli(['login', c.url, '--token', admin], env, dir);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`it is self-signed .*presented fingerprint ${c.fingerprint}`));
  const ok = cli(['login', c.url, '--token', admin, '--fingerprint', c.fingerprint], env, dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout.toString(), /certificate pinned/);
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'ss-config', 'cloudcons', 'login.json'), 'utf8'));
  assert.deepEqual({ url: saved.url, fingerprint: saved.fingerprint }, { url: c.url, fingerprint: c.fingerprint });
  const who = cli(['whoami'], env, dir);
  assert.equal(who.code, 0, who.stderr);
  assert.match(who.stdout.toString(), /admin/);

  await c.proc.kill();
  c = await startTlsCloud(d, ['--port', String(port), '--tls-self-signed']);
  assert.match(c.proc.out, /self-signed, reused/);
  assert.equal(c.fingerprint, JSON.parse(fs.readFileSync(path.join(dir, 'ss-config', 'cloudcons', 'login.json'), 'utf8')).fingerprint);
  const again = cli(['ls'], env, dir);
  assert.equal(again.code, 0, again.stderr);
  await c.proc.kill();
});

test('the web viewer over HTTPS: the page and its WebSocket (wss://) on the same origin', { skip: fs.existsSync(CHROMIUM) ? undefined : 'chromium is not installed', timeout: 120_000 }, async () => {
  const r1 = relay('edge1', 'tls1', ['--ca', files.ca]);
  await r1.waitFor(/console tls1 up/);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    // The browser does not know the test CA: it is told to accept the certificate, as a user would.
    const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${url}/#/c/tls1`);
    await page.fill('#token', tokens.alice);
    await page.click('button[type=submit]');
    await page.getByTestId('mode').filter({ hasText: 'spy' }).waitFor();
    // Playwright's websocket event can reach the test after the page has already shown the mode.
    await until(`a wss: session socket (${sockets.join(', ')})`, () => sockets.some((u) => u.startsWith(`${url.replace('https:', 'wss:')}/v1/session`)), 10_000);
  } finally {
    await browser.close();
    await r1.kill();
  }
});

test('plain HTTP only on loopback: the cloud will not listen on another address without TLS; CLI and relay refuse http:// elsewhere', () => {
  const d = path.join(dir, 'plain-data');
  const c = cli(['cloud', '--data', d, '--host', '0.0.0.0', '--port', '0'], clean(), dir);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /refusing to serve plain HTTP on 0\.0\.0\.0: .*--tls-cert FILE --tls-key FILE.*--tls-self-signed.*--insecure-http/);
  assert.ok(!fs.existsSync(d), 'nothing was written');

  const ls = cli(['ls', '--url', 'http://192.0.2.10:7420', '--token', tokens.alice], clean(), dir);
  assert.equal(ls.code, 2);
  assert.match(ls.stderr, /refusing plain http:\/\/ to 192\.0\.2\.10:7420: .*--insecure \(or CLOUDCONS_INSECURE=1\)/);
  const login = cli(['login', 'http://cloud.example:7420', '--token', tokens.alice], clean(), dir);
  assert.equal(login.code, 2);
  assert.match(login.stderr, /refusing plain http:\/\/ to cloud\.example:7420/);
  fs.writeFileSync(path.join(dir, 'plain.yaml'), 'consoles:\n  p1: { type: exec, command: cat }\n');
  const r = cli(['relay', '--config', path.join(dir, 'plain.yaml'), '--spool', path.join(dir, 'spool-plain'), '--cloud', 'http://192.0.2.10:7420', '--token', tokens.edge1], clean(), dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /refusing plain http:\/\/ to 192\.0\.2\.10:7420/);
});
