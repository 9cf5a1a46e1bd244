// The cloud's certificates (self-signed, reused; operator files checked) and the client side's
// trust (protocol/tls.ts) against a real HTTPS + WSS server on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { CloudTls, certFingerprint, TlsTrustError } from '../../protocol/tls.ts';
import { checkPlainListen, loadServerCert, makeSelfSigned, selfSignedCert, selfSignedNames } from './tls.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-tls-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('checkPlainListen: plain HTTP on loopback only, unless explicitly allowed', () => {
  for (const h of ['127.0.0.1', '::1', 'localhost']) checkPlainListen(h, false);
  for (const h of ['0.0.0.0', '::', '192.168.1.10', 'cloud.example']) {
    assert.throws(() => checkPlainListen(h, false), (e: Error) => e.message.includes(`refusing to serve plain HTTP on ${h}`) && /--tls-cert FILE --tls-key FILE.*--tls-self-signed.*--insecure-http/.test(e.message));
    checkPlainListen(h, true);
  }
});

test('the self-signed certificate is made once, kept (key 0600) and reused; it names the listen address', async () => {
  const data = path.join(dir, 'data');
  const first = await selfSignedCert(data, '127.0.0.1');
  assert.equal(first.created, true);
  assert.match(first.fingerprint, /^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(fs.statSync(path.join(data, 'tls', 'self-signed-key.pem')).mode & 0o777, 0o600);
  for (const n of ['127.0.0.1', 'localhost', '::1', os.hostname()]) assert.ok(first.names.includes(n), n);
  const again = await selfSignedCert(data, '127.0.0.1');
  assert.equal(again.created, false);
  assert.equal(again.fingerprint, first.fingerprint);
  assert.equal(again.key, first.key);
  assert.equal(certFingerprint(fs.readFileSync(first.certFile)), first.fingerprint);
  assert.ok(selfSignedNames('0.0.0.0').length >= 4, 'all interfaces: every address of this host');
  assert.ok(selfSignedNames('10.9.8.7').includes('10.9.8.7'));
});

test('loadServerCert refuses a key that does not belong to the certificate, and says which files', async () => {
  const a = await makeSelfSigned(['127.0.0.1']), b = await makeSelfSigned(['127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'a.crt'), a.cert);
  fs.writeFileSync(path.join(dir, 'b.key'), b.key);
  fs.writeFileSync(path.join(dir, 'a.key'), a.key);
  assert.equal(loadServerCert(path.join(dir, 'a.crt'), path.join(dir, 'a.key')).fingerprint, certFingerprint(a.cert));
  assert.throws(() => loadServerCert(path.join(dir, 'a.crt'), path.join(dir, 'b.key')), /cannot use the TLS certificate .*a\.crt with the key .*b\.key/);
  assert.throws(() => loadServerCert(path.join(dir, 'none.crt'), path.join(dir, 'a.key')), /cannot read the TLS certificate \(--tls-cert\) .*none\.crt/);
});

// A CA, a server certificate it signed for 127.0.0.1, and a second CA that signed nothing here.
let ca: { cert: string; key: string }, leaf: { cert: string; key: string }, otherCa: { cert: string; key: string };
let server: https.Server, base: string, requests = 0, sockets = 0;
before(async () => {
  ca = await makeSelfSigned([], { commonName: 'test CA' });
  otherCa = await makeSelfSigned([], { commonName: 'other CA' });
  leaf = await makeSelfSigned(['127.0.0.1', 'localhost'], { ca });
  for (const [n, c] of Object.entries({ ca, otherCa, leaf })) fs.writeFileSync(path.join(dir, `${n}.pem`), c.cert);
  server = https.createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    requests++;
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ method: req.method, auth: req.headers.authorization, body })); });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => { sockets++; ws.on('message', (m) => ws.send(`echo ${m}`)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

function wsEcho(t: CloudTls, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...t.wsOptions(url) });
    ws.on('open', () => ws.send('hi'));
    ws.on('message', (m) => { resolve(m.toString()); ws.close(); });
    ws.on('error', reject);
  });
}

test('a CA file or the exact fingerprint is trusted over fetch and WebSocket; the body and headers arrive', async () => {
  for (const t of [new CloudTls({ ca: path.join(dir, 'ca.pem') }), new CloudTls({ fingerprint: certFingerprint(leaf.cert) })]) {
    const res = await t.fetch(`${base}/x`, { method: 'PUT', headers: { authorization: 'Bearer t1' }, body: Buffer.from('payload') });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { method: 'PUT', auth: 'Bearer t1', body: 'payload' });
    assert.equal(await wsEcho(t, base.replace(/^https/, 'wss')), 'echo hi');
  }
});

test('a wrong fingerprint, an unknown CA, or the default CAs for a private CA: refused before any request, with the fingerprint seen', async () => {
  const seen = certFingerprint(leaf.cert);
  const before = { requests, sockets };
  const cases: [CloudTls, RegExp][] = [
    [new CloudTls({ fingerprint: certFingerprint(ca.cert) }), new RegExp(`presented a TLS certificate with fingerprint ${seen}, not the pinned ${certFingerprint(ca.cert)}; refusing to connect`)],
    [new CloudTls({ ca: path.join(dir, 'otherCa.pem') }), new RegExp(`cannot verify the TLS certificate of the cloud at 127\\.0\\.0\\.1:\\d+: it is signed by a CA that is not trusted .*presented fingerprint ${seen}.*--ca FILE.*--fingerprint ${seen}`)],
    [new CloudTls({}), /cannot verify the TLS certificate .*not trusted/],
  ];
  for (const [t, re] of cases) {
    await assert.rejects(t.fetch(`${base}/x`, { headers: { authorization: 'Bearer secret' } }), (e: Error) => e instanceof TlsTrustError && re.test(e.message));
    await assert.rejects(wsEcho(t, base.replace(/^https/, 'wss')), (e: Error) => re.test(e.message));
  }
  assert.deepEqual({ requests, sockets }, before, 'no request and no WebSocket reached the server');
});

test('with a CA the certificate must name the host; a pin accepts it whatever it names', async () => {
  const other = await makeSelfSigned(['cloud.example'], { ca });
  const s = https.createServer({ cert: other.cert, key: other.key }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  try {
    const url = `https://127.0.0.1:${(s.address() as { port: number }).port}/`;
    await assert.rejects(new CloudTls({ ca: path.join(dir, 'ca.pem') }).fetch(url), /it does not name this host \(ERR_TLS_CERT_ALTNAME_INVALID\)/);
    assert.equal(await (await new CloudTls({ fingerprint: certFingerprint(other.cert) }).fetch(url)).text(), 'ok');
  } finally {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

test('CloudTls reports an unreadable or non-PEM CA file and a bad fingerprint clearly', () => {
  assert.throws(() => new CloudTls({ ca: path.join(dir, 'missing.pem') }), /cannot read the CA file .*missing\.pem \(--ca, CLOUDCONS_CA\)/);
  fs.writeFileSync(path.join(dir, 'junk.pem'), 'not a cert');
  assert.throws(() => new CloudTls({ ca: path.join(dir, 'junk.pem') }), /holds no PEM certificate/);
  assert.throws(() => new CloudTls({ fingerprint: 'SHA256:xyz' }), /invalid certificate fingerprint/);
});

test('the HTTPS server sends Strict-Transport-Security on every answer (page, API, errors, refused upgrades); plain HTTP never', async () => {
  const { startCloudServer } = await import('./node-server.ts');
  const cert = await selfSignedCert(path.join(dir, 'hsts-tls'), '127.0.0.1');
  const t = new CloudTls({ fingerprint: cert.fingerprint });
  const secure = await startCloudServer({ dataDir: path.join(dir, 'hsts-data'), tls: cert, log: () => {}, limits: { hstsMaxAgeS: 600, hstsIncludeSubdomains: true } });
  const plain = await startCloudServer({ dataDir: path.join(dir, 'hsts-plain'), log: () => {} });
  const defaults = await startCloudServer({ dataDir: path.join(dir, 'hsts-defaults'), tls: cert, log: () => {} });
  try {
    const paths = ['/', '/index.html', '/assets/nothing.js', '/healthz', '/v1/whoami', '/v1/auth/config', '/v1/nothing', '/v1/relay'];
    for (const p of paths) {
      const r = await t.fetch(`${secure.url}${p}`);
      assert.equal(r.headers.get('strict-transport-security'), 'max-age=600; includeSubDomains', `${p} ${r.status}`);
      assert.equal((await t.fetch(`${defaults.url}${p}`)).headers.get('strict-transport-security'), 'max-age=31536000', p);
      assert.equal((await fetch(`${plain.url}${p}`)).headers.get('strict-transport-security'), null, p);
    }
    // A WebSocket upgrade refused before it is one (no token) is an HTTP answer too.
    const refused = await new Promise<string>((resolve, reject) => {
      const url = `${secure.url.replace(/^https/, 'wss')}/v1/session`;
      const ws = new WebSocket(url, { ...t.wsOptions(url) });
      ws.on('unexpected-response', (_req, res) => resolve(String(res.headers['strict-transport-security'])));
      ws.on('open', () => reject(new Error('opened without a token')));
      ws.on('error', reject);
    });
    assert.equal(refused, 'max-age=600; includeSubDomains');
  } finally {
    await Promise.all([secure.close(), plain.close(), defaults.close()]);
  }
});
