// SSH driver against a real OpenSSH sshd started on a loopback port (key auth, host key pinning and
// known_hosts, RFC 4335 break, window size), and against an ssh2 server for password and
// keyboard-interactive auth (sshd would need a system user with a password for those).
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import ssh2 from 'ssh2';
import { driverContract, type DriverRig } from '../../test/contracts/driver.contract.ts';
import { DeviceServer } from '../../test/device-server.ts';
import { cleanup, tmpDir, until } from '../../test/helpers.ts';
import { haveSshd, startSshd } from '../../test/sshd.ts';
import { SshDriver, knownHostsAccepts } from './ssh.ts';
import { parseRelayConfig, type SshConsoleConfig } from '../config.ts';

after(cleanup);
const gate = haveSshd ? {} : { skip: 'OpenSSH server is not installed (apt-get install openssh-server)' };
const user = os.userInfo().username;

function sshCfg(yaml: string): SshConsoleConfig {
  return Object.values(parseRelayConfig(`consoles: { c: { type: ssh, ${yaml} } }`, 'x.yaml').consoles)[0] as SshConsoleConfig;
}

if (haveSshd) {
  driverContract('ssh (sshd)', async () => {
    const sshd = await startSshd();
    const dev = await DeviceServer.start({ path: path.join(sshd.dir, 'dev.sock') });
    // The remote side of the console is a raw tty wired to the test's device socket.
    const command = `stty raw -echo; exec socat - UNIX-CONNECT:${sshd.dir}/dev.sock`;
    const cfg = sshCfg(`host: 127.0.0.1, port: ${sshd.port}, user: ${user}, keyFile: ${sshd.key}, hostKey: '${sshd.hostFp}', command: '${command}'`);
    return {
      driver: new SshDriver(cfg), cfg, target: `127.0.0.1:${sshd.port}`,
      received: () => dev.received(), clearReceived: () => dev.clearReceived(), emit: (b) => dev.emit(b),
      // The host goes away: its listener and the device behind the session.
      vanish: async () => { await sshd.stop(); await dev.vanish(); },
      reappear: async () => { await dev.reappear(); await sshd.start(); },
      whenConnected: async () => { await dev.whenConnected(); },
      openFailsWhileGone: true, hasBreak: true,
      stop: async () => { await sshd.stop(); await dev.vanish(); },
    } satisfies DriverRig;
  });
}

async function opened(d: SshDriver) {
  let out = '';
  const closes: string[] = [];
  await d.open({ onData: (b) => { out += b.toString('latin1'); }, onClose: (r) => closes.push(r) });
  return { out: () => out, closes };
}

test('ssh: a changed host key is refused, naming the key seen so it can be pinned', gate, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const wrong = 'SHA256:' + crypto.randomBytes(32).toString('base64').replace(/=+$/, '');
  const d = new SshDriver(sshCfg(`host: 127.0.0.1, port: ${sshd.port}, user: ${user}, keyFile: ${sshd.key}, hostKey: '${wrong}'`));
  await assert.rejects(d.open({ onData() {}, onClose() {} }), (e: Error) => {
    assert.match(e.message, new RegExp(`host key ${sshd.hostFp.replace(/[+/]/g, '\\$&')} does not match the pinned hostKey`));
    assert.match(e.message, /set hostKey:/);
    return true;
  });
});

test('ssh: known_hosts (plain, [host]:port and hashed entries) is checked when no key is pinned', gate, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const [kt, blob] = sshd.hostPub.split(' ');
  const key = Buffer.from(blob, 'base64');
  const salt = crypto.randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${crypto.createHmac('sha1', salt).update(`[127.0.0.1]:${sshd.port}`).digest('base64')}`;
  assert.ok(knownHostsAccepts(`[127.0.0.1]:${sshd.port} ${kt} ${blob}\n`, '127.0.0.1', sshd.port, key));
  assert.ok(knownHostsAccepts(`# comment\n${hashed} ${kt} ${blob}\n`, '127.0.0.1', sshd.port, key));
  assert.ok(!knownHostsAccepts(`127.0.0.1 ${kt} ${blob}\n`, '127.0.0.1', sshd.port, key), 'a port-22 entry does not vouch for another port');
  assert.ok(!knownHostsAccepts(`[127.0.0.1]:${sshd.port} ${kt} ${blob}\n@revoked * ${kt} ${blob}\n`, '127.0.0.1', sshd.port, key));
  const kh = path.join(sshd.dir, 'known_hosts');
  fs.writeFileSync(kh, `${hashed} ${kt} ${blob}\n`);
  const d = new SshDriver(sshCfg(`host: 127.0.0.1, port: ${sshd.port}, user: ${user}, keyFile: ${sshd.key}, knownHosts: ${kh}, command: 'echo via-known-hosts; sleep 5'`));
  const o = await opened(d);
  await until('command output', () => o.out().includes('via-known-hosts'), 10_000);
  await d.close();
  fs.writeFileSync(kh, '');
  await assert.rejects(new SshDriver(sshCfg(`host: 127.0.0.1, port: ${sshd.port}, user: ${user}, keyFile: ${sshd.key}, knownHosts: ${kh}`)).open({ onData() {}, onClose() {} }),
    /does not match known_hosts/);
});

test('ssh: break reaches sshd as an RFC 4335 request; the window size follows resize', gate, async (t) => {
  const sshd = await startSshd('DEBUG1'); // sshd logs channel requests at debug1
  t.after(() => sshd.stop());
  const cmd = `trap "stty size" WINCH; stty size; while :; do sleep 0.1; done`;
  const d = new SshDriver(sshCfg(`host: 127.0.0.1, port: ${sshd.port}, user: ${user}, keyFile: ${sshd.key}, hostKey: '${sshd.hostFp}', cols: 100, rows: 30, command: '${cmd}'`));
  const o = await opened(d);
  await until('initial size', () => o.out().includes('30 100'), 10_000);
  d.resize(120, 40);
  await until('size after resize', () => o.out().includes('40 120'), 10_000);
  await d.sendBreak();
  await until('sshd logged the break request', () => /request break/.test(sshd.log()), 10_000);
  await d.close();
  assert.deepEqual(o.closes, ['closed']);
});

test('ssh: password and keyboard-interactive auth (ssh2 server); a wrong password is a clear error', async (t) => {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  const methods: string[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => {
      methods.push(ctx.method);
      if (ctx.method === 'password' && ctx.username === 'admin' && ctx.password === 's3cret') return ctx.accept();
      if (ctx.method === 'keyboard-interactive' && ctx.username === 'kbd') {
        return ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) => (answers[0] === 's3cret' ? ctx.accept() : ctx.reject()));
      }
      ctx.reject(['password', 'keyboard-interactive']);
    });
    client.on('ready', () => client.on('session', (accept) => {
      const session = accept();
      session.on('pty', (ok) => ok?.());
      session.on('shell', (ok) => { const ch = ok(); ch.write('bmc> '); ch.on('data', (d: Buffer) => ch.write(d)); });
    }));
    client.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const dir = tmpDir('sshpw');
  fs.writeFileSync(path.join(dir, 'pw'), 's3cret\n', { mode: 0o600 });
  // Host key pinned from what the server presents (found by a first, refused attempt).
  const probe = await new SshDriver(sshCfg(`host: 127.0.0.1, port: ${port}, user: admin, password: x, hostKey: 'SHA256:${'A'.repeat(43)}'`))
    .open({ onData() {}, onClose() {} }).then(() => '', (e: Error) => /host key (SHA256:\S+)/.exec(e.message)![1]);
  const common = `host: 127.0.0.1, port: ${port}, hostKey: '${probe}'`;
  for (const c of [`user: admin, passwordFile: ${dir}/pw`, 'user: kbd, passwordEnv: CC_TEST_SSH_PW']) {
    process.env.CC_TEST_SSH_PW = 's3cret';
    const d = new SshDriver(sshCfg(`${common}, ${c}`));
    const o = await opened(d);
    await d.write(Buffer.from('status\r'));
    await until('echo from the BMC shell', () => o.out().includes('bmc> status'), 5000);
    await d.close();
  }
  assert.ok(methods.includes('password') && methods.includes('keyboard-interactive'), methods.join());
  await assert.rejects(new SshDriver(sshCfg(`${common}, user: admin, password: wrong`)).open({ onData() {}, onClose() {} }),
    new RegExp(`ssh admin@127.0.0.1:${port}: authentication failed \\(password refused\\)`));
});

test('ssh config: needs a key or a password, and only one password source', () => {
  assert.throws(() => parseRelayConfig('consoles: { a: { type: ssh, host: h, user: u }, b: { type: ssh, host: h, user: u, password: x, passwordEnv: Y }, c: { type: ssh, host: h, user: u, keyFile: k, hostKey: "MD5:aa" } }', 'x.yaml'),
    (e: Error & { problems?: string[] }) => {
      assert.deepEqual(e.problems, [
        'console c: hostKey: must be a SHA256 fingerprint as ssh-keygen -l prints it (SHA256:...) (got "MD5:aa")',
        'console a: ssh needs keyFile or one of password, passwordFile, passwordEnv',
        'console b: give only one of password, passwordFile, passwordEnv (got password, passwordEnv)',
      ]);
      return true;
    });
});
