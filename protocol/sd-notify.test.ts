// The notifier against a real unix datagram socket (test/notify-socket.ts) through the real
// systemd-notify: messages, order, MAINPID, the barrier that keeps the sender alive until the
// manager read them, abstract names, the watchdog, and failures that are logged once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { cleanup, tmpDir, until } from '../test/helpers.ts';
import { notifySkip, notifySocket } from '../test/notify-socket.ts';
import { createSdNotifier } from './sd-notify.ts';

after(cleanup);
const skip = notifySkip();

test('READY (with MAINPID and STATUS), STATUS, RELOADING and STOPPING arrive in order, each followed by systemd-notify\'s barrier; a newline in a value starts no assignment', { skip }, async () => {
  const sock = path.join(tmpDir('sdnotify'), 'notify');
  const rx = await notifySocket(sock);
  const logged: string[] = [];
  const sd = createSdNotifier({ env: { NOTIFY_SOCKET: sock }, log: (l) => logged.push(l), pid: 4242 });
  assert.equal(sd.enabled, true);
  assert.equal(sd.watchdogMs, undefined, 'no WATCHDOG_USEC: no watchdog');
  void sd.ready('relay edge1 holding ser1 (serial)');
  void sd.status('two\nREADY=1 lines');
  void sd.reloading();
  await sd.stopping('SIGTERM: shutting down');
  const got = rx.messages();
  // systemd-notify >= 246 sends BARRIER=1 with a pipe after each message and exits only once the
  // manager closed it: the sender is alive while the manager attributes the message.
  assert.deepEqual(got.map((m) => m.text === 'BARRIER=1' ? `barrier ${m.fds}` : Object.keys(m.fields).join(',')),
    ['READY,MAINPID,STATUS', 'barrier 1', 'STATUS', 'barrier 1', 'RELOADING,MONOTONIC_USEC', 'barrier 1', 'STOPPING,STATUS', 'barrier 1']);
  assert.deepEqual(got[0]!.fields, { READY: '1', MAINPID: '4242', STATUS: 'relay edge1 holding ser1 (serial)' });
  assert.equal(got[2]!.text, 'STATUS=two READY=1 lines');
  assert.match(got[4]!.fields.MONOTONIC_USEC!, /^\d+$/);
  assert.deepEqual(got[6]!.fields, { STOPPING: '1', STATUS: 'SIGTERM: shutting down' });
  // Sent by the helper: with its own PID, or (run as root, as here) with ours, which it may fake.
  assert.ok(got.every((m) => Number.isInteger(m.pid) && m.pid > 0), 'every message carries its sender\'s credentials');
  assert.equal(logged.length, 0, logged.join('\n'));
});

test('an abstract socket name (@...) works', { skip }, async () => {
  const name = `@cloudcons-test-${process.pid}-${Date.now()}`;
  const rx = await notifySocket(name);
  await createSdNotifier({ env: { NOTIFY_SOCKET: name }, log: (l) => assert.fail(l) }).ready();
  assert.equal(rx.with('READY=1').length, 1);
});

test('WATCHDOG=1 every WATCHDOG_USEC/2 when WATCHDOG_PID is absent or ours, never for another PID; stopping ends it', { skip }, async () => {
  const sock = path.join(tmpDir('sdnotify-wd'), 'notify');
  const rx = await notifySocket(sock);
  const other = createSdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' }, log: (l) => assert.fail(l), pid: 4242 });
  assert.equal(other.watchdogMs, undefined, 'the watchdog is another process\'s');
  const sd = createSdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000', WATCHDOG_PID: '4242' }, log: (l) => assert.fail(l), pid: 4242 });
  assert.equal(sd.watchdogMs, 100);
  const t0 = Date.now();
  await until('3 watchdog pings', () => rx.with('WATCHDOG=1').length >= 3, 5_000, 20);
  assert.ok(Date.now() - t0 >= 250, 'not faster than every WATCHDOG_USEC/2');
  await sd.stopping();
  const n = rx.with('WATCHDOG=1').length;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(rx.with('WATCHDOG=1').length, n, 'no pings after STOPPING=1');
  const absent = createSdNotifier({ env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' }, log: (l) => assert.fail(l) });
  assert.equal(absent.watchdogMs, 100, 'no WATCHDOG_PID: ours');
  absent.close();
});

test('without NOTIFY_SOCKET nothing runs; a message that cannot be sent is logged once and never throws', { skip }, async () => {
  const logged: string[] = [];
  const none = createSdNotifier({ env: { WATCHDOG_USEC: '1000' }, log: (l) => logged.push(l), command: '/nonexistent/systemd-notify' });
  assert.equal(none.enabled, false);
  assert.equal(none.watchdogMs, undefined);
  await none.ready('x');
  await none.stopping();
  assert.equal(logged.length, 0, 'nothing was run');

  const nobody = createSdNotifier({ env: { NOTIFY_SOCKET: path.join(tmpDir('sdnotify-none'), 'nobody') }, log: (l) => logged.push(l) });
  await nobody.ready();
  await nobody.stopping();
  assert.equal(logged.length, 1, logged.join('\n'));
  assert.match(logged[0]!, /^systemd notify \(NOTIFY_SOCKET=.*nobody\): systemd-notify exited with 1: .*; the service manager may think this service never started or hangs \(further failures are not logged\)$/);

  logged.length = 0;
  const missing = createSdNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, log: (l) => logged.push(l), command: '/nonexistent/systemd-notify' });
  await missing.ready();
  await missing.status('y');
  assert.equal(logged.length, 1);
  assert.match(logged[0]!, /\/nonexistent\/systemd-notify not found on PATH \(it comes with systemd\)/);
});
