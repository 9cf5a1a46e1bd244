// The raw-socket drivers against a real device: QEMU's emulated UART exported as a raw TCP server
// (`-serial tcp:`) and as a unix socket (`-serial unix:`), booting ../shared/qemu-console's Debian
// kernel. Each test captures the boot log from its first line, logs in and runs a command.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cleanup, freePort, Proc, ROOT, tmpDir, until } from '../../test/helpers.ts';
import type { ConsoleDriver } from '../driver.ts';
import { TcpDriver, UdsDriver } from './socket.ts';

after(cleanup);
const run = promisify(execFile);
const QC = path.resolve(ROOT, '..', 'shared', 'qemu-console');
const skip = !fs.existsSync(`${QC}/start-vm.sh`) ? `${QC} is missing`
  : !fs.existsSync('/usr/bin/qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 busybox-static)' : undefined;

/** Boots the VM with its serial port on `serial` (QEMU chardev syntax), waiting for a client.
 *  Always TCG: see test/e2e/qemu.test.ts for why not KVM. */
async function bootVm(serial: string): Promise<Proc> {
  const build = Object.fromEntries((await run(`${QC}/start-vm.sh`, ['--build-only'], { timeout: 180_000 })).stdout
    .trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  const qemu = new Proc('qemu-system-x86_64', ['-name', 'cloudcons-vm', '-nodefaults', '-no-user-config', '-machine', 'pc', '-accel', 'tcg', '-cpu', 'qemu64',
    '-smp', '1', '-m', '256', '-display', 'none', '-vga', 'none', '-serial', serial,
    '-kernel', build.KERNEL, '-initrd', build.INITRD, '-append', 'console=ttyS0,115200 panic=-1 quiet', '-no-reboot']);
  await qemu.waitFor(/waiting for connection/, 20_000);
  return qemu;
}

async function loginAndRun(driver: ConsoleDriver): Promise<string> {
  let out = '';
  const closes: string[] = [];
  await driver.open({ onData: (d) => { out += d.toString('latin1'); }, onClose: (r) => closes.push(r) });
  await until('login prompt', () => /cloudcons-vm login: $/m.test(out) || out.includes('cloudcons-vm login: '), 120_000, 200);
  assert.match(out, /Linux version|cloudcons/);
  await driver.write(Buffer.from('root\r'));
  await until('password prompt', () => out.includes('Password: '), 20_000);
  await new Promise((r) => setTimeout(r, 700)); // busybox login prints the prompt before it turns echo off
  await driver.write(Buffer.from('cloudcons\r'));
  await until('shell prompt', () => out.includes('root@cloudcons-vm:~# '), 30_000);
  await driver.write(Buffer.from('echo via-$((40+2))\r'));
  await until('command output', () => out.includes('via-42'), 20_000);
  await driver.close();
  assert.deepEqual(closes, ['closed']);
  return out;
}

test('tcp driver: a QEMU VM on -serial tcp (boot log, login, command)', { skip, timeout: 240_000 }, async () => {
  const port = await freePort();
  const qemu = await bootVm(`tcp:127.0.0.1:${port},server=on,wait=on,nodelay=on`);
  try {
    const out = await loginAndRun(new TcpDriver({ host: '127.0.0.1', port }));
    assert.doesNotMatch(out, /\xff[\xfb-\xfe]/, 'raw TCP: no telnet negotiation in the stream');
  } finally { await qemu.kill(); }
});

test('uds driver: a QEMU VM on -serial unix (boot log, login, command)', { skip, timeout: 240_000 }, async () => {
  const sock = path.join(tmpDir('qemu-uds'), 'serial.sock');
  const qemu = await bootVm(`unix:${sock},server=on,wait=on`);
  try {
    await loginAndRun(new UdsDriver({ path: sock }));
  } finally { await qemu.kill(); }
});
