// Request-supplied text in audit records is bounded, visibly: the cut itself, and the core's
// records (a sign-in failure with a 15 KB path, a long reason, a long user name) through it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { boundedRecord, cutText } from './audit-text.ts';
import { CloudCore } from './core.ts';
import { embeddedPorts } from '../server/embedded-ports.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';

after(cleanup);

test('cutText keeps short text, cuts long text with a marker saying how much, never half a character', () => {
  assert.equal(cutText('short', 10), 'short');
  assert.equal(cutText('x'.repeat(15_000), 100), `${'x'.repeat(100)}... [cut: 14900 more characters]`);
  const emoji = `${'a'.repeat(9)}😀tail`; // the 10th and 11th code units are one character
  assert.equal(cutText(emoji, 10), `${'a'.repeat(9)}... [cut: 6 more characters]`);
  const rec = { time: 1, console: 'c', type: 'input', data: 'QUFB'.repeat(10_000), detail: 'd'.repeat(50), user: 'u'.repeat(50) };
  const b = boundedRecord(rec, 20);
  assert.equal(b.data, rec.data, 'input bytes are never cut');
  assert.equal(b.detail, `${'d'.repeat(20)}... [cut: 30 more characters]`);
  assert.equal(b.user, `${'u'.repeat(20)}... [cut: 30 more characters]`);
  assert.equal(boundedRecord({ time: 1, console: 'c', type: 'x', detail: 'ok' }, 20).detail, 'ok');
});

test('the core bounds what requests put in its records: a 15 KB path in auth.failure, long reasons and names (auditTextMax)', async () => {
  const { ports, close } = embeddedPorts(tmpDir('audit-text'), { send: async () => true, close: async () => {} });
  const core = new CloudCore(ports, { auditTextMax: 400 });
  await core.authFailed(`HTTP GET /${'a'.repeat(15_000)}`, 'invalid or revoked token');
  await core.authFailed('HTTP GET /v1/whoami', `wrong audience: the token is for "${'x'.repeat(15_000)}"`);
  await core.auditEvent('web01', 'export', 'm'.repeat(5000), 'r'.repeat(5000));
  const [path, claim] = await ports.audit.list('_cloud');
  assert.ok(path.detail!.length < 400, `${path.detail!.length}`);
  assert.match(path.detail!, /^HTTP GET \/a+\.\.\. \[cut: \d+ more characters\]: invalid or revoked token$/);
  assert.ok(claim.detail!.length < 400);
  assert.match(claim.detail!, /^HTTP GET \/v1\/whoami: wrong audience: the token is for "x+\.\.\. \[cut: \d+ more characters\]$/);
  const [exp] = await ports.audit.list('web01');
  const cut = 400 + '... [cut: 4600 more characters]'.length;
  assert.deepEqual([exp.user!.length, exp.detail!.length], [cut, cut]);
  assert.equal(new CloudCore(ports).opts.auditTextMax, 1024, 'the default');
  close();
});
