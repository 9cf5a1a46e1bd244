import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Supervisor, type ConsoleStatus } from './supervisor.ts';
import { createDriver } from './drivers/index.ts';
import type { ExecConsoleConfig, SerialConsoleConfig } from './config.ts';
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
function supervise(t: TestContext, name: string, cfg: SerialConsoleConfig | ExecConsoleConfig, opts = {}) {
  const sup = new Supervisor(name, cfg, createDriver(cfg), opts);
  const states: (ConsoleStatus & { at: number })[] = [];
  const data: Buffer[] = [];
  sup.on('state', (s) => states.push({ ...s, at: Date.now() }));
  sup.on('data', (d, ts) => {
    assert.ok(Math.abs(ts - Date.now()) < 1000);
    data.push(d);
  });
  t.after(() => sup.stop());
  sup.start();
  return { sup, states, text: () => Buffer.concat(data).toString(), ups: () => states.filter((s) => s.state === 'up').length };
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
