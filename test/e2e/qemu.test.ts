// A real device end to end: ../shared/qemu-console boots a stock Debian kernel under QEMU with its
// serial console on a telnet port (QEMU speaks the telnet). A relay process holds it as a `telnet`
// console; the cloud stores the boot log; the CLI, on a pty, logs in at the getty prompt, runs a
// command and sends a serial BREAK (^Ecl0: IAC BRK, which QEMU turns into a UART break, and the
// kernel into magic SysRq). The audit must show the login name and the command under the right
// user, and the password typed at the prompt only as redacted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cleanup, cloudcons, createToken, freePort, Proc, ROOT, startCloud, Terminal, tmpDir, until } from '../helpers.ts';

after(cleanup);
const run = promisify(execFile);
const QC = path.resolve(ROOT, '..', 'shared', 'qemu-console');
const why = !fs.existsSync(`${QC}/start-vm.sh`) ? `${QC} is missing`
  : !fs.existsSync('/usr/bin/qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 busybox-static)' : undefined;

test('QEMU VM over telnet: boot log stored, login and command through the CLI, password redacted in the audit, SysRq by BREAK', { skip: why, timeout: 240_000 }, async () => {
  const dir = tmpDir('qemu');
  // start-vm.sh builds (and caches) the kernel and initramfs; the VM is started here, as that
  // script would, but always under TCG: it picks KVM whenever /dev/kvm is writable, and on this
  // kind of machine (nested virtualisation) /dev/kvm exists yet QEMU aborts on it ("failed to set
  // MSR 0x10a").
  const build = Object.fromEntries((await run(`${QC}/start-vm.sh`, ['--build-only'], { timeout: 180_000 })).stdout
    .trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  const host = '127.0.0.1';
  const port = await freePort();
  // server=on,wait=on: the guest starts only when the relay connects, so the whole boot log is captured.
  const qemu = new Proc('qemu-system-x86_64', ['-name', 'cloudcons-vm', '-nodefaults', '-no-user-config', '-machine', 'pc', '-accel', 'tcg', '-cpu', 'qemu64',
    '-smp', '1', '-m', '256', '-display', 'none', '-vga', 'none', '-serial', `telnet:${host}:${port},server=on,wait=on,nodelay=on`,
    '-kernel', build.KERNEL, '-initrd', build.INITRD, '-append', 'console=ttyS0,115200 panic=-1', '-no-reboot']);
  try {
    await qemu.waitFor(/waiting for connection/, 20_000);
    const data = path.join(dir, 'data');
    const cloud = await startCloud(data);
    const relayTok = createToken(data, 'relay', 'lab');
    fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: lab }\nconsoles:\n  vm1: { type: telnet, host: ${host}, port: ${port} }\n`);
    const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
    await relay.waitFor(/console vm1 up/);
    const auth = { authorization: `Bearer ${cloud.adminToken}` };
    const stored = async () => (await (await fetch(`${cloud.url}/v1/consoles/vm1/replay?from=0&format=raw`, { headers: auth })).text());
    await until('the login prompt in the stored log', async () => /cloudcons-vm login: /.test(await stored()), 120_000, 500);
    const boot = await stored();
    assert.match(boot, /Linux version \d+\.\d+/);
    const stamped = boot.match(/^\[\s*\d+\.\d+\] /gm)?.length ?? 0;
    assert.ok(stamped > 250, `the whole kernel log: ${stamped} timestamped lines`);

    const env = { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: createUserToken(data, 'alice') };
    const t = new Terminal(['attach', 'vm1'], env);
    await t.waitFor('[attached to vm1: read-write]');
    t.write('\r');
    await t.waitFor('cloudcons-vm login: ', 20_000); // a fresh prompt (attach shows no history by default)
    t.write('root\r');
    await t.waitFor('Password: ', 20_000);
    await new Promise((r) => setTimeout(r, 700)); // busybox login prints the prompt before it turns echo off
    t.write('cloudcons\r');
    await t.waitFor('root@cloudcons-vm:~# ', 30_000);
    t.write('echo hello-$((6*7))\r');
    await t.waitFor('hello-42', 20_000);
    // BREAK then h: the kernel's SysRq help, printed on the serial console.
    t.write('\x05cl0');
    await t.waitFor('[cloudcons: break 0 sent]');
    t.write('h');
    await t.waitFor(/sysrq: HELP :/i, 20_000);
    t.write('\x05c.');

    const r = await run(process.execPath, [path.join(ROOT, 'bin', 'cloudcons.js'), 'audit', 'vm1', '--json'], { env: { ...process.env, ...env } });
    const recs = JSON.parse(r.stdout) as { type: string; user?: string; data?: string; detail?: string }[];
    const typed = recs.filter((x) => x.type === 'input').map((x) => [x.user, x.data ? Buffer.from(x.data, 'base64').toString() : x.detail]);
    const all = typed.map(([, d]) => d).join('');
    assert.ok(all.includes('root\r'), JSON.stringify(typed));
    assert.ok(all.includes('echo hello-$((6*7))\r') || all.replace(/\r/g, '').includes('echo hello-$((6*7))'), JSON.stringify(typed));
    assert.ok(typed.some(([u, d]) => u === 'alice' && /^\[redacted: \d+ bytes typed at a password prompt\]$/.test(String(d))), JSON.stringify(typed));
    assert.ok(!all.includes('cloudcons\r') && !all.includes('cloudcons'), `the password is not in the audit: ${JSON.stringify(typed)}`);
    assert.ok(typed.every(([u]) => u === 'alice'));
    assert.ok(recs.some((x) => x.type === 'break' && x.user === 'alice'));
    // The readable audit (what an auditor reads) shows the command and the redaction too.
    const text = (await run(process.execPath, [path.join(ROOT, 'bin', 'cloudcons.js'), 'audit', 'vm1'], { env: { ...process.env, ...env } })).stdout;
    assert.match(text, /alice.*redacted: \d+ bytes typed at a password prompt/);
    assert.doesNotMatch(text, /cloudcons\^M/);
    await relay.kill();
  } finally {
    await qemu.kill();
  }
});

function createUserToken(data: string, user: string): string { return createToken(data, 'user', user); }
