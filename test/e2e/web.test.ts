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

/** A cloud and a relay process holding `consoles` (YAML lines), a user token per name, and Debian's
 *  chromium. The caller closes the browser and kills the relay; cleanup() the rest. */
async function webRig(prefix: string, users: string[], consoles: string) {
  const { chromium } = await import('playwright-core');
  fs.mkdirSync(SHOTS, { recursive: true });
  const dir = tmpDir(prefix);
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data);
  const relayTok = createToken(data, 'relay', 'edge1');
  const tokens = users.map((u) => createToken(data, 'user', u));
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n${consoles}`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
  await relay.waitFor(/console demo up/);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  return { cloud, relay, browser, tokens };
}

test('web viewer: sign in, list, open, type, a spy sees it, force moves the lock and the first page shows the bump', { skip, timeout: 180_000 }, async () => {
  const { cloud, relay, browser, tokens: [alice, bob] } = await webRig('web', ['alice', 'bob'],
    "  demo: { type: exec, command: [/bin/sh], env: { PS1: 'demo$ ' } }\n  other: { type: exec, command: [/bin/sh] }\n");
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
    const signins = ((await (await fetch(`${cloud.url}/v1/consoles/_cloud/audit`, { headers: { authorization: `Bearer ${cloud.adminToken}` } })).json()) as { records: unknown }).records as { type: string; user?: string; detail?: string }[];
    assert.ok(signins.some((r) => r.type === 'auth.signin' && r.user === 'alice' && /^web viewer/.test(r.detail ?? '')), 'the sign-in is audited');
    assert.ok(signins.some((r) => r.type === 'auth.failure' && /HTTP GET \/v1\/whoami/.test(r.detail ?? '')), 'so is the refused one');
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

test('web viewer: rendering (colours, cursor movement, a full-screen program), replay seeks to a time, search, audit with answers and CSV, phone layout', { skip, timeout: 240_000 }, async () => {
  const { cloud, relay, browser, tokens: [alice] } = await webRig('web2', ['alice'],
    "  demo: { type: exec, command: [/bin/sh], env: { PS1: 'demo$ ', TERM: xterm-256color }, cols: 100, rows: 30 }\n");
  try {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 }, acceptDownloads: true });
    const a = await ctx.newPage();
    const errors: string[] = [];
    a.on('pageerror', (e) => errors.push(e.message));
    const screen = () => a.evaluate(() => (globalThis as unknown as { cloudcons: { screen(): string } }).cloudcons.screen());
    await a.goto(`${cloud.url}/#/c/demo`);
    await a.fill('#token', alice);
    await a.click('button[type=submit]');
    await a.getByRole('button', { name: 'Take lock' }).click();
    await a.getByTestId('mode').filter({ hasText: 'read-write' }).waitFor();
    await a.locator('.xterm').click();

    // Colours and cursor movement: the terminal's cells, as xterm.js serializes them.
    await a.keyboard.type("printf '\\033[31mRED\\033[0m plain \\033[1;32mBOLDGREEN\\033[0m\\n'; printf 'abcdef\\033[4Dxy\\n'\n");
    // (The serializer puts an SGR reset where the colour ends: at the start of the next line.)
    await until('the output on screen', async () => /\n(?:\x1b\[[\d;]*m)*abxyef/.test(await screen()), 15_000).catch(async (e) => { throw new Error(`${e.message}; screen: ${JSON.stringify(await screen())}`); });
    const shot = await screen();
    assert.match(shot, /\x1b\[31mRED/, 'red foreground');
    assert.match(shot, /\x1b\[1;32mBOLDGREEN|\x1b\[32;1mBOLDGREEN/, 'bold green');
    assert.match(shot, /\n(?:\x1b\[[\d;]*m)*abxyef\r?\n/, 'the cursor moved back 4 and overwrote two characters');

    // A full-screen program (top, on the alternate screen) renders as a terminal shows it, then leaves.
    await a.keyboard.type('top -d 1\n');
    await until('top on screen', async () => /load average[^]*PID\s+USER/.test(await screen()), 20_000);
    await a.screenshot({ path: path.join(SHOTS, '6-fullscreen-top.png') });
    await a.keyboard.type('q');
    await until('back at the prompt', async () => (await screen()).replace(/\x1b\[[\d;?]*[a-zA-Z]/g, '').trimEnd().endsWith('demo$'), 10_000)
      .catch(async (e) => { throw new Error(`${e.message}; screen: ${JSON.stringify((await screen()).slice(-400))}`); });

    // Two commands with a known moment between them.
    await a.keyboard.type('echo first-$((1+1))\n');
    await until('first', async () => /\nfirst-2/.test(await screen()));
    await new Promise((r) => setTimeout(r, 2000));
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    await a.keyboard.type('echo second-$((2+2))\n');
    await until('second', async () => /\nsecond-4/.test(await screen()));
    // A line a spreadsheet would run as a formula, for the CSV export below.
    await a.keyboard.type('=1+2\n');
    await until('the shell answered it', async () => /=1\+2: not found/.test(await screen()));

    // Replay: jump to the moment between them: the first answer is there, the second not yet.
    await a.goto(`${cloud.url}/#/c/demo/replay`);
    await a.getByTestId('replay-info').filter({ hasText: 'chunks' }).waitFor();
    const local = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    await a.getByLabel('Jump to time').fill(local(between));
    await a.getByRole('button', { name: 'Go' }).click();
    await until('the screen at that moment', async () => /\nfirst-2/.test(await screen()), 10_000);
    assert.doesNotMatch(await screen(), /second-4/);
    await a.screenshot({ path: path.join(SHOTS, '7-replay-seek.png') });
    // Search jumps to the match; the timeline shows events (attach, lock).
    await a.getByLabel('Search the history').fill('second-4');
    await a.getByLabel('Search the history').press('Enter');
    await a.getByTestId('matches').filter({ hasText: 'match 1 of 1' }).waitFor({ timeout: 10_000 })
      .catch(async (e) => { throw new Error(`${e.message}; matches: ${await a.getByTestId('matches').innerText()}`); });
    // (The jump redraws the terminal at the match: the count can show before the screen does.)
    await until('the match on screen', async () => /\nsecond-4/.test(await screen()), 10_000);
    assert.match(await a.getByTestId('marks').innerText(), /attach alice[^]*lock alice/);
    // Play from the start at 64x: it reaches the end by itself.
    await a.getByLabel('Speed').selectOption('64');
    await a.getByLabel('Jump to time').fill(local(between - 60_000));
    await a.getByRole('button', { name: 'Go' }).click();
    await a.getByRole('button', { name: 'Play' }).click();
    await until('played to the end', async () => /\nsecond-4/.test(await screen()) && (await a.getByRole('button', { name: 'Play' }).count()) === 1, 30_000);

    // Audit: the typed command under alice, with the console's answer after it; CSV export.
    await a.goto(`${cloud.url}/#/audit/demo`);
    const row = a.locator('tr.audit', { hasText: 'echo first-$((1+1))^M' });
    await row.waitFor();
    // (The answers come in a second pass, after the console's output is fetched.)
    await row.locator('pre.answer').waitFor({ timeout: 10_000 });
    // (Keystrokes are joined up to Enter: the `q` that ended top is on this line too.)
    assert.match(await row.innerText(), /alice\s+input\s+q?echo first-\$\(\(1\+1\)\)\^M\s+first-2\b/);
    await a.getByPlaceholder('user').fill('bob');
    await a.getByTestId('audit-status').filter({ hasText: /^0 of/ }).waitFor();
    await a.getByPlaceholder('user').fill('ali');
    const [download] = await Promise.all([a.waitForEvent('download'), a.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^time,console,user,type,what,session,fence,offset\r\n/);
    assert.match(csv, /,demo,alice,input,echo second-\$\(\(2\+2\)\)\^M,/);
    assert.match(csv, /,demo,alice,input,'=1\+2\^M,/, 'a formula is exported as text');
    assert.doesNotMatch(csv, /(^|,)[=+\-@]/m, 'no cell starts like a formula');
    await a.screenshot({ path: path.join(SHOTS, '8-audit.png') });

    // A phone-sized screen: the list and the audit still read.
    await a.setViewportSize({ width: 390, height: 800 });
    await a.goto(`${cloud.url}/#/`);
    await a.locator('tr[data-console=demo]').waitFor();
    await a.screenshot({ path: path.join(SHOTS, '9-phone-list.png') });
    await a.goto(`${cloud.url}/#/audit/demo`);
    await a.locator('tr.audit').first().waitFor();
    const overflow = await a.evaluate(() => { const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement; return d.scrollWidth - d.clientWidth; });
    assert.ok(overflow <= 4, `no sideways scrolling on a phone (${overflow} px)`);
    await a.screenshot({ path: path.join(SHOTS, '10-phone-audit.png') });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await relay.kill();
  }
});

test('web viewer: a user with read-only access (access rules) spies, the lock buttons are off, and the cloud refuses a lock anyway', { skip, timeout: 120_000 }, async () => {
  const { cloud, relay, browser, tokens: [reader] } = await webRig('web-ro', ['reader'], "  demo: { type: exec, command: [/bin/sh], env: { PS1: 'demo$ ' } }\n");
  try {
    const put = await fetch(`${cloud.url}/v1/access`, { method: 'PUT', headers: { authorization: `Bearer ${cloud.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ doc: { rules: [{ consoles: 'demo', who: 'reader', allow: 'ro' }] } }) });
    assert.equal(put.status, 200, await put.text());
    const p = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
    await p.goto(`${cloud.url}/#/c/demo`);
    await p.fill('#token', reader);
    await p.click('button[type=submit]');
    await p.getByTestId('mode').filter({ hasText: 'spy' }).waitFor();
    await p.getByTestId('notice').filter({ hasText: 'read-only access' }).waitFor();
    assert.equal(await p.getByRole('button', { name: 'Take lock' }).isDisabled(), true);
    assert.equal(await p.getByRole('button', { name: 'Force' }).isDisabled(), true);
    assert.equal(await p.getByRole('link', { name: 'Audit' }).isVisible(), false);
    assert.equal(await p.getByRole('link', { name: 'Replay' }).isVisible(), true);
    await p.screenshot({ path: path.join(SHOTS, '11-read-only.png') });
    // The buttons are a courtesy: a lock asked for anyway is refused by the cloud.
    await p.evaluate(() => { for (const b of Array.from((globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ disabled: boolean }> } }).document.querySelectorAll('button'))) b.disabled = false; });
    await p.getByRole('button', { name: 'Take lock' }).click();
    await p.getByTestId('notice').filter({ hasText: 'you may not write to demo' }).waitFor();
    assert.match(await p.getByTestId('mode').innerText(), /spy/);
    // An admin's audit across consoles also shows the cloud's own stream: reader's sign-in, the rule change.
    const adm = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
    await adm.goto(`${cloud.url}/#/audit`);
    await adm.fill('#token', cloud.adminToken);
    await adm.click('button[type=submit]');
    await adm.getByLabel('Which records').selectOption('all');
    await adm.locator('tr.audit', { hasText: 'auth.signin' }).filter({ hasText: 'reader' }).first().waitFor();
    await adm.locator('tr.audit', { hasText: 'access.change' }).first().waitFor();
    await adm.screenshot({ path: path.join(SHOTS, '12-audit-cloud-stream.png') });
  } finally {
    await browser.close();
    relay.kill();
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
