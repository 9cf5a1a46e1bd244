import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretPromptTracker, showsSecretPrompt } from './secret-prompt.ts';

test('password prompts are recognised on the last line, through colour and cursor escapes', () => {
  for (const p of ['Password: ', '\r\nPassword:', 'root@10.0.0.1\'s password: ', "Enter passphrase for key '/root/.ssh/id_ed25519': ",
    'Enter PIN: ', '\x1b[1mPassword:\x1b[0m ', 'Verification code:\r\nPasscode: ', '[sudo] password for alice: ']) {
    assert.ok(showsSecretPrompt(p), JSON.stringify(p));
  }
  for (const p of ['Password: \r\n', 'login: ', 'Password changed.\r\n# ', 'echo password: done\r\n$ ', 'spinning\x1b[6n', 'Old passwords are kept here']) {
    assert.ok(!showsSecretPrompt(p), JSON.stringify(p));
  }
});

test('the tracker carries the last bytes per console, so a split prompt is seen', () => {
  const t = new SecretPromptTracker(undefined, 2);
  assert.equal(t.feed('a', Buffer.from('Pass')), false);
  assert.equal(t.feed('b', Buffer.from('x')), false);
  assert.equal(t.feed('a', Buffer.from('word: ')), true);
  assert.equal(t.feed('a', Buffer.from('\r\n')), false);
  t.feed('c', Buffer.from('Pass')); // evicts the least recently fed (b), keeps its own carry
  assert.equal(t.feed('c', Buffer.from('word:')), true);
});
