// The web viewer's "Sign in with SSO" in a real browser (Debian's chromium through playwright-core):
// a cloud process with --oidc-issuer pointing at an issuer this test runs (test/oidc-issuer.ts,
// whose /authorize approves at once as sso-alice). The Authorization Code flow with PKCE runs in
// the page; the ID token then opens the console list and a console's WebSocket. The code leaves the
// address bar at once, the token never enters a URL, and the CSP lets the page reach only the
// issuer's token endpoint.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cloudcons, createToken, ROOT, startCloud, tmpDir, until } from '../helpers.ts';
import { startTestIssuer } from '../oidc-issuer.ts';

after(cleanup);
const CHROMIUM = '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? undefined : 'chromium is not installed (apt-get install chromium)';
const SHOTS = path.join(ROOT, 'test-artifacts', 'web');

test('web viewer: Sign in with SSO (Authorization Code + PKCE) against a local issuer, then the list and a console on the ID token', { skip, timeout: 180_000 }, async () => {
  const { chromium } = await import('playwright-core');
  fs.mkdirSync(SHOTS, { recursive: true });
  const idp = await startTestIssuer();
  const dir = tmpDir('web-sso');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data, 0, { args: ['--oidc-issuer', idp.url, '--oidc-audience', idp.clientId, '--oidc-admin-group', 'console-admins'] });
  const relayTok = createToken(data, 'relay', 'edge1');
  fs.writeFileSync(path.join(dir, 'relay.yaml'), "relay: { name: edge1 }\nconsoles:\n  demo: { type: exec, command: [/bin/sh], env: { PS1: 'demo$ ' } }\n");
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
  await relay.waitFor(/console demo up/);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    const screen = () => page.evaluate(() => (globalThis as unknown as { cloudcons: { screen(): string } }).cloudcons.screen());

    // The sign-in page offers SSO; its CSP reaches the issuer's token endpoint and nothing else of it.
    const res = await page.goto(`${cloud.url}/#/c/demo`);
    assert.match(res!.headers()['content-security-policy']!, new RegExp(`connect-src 'self' ${idp.url}/token;`));
    await page.getByTestId('sso').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'sso-1-signin.png') });
    await page.getByTestId('sso').click();

    // Back from the issuer: signed in as the issuer's user, on the page asked for, without the code in the URL.
    await page.getByTestId('whoami').filter({ hasText: 'sso:sso-alice (admin)' }).waitFor({ timeout: 15_000 });
    assert.equal(page.url(), `${cloud.url}/#/c/demo`);
    await page.getByTestId('mode').filter({ hasText: 'spy' }).waitFor();
    await page.getByRole('button', { name: 'Take lock' }).click();
    await page.getByTestId('mode').filter({ hasText: 'read-write' }).waitFor();
    await page.locator('.xterm').click();
    await page.keyboard.type('echo sso-web-$((6*7))\n');
    await until('the answer on the SSO user\'s screen', async () => /\nsso-web-42/.test(await screen()), 15_000);
    await page.screenshot({ path: path.join(SHOTS, 'sso-2-console.png') });

    const stored = await page.evaluate(() => {
      const { sessionStorage: ss } = globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } };
      return { token: ss.getItem('cloudcons.token'), pending: ss.getItem('cloudcons.sso') };
    });
    assert.match(stored.token ?? '', /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the ID token is the session\'s token');
    assert.equal(stored.pending, null, 'state and verifier are gone');
    const authorize = urls.filter((u) => u.startsWith(`${idp.url}/authorize?`));
    assert.equal(authorize.length, 1);
    const q = new URL(authorize[0]!).searchParams;
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.equal(q.get('redirect_uri'), `${cloud.url}/`);
    assert.ok(q.get('nonce') && q.get('state') && q.get('code_challenge'));
    assert.deepEqual(urls.filter((u) => u.startsWith(idp.url) && !u.startsWith(`${idp.url}/authorize?`)), [`${idp.url}/token`], 'the page reached the issuer only to post the code');
    assert.ok(!urls.some((u) => u.includes(stored.token!)), 'the ID token is in no URL');
    assert.ok(!cloud.proc.err.includes(stored.token!) && !cloud.proc.out.includes(stored.token!), 'nor in the cloud\'s log');
    // The code is not in the history either: back goes to where the sign-in started, not to ?code=.
    await page.goBack();
    assert.equal(page.url(), `${cloud.url}/#/c/demo`);
    await page.goForward();
    assert.equal(page.url(), `${cloud.url}/#/c/demo`);

    // A forged or replayed return (no sign-in pending in this tab) is refused and cleaned up.
    await page.evaluate(() => (globalThis as unknown as { sessionStorage: { clear(): void } }).sessionStorage.clear());
    await page.goto(`${cloud.url}/?code=stolen&state=whatever#/`);
    await page.getByTestId('signin-error').filter({ hasText: 'does not belong to a sign-in this tab started' }).waitFor();
    assert.equal(page.url(), `${cloud.url}/#/`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await relay.kill();
    await idp.stop();
  }
});
