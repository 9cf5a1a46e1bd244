import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Supervisor, type ConsoleEvent, type ConsoleStatus, type SupervisorOptions } from './supervisor.ts';
import { createDriver } from './drivers/index.ts';
import type { ConsoleConfig, ExecConsoleConfig, SerialConsoleConfig, UdsConsoleConfig } from './config.ts';
import { DeviceServer } from '../test/device-server.ts';
import { tmpDir } from '../test/helpers.ts';
import { cleanup, openPtyPeer, PtyPair } from '../test/helpers.ts';

after(cleanup);


function openPeer(_t: TestContext, file: string) {
  const p = openPtyPeer(file);
  return { received: () => p.received().toString(), write: (str: string) => p.write(str) };
}

async function until(what: string, cond: () => boolean, ms = 5000, seen?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${seen ? `; seen: ${seen()}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a supervisor recording its events; stopped in test cleanup. */
function supervise(t: TestContext, name: string, cfg: ConsoleConfig, opts: Partial<SupervisorOptions> = {}) {
  // Flap protection is tested on its own; elsewhere it would stop the restarts being measured.
  const sup = new Supervisor(name, cfg, createDriver(cfg), { flapMax: 1000, ...opts });
  const events: ConsoleEvent[] = [];
  sup.on('event', (e) => events.push(e));
  const states: (ConsoleStatus & { at: number })[] = [];
  const data: Buffer[] = [];
  sup.on('state', (s) => states.push({ ...s, at: Date.now() }));
  sup.on('data', (d, ts) => {
    assert.ok(Math.abs(ts - Date.now()) < 1000);
    data.push(d);
  });
  t.after(() => sup.stop());
  sup.start();
  return { sup, states, events, text: () => Buffer.concat(data).toString(), ups: () => states.filter((s) => s.state === 'up').length };
}

test('serial console survives the device going away and coming back on the same path', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pair = await PtyPair.create(dir);
  const cfg: SerialConsoleConfig = { type: 'serial', device: `${dir}/dev`, baud: 115200, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none', breakDelayMs: 50 };
  const s = supervise(t, 'web01', cfg, { minBackoffMs: 100, maxBackoffMs: 400 });
  assert.equal(s.sup.type, 'serial');
  assert.equal(s.sup.resizable, false);
  await until('up', () => s.sup.state.state === 'up');

  let peer = openPeer(t, `${dir}/peer`);
  peer.write('login: ');
  await until('output', () => s.text() === 'login: ');
  await s.sup.write(Buffer.from('root\r'));
  await until('input', () => peer.received() === 'root\r');

  // SIGTERM: socat then removes its link. After SIGKILL the link would dangle into /dev/pts, and
  // another process's new pty can reuse that number: the supervisor would rightly open it.
  await pair.stop('SIGTERM');
  await until('down', () => s.sup.state.state === 'down', 3000);
  const down = s.sup.state;
  assert.ok(down.reason && down.reason.length > 0);
  await assert.rejects(s.sup.write(Buffer.from('x')), { message: `console web01 is down: ${down.reason}` });
  await assert.rejects(s.sup.sendBreak(), /^Error: console web01 is down: /);
  // Reopens keep failing while the device is gone; the reason says why, `since` stays put.
  await until('reopen failures', () => /no such file/.test(s.sup.state.reason ?? ''), 3000, () => JSON.stringify(s.states));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.sup.state.state, 'down');
  assert.equal(s.sup.state.since, down.since, 'still down since the device went away');

  await pair.start(); // same link path, new pty behind it
  await until('up again', () => s.sup.state.state === 'up', 3000);
  peer = openPeer(t, `${dir}/peer`);
  peer.write('login again: ');
  await until('output after reopen', () => s.text() === 'login: login again: ');
  await s.sup.write(Buffer.from('admin\r'));
  await until('input after reopen', () => peer.received() === 'admin\r');
  await s.sup.sendBreak();
  assert.deepEqual(s.states.map((x) => x.state), ['up', 'down', 'down', 'up']);
});

test('an exec console whose command exits is restarted with growing backoff', async (t) => {
  const cfg: ExecConsoleConfig = { type: 'exec', command: 'echo started', breakDelayMs: 250 };
  const s = supervise(t, 'demo', cfg, { minBackoffMs: 100, maxBackoffMs: 800 });
  const exits = () => s.states.filter((x) => x.reason === 'process exited with code 0').length;
  await until('5 runs', () => exits() >= 5, 8000);
  await s.sup.stop();
  // Every run's output arrived (the last run may have been stopped before it printed).
  assert.ok(s.text().match(/started/g)!.length >= exits(), s.text());

  // Delay from each "down" to the next "up": about 100, 200, 400, 800 ms (+-20% jitter).
  const delays: number[] = [];
  for (let i = 0; i + 1 < s.states.length; i++) {
    if (s.states[i].state === 'down' && s.states[i + 1].state === 'up') delays.push(s.states[i + 1].at - s.states[i].at);
  }
  assert.ok(delays.length >= 4, `delays ${delays}`);
  [100, 200, 400, 800].forEach((base, i) => {
    assert.ok(delays[i] >= base * 0.8 - 5 && delays[i] <= base * 1.2 + 150, `delay ${i} = ${delays[i]} for base ${base}: ${delays}`);
  });
  assert.equal(s.states.find((x) => x.state === 'down')!.reason, 'process exited with code 0');
  assert.deepEqual(s.states.at(-1), { ...s.states.at(-1), state: 'down', reason: 'stopped' });

  // Stopped means stopped: no more runs.
  const ups = s.ups();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.ups(), ups);
});

test('backoff resets after the console stayed up long enough', async (t) => {
  const cfg: ExecConsoleConfig = { type: 'exec', command: 'sleep 0.25', breakDelayMs: 250 };
  const s = supervise(t, 'flappy', cfg, { minBackoffMs: 100, maxBackoffMs: 5000, resetAfterMs: 200 });
  await until('4 runs', () => s.ups() >= 4, 8000);
  const delays: number[] = [];
  for (let i = 0; i + 1 < s.states.length; i++) {
    if (s.states[i].state === 'down' && s.states[i + 1].state === 'up') delays.push(s.states[i + 1].at - s.states[i].at);
  }
  // Without the reset these would be ~100, 200, 400.
  for (const d of delays) assert.ok(d < 250, `delays ${delays}`);
});

test('resize is remembered and applied when an exec console is restarted', async (t) => {
  const cfg: ExecConsoleConfig = { type: 'exec', command: 'sleep 0.05; stty size; sleep 0.2', breakDelayMs: 250, cols: 80, rows: 24 };
  const s = supervise(t, 'sized', cfg, { minBackoffMs: 50, maxBackoffMs: 50 });
  await until('first run', () => s.text().includes('24 80'));
  s.sup.resize(120, 40);
  await until('restarted with the new size', () => s.text().includes('40 120'), 3000);
  assert.equal(s.sup.resizable, true);
});

test('a flapping console is held down, says so and until when, and `up` ends the hold', async (t) => {
  const cfg: ExecConsoleConfig = { type: 'exec', command: 'echo up; sleep 0.05', breakDelayMs: 250 };
  const s = supervise(t, 'flap', cfg, { minBackoffMs: 20, maxBackoffMs: 20, flapMax: 3, flapWindowMs: 10_000, flapHoldMs: 60_000 });
  await until('held down', () => /^flapping: went down 3 times within 10 s; held down until \d\d:\d\d:\d\d UTC \(cloudcons console up flap retries now\)$/.test(s.sup.state.reason ?? ''), 5000, () => JSON.stringify(s.states));
  const ups = s.ups();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.ups(), ups, 'no reopen while held');
  assert.equal(s.events.filter((e) => e.what === 'flapping').length, 1);
  s.sup.adminUp('alice');
  await until('up again', () => s.ups() > ups);
  assert.match(s.events.at(-1)!.detail, /brought up by alice \(was: flap hold\)/);
});

test('manual down closes the console until up, whatever the device does', async (t) => {
  const dev = await DeviceServer.start({ path: path.join(tmpDir('sup-down'), 'c.sock') });
  t.after(() => dev.vanish());
  const cfg: UdsConsoleConfig = { type: 'uds', path: (dev.addr as { path: string }).path, breakDelayMs: 250 };
  const s = supervise(t, 'sw1', cfg, { minBackoffMs: 20, maxBackoffMs: 20 });
  await until('up', () => s.sup.state.state === 'up');
  await s.sup.adminDown('bob');
  assert.deepEqual([s.sup.state.state, s.sup.state.reason], ['down', 'down by bob (cloudcons console up sw1 brings it back)']);
  await until('device saw the close', () => dev.connections === 1 && !(dev as unknown as { socks: Set<unknown> }).socks.size);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(dev.connections, 1, 'no reconnect while down by hand');
  await assert.rejects(s.sup.write(Buffer.from('x')), /console sw1 is down: down by bob/);
  s.sup.adminUp('bob');
  await until('up again', () => s.sup.state.state === 'up');
  assert.deepEqual(s.events.map((e) => e.what), ['manual.down', 'manual.up']);
  assert.equal(s.events[1].detail, 'console brought up by bob (was: down by bob)');
});

test('up while a down is still closing the console: it comes back up (not stuck down)', async (t) => {
  const cfg: ExecConsoleConfig = { type: 'exec', command: 'cat', breakDelayMs: 250 };
  const s = supervise(t, 'race', cfg, { minBackoffMs: 20, maxBackoffMs: 20 });
  await until('up', () => s.sup.state.state === 'up');
  const ups = s.ups();
  const down = s.sup.adminDown('bob');
  s.sup.adminUp('alice'); // before the close finished (the cloud sends ctl down, then ctl up)
  await down;
  await until('up again', () => s.sup.state.state === 'up' && s.ups() > ups, 5000, () => JSON.stringify(s.states));
});

test('ondemand: closed until watched, open while watched, closed again after the linger', async (t) => {
  const dev = await DeviceServer.start({ path: path.join(tmpDir('sup-od'), 'c.sock') });
  t.after(() => dev.vanish());
  const cfg: UdsConsoleConfig = { type: 'uds', path: (dev.addr as { path: string }).path, ondemand: true, breakDelayMs: 250 };
  const s = supervise(t, 'od', cfg, { lingerMs: 150 });
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual([s.sup.state.state, s.sup.state.reason, dev.connections], ['down', 'idle (ondemand: opens when someone attaches)', 0]);
  await assert.rejects(s.sup.write(Buffer.from('x')), /closed until someone attaches \(ondemand\)/);
  s.sup.setDemand(true);
  assert.deepEqual([s.sup.state.state, s.sup.state.reason], ['down', 'opening (ondemand: someone attached)']);
  await assert.rejects(s.sup.write(Buffer.from('x')), /still opening \(ondemand\)/);
  await until('opened on demand', () => s.sup.state.state === 'up' && dev.connections === 1);
  s.sup.setDemand(false);
  s.sup.setDemand(true); // a viewer reconnecting within the linger keeps it open
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.sup.state.state, 'up');
  s.sup.setDemand(false);
  await until('closed after the linger', () => s.sup.state.state === 'down');
  assert.equal(s.sup.state.reason, 'idle (ondemand: opens when someone attaches)');
  assert.equal(dev.connections, 1);
});

test('idleTimeout sends the idle string after that long without traffic, not while busy', async (t) => {
  const dev = await DeviceServer.start({ path: path.join(tmpDir('sup-idle'), 'c.sock') });
  t.after(() => dev.vanish());
  const cfg: UdsConsoleConfig = { type: 'uds', path: (dev.addr as { path: string }).path, idleTimeout: 300, idleString: 'ping\\r', breakDelayMs: 250 };
  const s = supervise(t, 'idle', cfg);
  await until('up', () => s.sup.state.state === 'up');
  await dev.whenConnected();
  // Busy: output every 100 ms for 600 ms keeps it from idling.
  for (let i = 0; i < 6; i++) { dev.emit(Buffer.from('.')); await new Promise((r) => setTimeout(r, 100)); }
  assert.equal(dev.received().toString(), '');
  await until('idle string sent', () => dev.received().toString() === 'ping\r', 2000);
  assert.match(s.events.find((e) => e.what === 'idle')!.detail, /^idle for 0 s: sent "ping\\\\r"$/);
});

test('initcmd runs wired to the console each time it comes up, and its end is reported', async (t) => {
  const dev = await DeviceServer.start({ path: path.join(tmpDir('sup-init'), 'c.sock') });
  t.after(() => dev.vanish());
  // A login script: wait for the prompt on stdin, answer on stdout.
  const cfg: UdsConsoleConfig = { type: 'uds', path: (dev.addr as { path: string }).path, breakDelayMs: 250,
    initcmd: 'while read -r line; do case "$line" in *login:*) echo root; exit 0;; esac; done' };
  const s = supervise(t, 'init', cfg);
  await until('up', () => s.sup.state.state === 'up');
  await dev.whenConnected();
  dev.emit(Buffer.from('\nhost1 login:\n'));
  await until('initcmd answered', () => dev.received().toString() === 'root\n');
  await until('initcmd end reported', () => s.events.some((e) => e.what === 'initcmd.end'));
  assert.deepEqual(s.events.map((e) => e.what), ['initcmd.start', 'initcmd.end']);
  assert.equal(s.events[1].detail, 'initcmd ended (exit 0)');
});

test('break sequences: 0 is the console default, others by slot, unknown ones are named', async (t) => {
  const dev = await DeviceServer.start({ path: path.join(tmpDir('sup-brk'), 'c.sock') });
  t.after(() => dev.vanish());
  const cfg: UdsConsoleConfig = { type: 'uds', path: (dev.addr as { path: string }).path, breakDelayMs: 250, break: '3', breaklist: ['2', '3', 'x'] };
  const s = supervise(t, 'brk', cfg, { breaks: { x: { string: 'a\\db', delayMs: 100 } } });
  await until('up', () => s.sup.state.state === 'up');
  await dev.whenConnected();
  await s.sup.sendBreakSequence('0');
  await until('#.', () => dev.received().toString() === '#.');
  dev.clearReceived();
  const t0 = Date.now();
  await s.sup.sendBreakSequence('x');
  assert.ok(Date.now() - t0 >= 95, 'the \\d pause took the delay');
  await s.sup.sendBreakSequence('2');
  await until('bytes', () => dev.received().toString() === 'ab\r~\x02');
  await assert.rejects(s.sup.sendBreakSequence('1'), /no break sequence 1 on console brk \(there are: 2 3 x\)/);
  assert.deepEqual(s.sup.breakList.map((b) => b.id), ['2', '3', 'x']);
});

test('a serial device that reappears is reopened at once, not after the backoff', async (t) => {
  const dir = tmpDir('sup-replug');
  const pair = await PtyPair.create(dir);
  t.after(() => pair.stop());
  const cfg: SerialConsoleConfig = { type: 'serial', device: `${dir}/dev`, baud: 115200, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none', breakDelayMs: 50 };
  // A backoff of 10 s or more: only the device watch can bring it up within a second.
  const s = supervise(t, 'replug', cfg, { minBackoffMs: 10_000, maxBackoffMs: 30_000, jitter: 0 });
  await until('up', () => s.sup.state.state === 'up');
  await pair.stop();
  await until('down', () => s.sup.state.state === 'down', 5000);
  await new Promise((r) => setTimeout(r, 300));
  const back = Date.now();
  await pair.start();
  await until('up again', () => s.sup.state.state === 'up', 3000);
  const ms = Date.now() - back;
  t.diagnostic(`serial device back -> console up: ${ms} ms`);
  assert.ok(ms < 1000, `${ms} ms`);
});
