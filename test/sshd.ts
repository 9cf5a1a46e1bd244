// A real OpenSSH sshd on a loopback port for the ssh driver's tests and the release test: its own
// host key, a client key in authorized_keys (key auth only), started and stopped by the test.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fingerprint } from '../edge-relay/drivers/ssh.ts';
import { freePort, Proc, tmpDir } from './helpers.ts';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
export const haveSshd = fs.existsSync(SSHD);

export interface Sshd { port: number; dir: string; hostFp: string; hostPub: string; key: string; log(): string; start(): Promise<void>; stop(): Promise<void> }

export async function startSshd(logLevel = 'INFO'): Promise<Sshd> {
  const dir = tmpDir('sshd');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_ed25519')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'id_ed25519')]);
  fs.copyFileSync(path.join(dir, 'id_ed25519.pub'), path.join(dir, 'authorized_keys'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_ed25519`, `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', `LogLevel ${logLevel}`, 'PrintMotd no', '',
  ].join('\n'));
  if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
  const hostPub = fs.readFileSync(path.join(dir, 'host_ed25519.pub'), 'utf8').trim();
  const hostFp = fingerprint(Buffer.from(hostPub.split(' ')[1], 'base64'));
  let proc: Proc | undefined;
  let logs = '';
  const s: Sshd = {
    port, dir, hostFp, hostPub, key: path.join(dir, 'id_ed25519'),
    log: () => logs + (proc?.err ?? ''),
    async start() {
      proc = new Proc(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')]);
      await proc.waitFor(/Server listening on 127\.0\.0\.1 port/, 10_000);
    },
    async stop() { logs += proc?.err ?? ''; await proc?.kill(); proc = undefined; },
  };
  await s.start();
  return s;
}
