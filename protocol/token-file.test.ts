// Tokens from files: what a relay and the CLI accept, refuse and warn about.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readTokenFile, relayToken, TOKEN_FLAG_WARNING } from './token-file.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-tokfile-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
const put = (name: string, text: string, mode = 0o600) => { const f = path.join(dir, name); fs.writeFileSync(f, text, { mode }); fs.chmodSync(f, mode); return f; };
const RELAY = 'ccr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const USER = 'ccu_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

test('a token file: the token without its newline; a file others can read is warned once, naming the fix', () => {
  const warned: string[] = [] as string[];
  assert.equal(readTokenFile(put('r', `${RELAY}\n`), 'relay', (l) => warned.push(l)), RELAY);
  assert.equal(warned.length, 0);
  const open = put('open', `  ${USER}\r\n`, 0o644);
  assert.equal(readTokenFile(open, 'user', (l) => warned.push(l)), USER);
  assert.deepEqual(warned, [`warning: token file ${open} can be read by others (mode 0644): chmod 600 ${open}`]);
  // An SSO ID token (a JWT) is a user token too.
  assert.equal(readTokenFile(put('jwt', 'eyJhbGciOi.eyJzdWIi.c2ln\n'), 'user', () => {}), 'eyJhbGciOi.eyJzdWIi.c2ln');
});

test('a token file that is missing, a directory, empty, two tokens, or the other kind: refused naming the file, never echoing the token', () => {
  const refused = (file: string, kind: 'user' | 'relay', re: RegExp) => assert.throws(() => readTokenFile(file, kind, () => {}), (e: Error) => {
    assert.match(e.message, re);
    assert.ok(!e.message.includes('AAAA') && !e.message.includes('BBBB'), `no token in: ${e.message}`);
    return e.message.includes(file);
  });
  refused(path.join(dir, 'nope'), 'relay', /no such file/);
  refused(dir, 'relay', /is a directory/);
  refused(put('empty', '\n\n'), 'relay', /is empty: put the token in it \(cloudcons relay-token create NAME/);
  refused(put('two', `${RELAY}\n${RELAY}\n`), 'relay', /must hold one token and nothing else/);
  refused(put('user-for-relay', USER), 'relay', /holds a user token \(ccu_\.\.\.\), not a relay token/);
  refused(put('garbage', 'hunter2'), 'relay', /does not hold a relay token \(they start with ccr_\)/);
  refused(put('relay-for-user', RELAY), 'user', /holds a relay token \(ccr_\.\.\.\): the CLI signs in with a user token/);
});

test('where a relay token comes from: --token-file, --token (warned), CLOUDCONS_TOKEN_FILE, CLOUDCONS_RELAY_TOKEN, then systemd\'s credentials', () => {
  const file = put('relay-file', RELAY);
  const creds = fs.mkdtempSync(path.join(dir, 'creds-'));
  fs.writeFileSync(path.join(creds, 'relay-token'), 'ccr_FROMCREDENTIALS', { mode: 0o400 });
  const warned: string[] = [];
  const w = (l: string) => warned.push(l);
  assert.deepEqual(relayToken({ tokenFile: file }, { CLOUDCONS_RELAY_TOKEN: 'ccr_env' }, w), { token: RELAY, source: file });
  assert.equal(warned.length, 0);
  assert.deepEqual(relayToken({ token: 'ccr_flag' }, {}, w), { token: 'ccr_flag', source: '--token' });
  assert.deepEqual(warned, [TOKEN_FLAG_WARNING]);
  assert.throws(() => relayToken({ token: 'ccr_flag', tokenFile: file }, {}, w), /give --token-file or --token, not both/);
  assert.equal(relayToken({}, { CLOUDCONS_TOKEN_FILE: file, CLOUDCONS_RELAY_TOKEN: 'ccr_env', CREDENTIALS_DIRECTORY: creds }, w)?.token, RELAY);
  assert.equal(relayToken({}, { CLOUDCONS_RELAY_TOKEN: 'ccr_env', CREDENTIALS_DIRECTORY: creds }, w)?.token, 'ccr_env');
  assert.deepEqual(relayToken({}, { CREDENTIALS_DIRECTORY: creds }, w), { token: 'ccr_FROMCREDENTIALS', source: path.join(creds, 'relay-token') });
  assert.equal(relayToken({}, { CREDENTIALS_DIRECTORY: dir }, w), undefined, 'a credentials directory without relay-token');
  assert.equal(warned.length, 1, 'only --token was warned');
});
