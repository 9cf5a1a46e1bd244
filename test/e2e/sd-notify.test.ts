// `cloudcons relay` and `cloudcons cloud` as Type=notify services, against a real unix datagram
// socket as NOTIFY_SOCKET (test/notify-socket.ts) and the real systemd-notify: READY=1 with their
// own PID as MAINPID once ready, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 before they exit.
// A console's program does not inherit NOTIFY_SOCKET or the watchdog variables.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cloudcons, createToken, startCloud, tmpDir, until } from '../helpers.ts';
import { notifySkip, notifySocket } from '../notify-socket.ts';

after(cleanup);
const skip = notifySkip();

test('a relay and a cloud tell systemd READY=1 (MAINPID, STATUS), WATCHDOG=1 and STOPPING=1; consoles do not inherit NOTIFY_SOCKET', { skip, timeout: 120_000 }, async () => {
  const dir = tmpDir('sdnotify-e2e');
  const rx = await notifySocket(path.join(dir, 'notify'));
  const notifyEnv = { NOTIFY_SOCKET: path.join(dir, 'notify'), WATCHDOG_USEC: '300000' };

  // The cloud: READY once listening.
  const dataDir = path.join(dir, 'data');
  const c = await startCloud(dataDir, 0, { env: notifyEnv });
  const cloudPid = c.proc.child.pid!;
  const ofCloud = () => rx.messages().filter((m) => m.fields.MAINPID === String(cloudPid));
  await until('the cloud\'s READY=1', () => ofCloud().length, 10_000);
  assert.deepEqual(ofCloud()[0]!.fields, { READY: '1', MAINPID: String(cloudPid), STATUS: `listening on ${c.url}` });

  // The relay: READY once the config is loaded and its consoles are opening (the cloud is not
  // waited for); an exec console shows what environment consoles get.
  const tokenFile = path.join(dir, 'relay-token');
  fs.writeFileSync(tokenFile, createToken(dataDir, 'relay', 'edge1'), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  env1: { type: exec, command: 'echo "NS=\${NOTIFY_SOCKET:-none} WD=\${WATCHDOG_USEC:-none}"; exec sleep 600' }\n`);
  const before = rx.messages().length;
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', c.url, '--token-file', tokenFile], notifyEnv);
  const relayPid = relay.child.pid!;
  await until('the relay\'s READY=1', () => rx.with('READY=1').find((m) => m.fields.MAINPID === String(relayPid)), 15_000);
  assert.equal(rx.with('READY=1').find((m) => m.fields.MAINPID === String(relayPid))!.fields.STATUS, 'relay edge1 holding env1 (exec)');
  // Watchdog pings from both (this test cannot tell whose: each process sends through its own
  // systemd-notify), at least 2 per 300 ms between them.
  const pings = () => rx.messages().slice(before).filter((m) => m.fields.WATCHDOG === '1').length;
  const n0 = pings();
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(pings() - n0 >= 6, `watchdog pings every WATCHDOG_USEC/2 from both: ${pings() - n0} in 1.5 s`);

  const auth = { authorization: `Bearer ${c.adminToken}` };
  await until('the exec console\'s output', async () => {
    const r = await fetch(`${c.url}/v1/consoles/env1/replay?from=0&format=raw`, { headers: auth });
    return r.ok && /NS=\S+ WD=\S+/.test(await r.text()) ? true : undefined;
  }, 20_000, 100);
  const shown = await (await fetch(`${c.url}/v1/consoles/env1/replay?from=0&format=raw`, { headers: auth })).text();
  assert.match(shown, /NS=none WD=none/, 'a console\'s program does not get NOTIFY_SOCKET or WATCHDOG_USEC');

  // STOPPING=1 is out before either process exits.
  const stopsBefore = rx.with('STOPPING=1').length;
  await relay.kill('SIGTERM');
  assert.equal(relay.child.exitCode, 0, relay.err);
  assert.equal(rx.with('STOPPING=1').length, stopsBefore + 1, 'the relay said STOPPING=1 before it exited');
  await c.proc.kill('SIGTERM');
  assert.equal(c.proc.child.exitCode, 0, c.proc.err);
  assert.equal(rx.with('STOPPING=1').length, stopsBefore + 2, 'the cloud too');
  assert.deepEqual(rx.with('STOPPING=1').map((m) => m.fields.STATUS), ['SIGTERM: shutting down', 'SIGTERM: shutting down']);
  // Nothing to complain about in either log.
  assert.doesNotMatch(relay.err + c.proc.err, /systemd notify/);
});
