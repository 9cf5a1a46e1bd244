// The web viewer in a real browser (Debian's chromium through playwright-core) against real cloud
// and relay processes: sign in, the console list, a console with the shared write lock. Two
// browser contexts are two users. Screenshots of each page go to test-artifacts/web/.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cloudcons, createToken, ROOT, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);
const CHROMIUM = '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? undefined : 'chromium is not installed (apt-get install chromium)';
const SHOTS = path.join(ROOT, 'test-artifacts', 'web');

test('web viewer: sign in, list, open, type, a spy sees it, force moves the lock and the first page shows the bump', { skip, timeout: 180_000 }, async () => {
  const { chromium } = await import('playwright-core');
  fs.mkdirSync(SHOTS, { recursive: true });
  const dir = tmpDir('web');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data);
  const relayTok = createToken(data, 'relay', 'edge1');
  const alice = createToken(data, 'user', 'alice');
  const bob = createToken(data, 'user', 'bob');
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  demo: { type: exec, command: [/bin/sh], env: { PS1: 'demo$ ' } }\n  other: { type: exec, command: [/bin/sh] }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
  await relay.waitFor(/console demo up/);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const a = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
    const b = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
    const errors: string[] = [];
    for (const p of [a, b]) p.on('pageerror', (e) => errors.push(e.message));
    const screen = (p: typeof a) => p.evaluate(() => (globalThis as unknown as { cloudcons: { screen(): string } }).cloudcons.screen());

    // Sign in: a wrong token is refused, the right one lands on the list.
    await a.goto(`${cloud.url}/`);
    await a.fill('#token', 'ccu_not-a-real-token-at-all-xxxxxxxx');
    await a.click('button[type=submit]');
    await a.getByTestId('signin-error').filter({ hasText: 'not valid' }).waitFor();
    await a.screenshot({ path: path.join(SHOTS, '1-signin-refused.png') });
    await a.fill('#token', alice);
    await a.click('button[type=submit]');
    await a.locator('tr[data-console=demo]').waitFor();
    assert.match(await a.getByTestId('whoami').innerText(), /alice/);
    assert.match(await a.locator('tr[data-console=demo]').innerText(), /demo\s+up.*exec\s+edge1/s);
    await a.fill('input[type=search]', 'oth*');
    await until('the filter hides demo', async () => (await a.locator('tr[data-console]').count()) === 1);
    await a.fill('input[type=search]', '');
    await a.screenshot({ path: path.join(SHOTS, '2-console-list.png') });

    // Open the console: spy by default; take the lock, type, see the shell's answer.
    await a.click('tr[data-console=demo] a');
    await a.getByTestId('mode').filter({ hasText: 'spy' }).waitFor();
    await a.getByRole('button', { name: 'Take lock' }).click();
    await a.getByTestId('mode').filter({ hasText: 'read-write' }).waitFor();
    await a.locator('.xterm').click();
    await a.keyboard.type('echo web-$((6*7))\n');
    await until('the answer on alice\'s screen', async () => /\nweb-42/.test(await screen(a)), 15_000);
    await a.screenshot({ path: path.join(SHOTS, '3-console-writer.png') });

    // Bob opens it directly: the history shows what happened; he is a spy and cannot type.
    await b.goto(`${cloud.url}/#/c/demo`);
    await b.fill('#token', bob);
    await b.click('button[type=submit]');
    await b.getByTestId('mode').filter({ hasText: 'spy' }).waitFor();
    await until('history on bob\'s screen', async () => /\nweb-42/.test(await screen(b)), 15_000);
    await b.getByTestId('writer').filter({ hasText: 'alice' }).waitFor();
    await b.locator('.xterm').click();
    await b.keyboard.type('rm -rf /tmp/nothing\n');
    await b.getByTestId('notice').filter({ hasText: 'You are a spy' }).waitFor();
    await a.keyboard.type('echo live-$((7*6))\n');
    await until('live output on bob\'s screen', async () => /\nlive-42/.test(await screen(b)), 15_000);
    assert.doesNotMatch(await screen(a), /rm -rf/, 'the spy\'s keys never reached the console');
    await b.screenshot({ path: path.join(SHOTS, '4-console-spy.png') });

    // Bob forces the lock (confirming); alice is told she was bumped and becomes a spy.
    b.once('dialog', (d) => void d.accept());
    await b.getByRole('button', { name: 'Force' }).click();
    await b.getByTestId('mode').filter({ hasText: 'read-write' }).waitFor();
    await a.getByTestId('bumped').filter({ hasText: 'You were bumped: bob forced the write lock' }).waitFor();
    await a.getByTestId('mode').filter({ hasText: 'spy' }).waitFor();
    await b.locator('.xterm').click();
    await b.keyboard.type('echo from-bob\n');
    await until('bob\'s command on alice\'s screen', async () => /\nfrom-bob/.test(await screen(a)), 15_000);
    await a.screenshot({ path: path.join(SHOTS, '5-console-bumped.png') });

    // The audit has each user's input under their name; tokens never appear in a URL or the log.
    const audit = (await (await fetch(`${cloud.url}/v1/consoles/demo/audit`, { headers: { authorization: `Bearer ${cloud.adminToken}` } })).json()) as { records: { type: string; user?: string; data?: string }[] };
    const typed = (u: string) => audit.records.filter((r) => r.type === 'input' && r.user === u).map((r) => Buffer.from(r.data ?? '', 'base64').toString()).join('');
    assert.match(typed('alice'), /echo web-\$\(\(6\*7\)\)\r/);
    assert.match(typed('bob'), /echo from-bob\r/);
    assert.ok(audit.records.some((r) => r.type === 'lock.force' && r.user === 'bob'));
    for (const p of [a, b]) assert.ok(!p.url().includes('ccu_'), p.url());
    assert.ok(!cloud.proc.err.includes(alice) && !cloud.proc.err.includes(bob), 'no token in the cloud log');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await relay.kill();
  }
});

test('web viewer: static files carry security headers and need no token; the API still does', async () => {
  const dir = tmpDir('web-static');
  const cloud = await startCloud(path.join(dir, 'data'));
  const r = await fetch(`${cloud.url}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
  assert.equal(r.headers.get('x-frame-options'), 'DENY');
  assert.match(await r.text(), /<script type="module" src="assets\/app.js">/);
  const js = await fetch(`${cloud.url}/assets/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.ok((await js.arrayBuffer()).byteLength > 100_000, 'xterm.js is bundled in');
  assert.equal((await fetch(`${cloud.url}/assets/../data/admin-token`)).status, 404);
  assert.equal((await fetch(`${cloud.url}/assets/%2e%2e/admin-token`)).status, 404);
  assert.equal((await fetch(`${cloud.url}/v1/consoles`)).status, 401);
  const etag = js.headers.get('etag')!;
  assert.equal((await fetch(`${cloud.url}/assets/app.js`, { headers: { 'if-none-match': etag } })).status, 304);
});
