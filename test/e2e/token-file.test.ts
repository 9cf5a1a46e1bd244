// Secrets never on a command line: a real relay process takes its token from --token-file, from
// CLOUDCONS_TOKEN_FILE or from systemd's credentials directory; its command line (what `ps` shows)
// never holds it, and output arrives byte-exact. A bad token file ends the relay with one clear line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, openPtyPeer, serialRig, until, type Proc } from '../helpers.ts';

after(cleanup);

const cmdline = (p: Proc) => fs.readFileSync(`/proc/${(p as unknown as { child: { pid: number } }).child.pid}/cmdline`, 'utf8').split('\0');

test('a relay with its token in a file, in CLOUDCONS_TOKEN_FILE or in $CREDENTIALS_DIRECTORY/relay-token: not on its command line, output byte-exact; a user token in the file is refused', { timeout: 120_000 }, async () => {
  const rig = await serialRig('tokfile');
  const peer = openPtyPeer(rig.pair.peer);
  let sent = Buffer.alloc(0);
  const creds = path.join(rig.dir, 'creds');
  fs.mkdirSync(creds, { mode: 0o700 });
  fs.copyFileSync(rig.tokenFile, path.join(creds, 'relay-token'));
  for (const [how, env] of [['--token-file', {}], ['CLOUDCONS_TOKEN_FILE', { CLOUDCONS_TOKEN_FILE: rig.tokenFile }], ['CREDENTIALS_DIRECTORY', { CREDENTIALS_DIRECTORY: creds }]] as const) {
    const relay = rig.startRelay([], env);
    await rig.relayUp(relay);
    const args = cmdline(relay);
    assert.ok(!args.some((a) => a.includes(rig.relayToken)), `${how}: the token is not on the command line: ${args.join(' ')}`);
    assert.doesNotMatch(relay.err, /--token puts the token on the command line/);
    const chunk = Buffer.from(`${how} ${randomBytes(600).toString('base64')}\r\n`);
    peer.write(chunk);
    sent = Buffer.concat([sent, chunk]);
    await until(`${how}: output stored`, async () => ((await rig.stored())?.bytes.equals(sent) ? true : undefined), 20_000, 100);
    await relay.kill('SIGTERM');
  }
  // The CLI too: a token file, never echoed.
  const userFile = path.join(rig.dir, 'admin-token');
  fs.writeFileSync(userFile, rig.adminToken, { mode: 0o600 });
  const ls = cli(['ls', '--url', rig.url, '--token-file', userFile]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout.toString(), /ser1\s+\S+\s+serial/);
  assert.equal(ls.stderr, '');
  // A relay given the user token's file: one clear line, and it exits.
  const wrong = rig.startRelay(['--token-file', userFile]);
  await until('the relay to exit', () => wrong.exited, 15_000);
  assert.match(wrong.err, /token file .*admin-token holds a user token \(ccu_\.\.\.\), not a relay token: cloudcons relay-token create NAME makes one/);
  assert.ok(!wrong.err.includes(rig.adminToken), 'the token is never printed');
});
