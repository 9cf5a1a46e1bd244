import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExecDriver } from './exec.ts';
import type { ExecConsoleConfig } from '../config.ts';

function cfg(over: Partial<ExecConsoleConfig>): ExecConsoleConfig {
  return { type: 'exec', command: ['/bin/sh'], breakDelayMs: 250, ...over };
}

async function until(what: string, cond: () => boolean, ms = 5000, seen?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${seen ? `; output so far: ${JSON.stringify(seen())}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens the driver, recording output and close reasons; the process is killed in cleanup. */
async function start(t: TestContext, c: ExecConsoleConfig, opts = {}) {
  const driver = new ExecDriver(c, opts);
  const chunks: Buffer[] = [];
  const closes: string[] = [];
  await driver.open({ onData: (d) => chunks.push(d), onClose: (r) => closes.push(r) });
  const pid = driver.pid!;
  t.after(async () => {
    await driver.close();
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone, as it should be */ }
  });
  const out = () => Buffer.concat(chunks);
  return { driver, pid, out, text: () => out().toString('latin1'), closes };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

test('runs /bin/sh on a pty: typed input is echoed and executed', async (t) => {
  const sh = await start(t, cfg({ command: ['/bin/sh'] }));
  assert.ok(alive(sh.pid));
  await sh.driver.write(Buffer.from('echo "sum=$((40+2))"\r'));
  // The pty echoes what was typed; the shell's answer proves it ran.
  await until('echo and answer', () => sh.text().includes('echo "sum=$((40+2))"') && sh.text().includes('sum=42\r\n'), 5000, sh.text);
  assert.deepEqual(sh.closes, []);
});

test('output is byte-exact, env and cwd are applied, TERM defaults to xterm-256color', async (t) => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'exec-test-')));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sh = await start(t, cfg({
    command: `printf '\\377\\376\\200\\000|'; echo "$FOO|$TERM|$(pwd)"`, cwd: dir, env: { FOO: 'bar' },
  }));
  await until('exit', () => sh.closes.length > 0);
  const out = sh.out();
  assert.deepEqual(out.subarray(0, 5), Buffer.from([0xff, 0xfe, 0x80, 0x00, 0x7c]));
  assert.equal(out.subarray(5).toString(), `bar|xterm-256color|${dir}\r\n`);
});

test('initial size and resize are seen by stty size inside', async (t) => {
  const sh = await start(t, cfg({ command: ['/bin/sh'], cols: 100, rows: 30 }));
  await sh.driver.write(Buffer.from('echo "size=$(stty size)"\r'));
  await until('first size', () => sh.text().includes('size=30 100'));
  sh.driver.resize(132, 43);
  await sh.driver.write(Buffer.from('echo "size=$(stty size)"\r'));
  await until('new size', () => sh.text().includes('size=43 132'));
  assert.equal(sh.driver.resizable, true);
});

test('exit fires onClose with the exit code or the signal', async (t) => {
  const ok = await start(t, cfg({ command: 'echo bye; exit 0' }));
  await until('exit 0', () => ok.closes.length > 0);
  assert.deepEqual(ok.closes, ['process exited with code 0']);
  assert.match(ok.text(), /bye/); // output is not lost at exit

  const three = await start(t, cfg({ command: ['/bin/sh', '-c', 'exit 3'] }));
  await until('exit 3', () => three.closes.length > 0);
  assert.deepEqual(three.closes, ['process exited with code 3']);

  const killed = await start(t, cfg({ command: 'sleep 30' }));
  process.kill(killed.pid, 'SIGKILL');
  await until('kill', () => killed.closes.length > 0);
  assert.deepEqual(killed.closes, ['killed by signal 9 (SIGKILL)']);
  await assert.rejects(killed.driver.write(Buffer.from('x')), /not running/);
});

test('close() hangs up the process, and SIGKILLs one that ignores SIGHUP', async (t) => {
  const plain = await start(t, cfg({ command: 'sleep 30' }));
  await plain.driver.close();
  assert.deepEqual(plain.closes, ['closed']);
  assert.equal(alive(plain.pid), false);

  const stubborn = await start(t, cfg({ command: "trap '' HUP; echo ready; while :; do sleep 0.1; done" }), { killGraceMs: 300 });
  await until('trap set', () => stubborn.text().includes('ready'));
  const t0 = Date.now();
  await stubborn.driver.close();
  const took = Date.now() - t0;
  assert.ok(took >= 290 && took < 2000, `close took ${took} ms`);
  assert.deepEqual(stubborn.closes, ['closed']);
  assert.equal(alive(stubborn.pid), false);

  // Reopen after close runs a fresh process.
  const again = new ExecDriver(cfg({ command: 'echo again' }));
  const seen: string[] = [];
  await again.open({ onData: (d) => seen.push(d.toString()), onClose: (r) => seen.push(r) });
  await until('second run', () => seen.includes('process exited with code 0'));
  assert.match(seen.join(''), /again/);
});

test('no serial break; missing command or cwd fails open clearly', async () => {
  const d = new ExecDriver(cfg({}));
  await assert.rejects(d.sendBreak(), { message: 'exec consoles have no serial break' });
  await assert.rejects(new ExecDriver(cfg({ command: ['no-such-command-xyz'] })).open({ onData() {}, onClose() {} }),
    { message: 'open exec: no-such-command-xyz: command not found or not executable' });
  await assert.rejects(new ExecDriver(cfg({ cwd: '/no/such/dir' })).open({ onData() {}, onClose() {} }),
    { message: 'open exec: cwd /no/such/dir: no such directory' });
});
