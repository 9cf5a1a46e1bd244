// `cloudcons keys add|list|remove` (users' SSH public keys for local access at the relays) and
// `cloudcons relay-local on|off NAME` (admins), through the cloud's HTTP API
// (cloud/core/local-access.ts). The cloud checks every key line and says which one is wrong.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { SshKeyRecord } from '../cloud/core/ports.ts';
import { BadParameter } from '../protocol/errors.ts';
import { apiJson } from './api.ts';
import type { Login } from './login-config.ts';
import { json, line, out, safe, table } from './print.ts';

type LoginOpts = (c: Command) => Command;
type LoginOf = (o: { url?: string; token?: string }) => Login;

/** More than this is not a key file (the cloud takes 64 KiB by default, maxKeyFileBytes): not read. */
const READ_MAX = 1024 * 1024;

function readKeyFile(file: string): string {
  if (file === '-') return fs.readFileSync(0, 'utf8');
  let size: number;
  try { size = fs.statSync(file).size; } catch (e) { throw new BadParameter(`${file}: ${(e as Error).message}`); }
  if (size > READ_MAX) throw new BadParameter(`${file}: ${size} bytes, not a public key file (an OpenSSH public key line, e.g. ~/.ssh/id_ed25519.pub)`);
  return fs.readFileSync(file, 'utf8');
}

const userQuery = (user: string | undefined) => (user ? `?${new URLSearchParams({ user })}` : '');

export function registerKeys(program: Command, loginOpts: LoginOpts, login: LoginOf): void {
  const keys = program.command('keys').description('your SSH public keys, for local access at the relays while the cloud is away (admins: anyone\'s, with --user)');
  loginOpts(keys.command('add <file>').description('add the key(s) of an OpenSSH public key file or authorized_keys-style file (- reads stdin); all or none')
    .option('--user <user>', 'add them for this user (admins only)'))
    .action(async (file: string, o) => {
      const r = await apiJson<{ user: string; added: string[]; had: string[] }>(login(o), '/v1/keys', { method: 'POST', body: JSON.stringify({ keys: readKeyFile(file), ...(o.user ? { user: o.user } : {}) }) });
      for (const fp of r.added) out(line`added ${fp} for ${r.user}`);
      for (const fp of r.had) out(line`already there: ${fp} (${r.user})`);
    });
  loginOpts(keys.command('list').description('the SSH keys kept in the cloud: type, fingerprint (as ssh-keygen -lf prints it), comment, added at and by')
    .option('--user <user>', 'another user\'s keys (admins only)').option('--json', 'machine-readable output (times in ms since the epoch)'))
    .action(async (o) => {
      const r = await apiJson<{ user: string; keys: SshKeyRecord[] }>(login(o), `/v1/keys${userQuery(o.user)}`);
      if (o.json) { out(json(r)); return; }
      table([['TYPE', 'FINGERPRINT', 'COMMENT', 'ADDED', 'BY'], ...r.keys.map((k) => [k.type, k.fingerprint, k.comment ?? '-', new Date(k.addedAt).toISOString(), k.addedBy])]);
    });
  loginOpts(keys.command('remove <fingerprint>').description('remove a key by its fingerprint (SHA256:...); connected relays forget it at once, the others at their next connection')
    .option('--user <user>', 'another user\'s key (admins only)'))
    .action(async (fp: string, o) => {
      const r = await apiJson<{ user: string; removed: SshKeyRecord }>(login(o), `/v1/keys/${encodeURIComponent(fp)}${userQuery(o.user)}`, { method: 'DELETE' });
      out(line`removed ${r.removed.fingerprint} (${r.removed.type}${r.removed.comment ? ` ${safe(r.removed.comment)}` : ''}) of ${r.user}`);
    });

  loginOpts(program.command('relay-local <on|off> <relay>').description('allow (on, the default) or forbid (off) local SSH access at a relay (admins only; the relay keeps the decision through an outage)'))
    .action(async (op: string, relay: string, o) => {
      if (op !== 'on' && op !== 'off') throw new BadParameter(`relay-local: on or off (got ${JSON.stringify(op)})`);
      const r = await apiJson<{ relay: string; local: string; connected: boolean }>(login(o), `/v1/relays/${encodeURIComponent(relay)}/local`, { method: 'POST', body: JSON.stringify({ on: op === 'on' }) });
      out(line`local access at relay ${r.relay}: ${r.local}${r.connected ? '' : ' (the relay is not connected: it hears at its next connection)'}`);
    });
}
