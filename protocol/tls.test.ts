import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPlainUrl, isLoopbackHost, parseFingerprint, pickTrust, trustFromEnv } from './tls.ts';

const HEX = 'D2:06:21:EE:66:EB:DF:5F:23:24:C0:D2:7A:94:61:F7:1E:1D:CF:83:FE:D4:44:B0:97:85:91:5D:FA:A3:5D:80';

test('parseFingerprint takes the forms people paste and gives Node\'s form', () => {
  const compact = HEX.replace(/:/g, '');
  for (const v of [HEX, `SHA256:${HEX}`, `sha256=${HEX.toLowerCase()}`, `SHA-256: ${HEX}`, compact, compact.toLowerCase(), `SHA256:${compact}`,
    `SHA256:${Buffer.from(compact, 'hex').toString('base64').replace(/=$/, '')}`, Buffer.from(compact, 'hex').toString('base64')]) {
    assert.equal(parseFingerprint(v), HEX, v);
  }
  for (const bad of ['', 'SHA256:', 'abc', HEX.slice(3), `${HEX}:00`, 'SHA1:' + HEX, 'zz'.repeat(32)]) {
    assert.throws(() => parseFingerprint(bad), /invalid certificate fingerprint .*expected SHA256: followed by 64 hex digits/, bad);
  }
});

test('isLoopbackHost: 127.0.0.0/8, ::1 (any spelling), localhost; nothing else', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'localhost.']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '192.168.1.1', 'fe80::1', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', 'my-localhost', '']) assert.ok(!isLoopbackHost(h), h);
});

test('checkPlainUrl refuses http:// and ws:// to a host that is not loopback, unless insecure', () => {
  for (const u of ['http://10.0.0.5:7420', 'ws://cloud.example/v1/relay', 'http://0.0.0.0:7420', 'http://[fe80::1]:7420']) {
    assert.throws(() => checkPlainUrl(u, false), (e: Error) => /refusing plain (http|ws):\/\/ to .*unencrypted.*--insecure \(or CLOUDCONS_INSECURE=1\).*loopback \(127\.0\.0\.0\/8, ::1, localhost\)/.test(e.message), u);
    checkPlainUrl(u, true);
  }
  for (const u of ['https://cloud.example', 'wss://x.execute-api.eu-west-1.amazonaws.com/prod', 'http://127.0.0.1:7420', 'ws://localhost:1/v1/session', 'http://[::1]:7420']) checkPlainUrl(u, false);
});

test('trustFromEnv and pickTrust: the first source with a pin decides; both in one source is an error', () => {
  assert.deepEqual(trustFromEnv({ CLOUDCONS_CA: '/ca.pem', CLOUDCONS_INSECURE: '1' }), { ca: '/ca.pem', insecure: true });
  assert.deepEqual(trustFromEnv({ CLOUDCONS_INSECURE: '0' }), {});
  assert.deepEqual(trustFromEnv({ CLOUDCONS_FINGERPRINT: HEX, CLOUDCONS_INSECURE: 'false' }), { fingerprint: HEX });
  const fp = `SHA256:${HEX}`;
  assert.deepEqual(pickTrust({ trust: { ca: '/a.pem' }, from: 'flags' }, { trust: { fingerprint: HEX }, from: 'env' }), { ca: '/a.pem' });
  assert.deepEqual(pickTrust({ trust: {}, from: 'flags' }, { trust: { fingerprint: HEX.toLowerCase() }, from: 'env' }, { trust: { ca: '/b' }, from: 'file' }), { fingerprint: fp });
  assert.deepEqual(pickTrust({ trust: undefined, from: 'flags' }, { trust: { insecure: true }, from: 'env' }), { insecure: true });
  assert.throws(() => pickTrust({ trust: { ca: '/a', fingerprint: HEX }, from: 'flags' }), /flags: give a CA file or a certificate fingerprint to trust, not both/);
  assert.throws(() => pickTrust({ trust: { fingerprint: 'nope' }, from: 'flags' }), /invalid certificate fingerprint 'nope'/);
});
