// `cloudcons access show|set|check` and `cloudcons token list|revoke`: the access rules
// (cloud/core/acl.ts) and token lifecycle, through the cloud's HTTP API.
import fs from 'node:fs';
import type { Command } from 'commander';
import YAML from 'yaml';
import { ACTIONS, type Decision } from '../cloud/core/acl.ts';
import type { TokenInfo } from '../cloud/core/ports.ts';
import { BadParameter } from '../protocol/errors.ts';
import { apiJson } from './api.ts';
import type { Login } from './login-config.ts';
import { json, line, out, put, safe, yaml, type Shown } from './print.ts';

type LoginOpts = (c: Command) => Command;
type LoginOf = (o: { url?: string; token?: string }) => Login;

/** `--expires`: `never`, a duration from now (`90d`, `12h`, `2w`), or a date / ISO time.
 *  Returns ms since the epoch, null for never. */
export function parseExpiry(v: string, now = Date.now()): number | null {
  const t = v.trim();
  if (t === 'never') return null;
  const m = /^(\d+(?:\.\d+)?)\s*(m|h|d|w)$/.exec(t);
  if (m) return now + Math.round(Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm']);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(t) ? Date.parse(t.replace(' ', 'T')) : NaN;
  if (Number.isNaN(ms)) throw new BadParameter(`--expires: expected never, a duration like 90d, 12h or 2w, or a date like 2027-01-31 (got ${JSON.stringify(v)})`);
  if (ms <= now) throw new BadParameter(`--expires: ${v} is not in the future`);
  return ms;
}

export function formatToken(t: TokenInfo, now = Date.now()): Shown {
  const state = t.revoked ? `revoked ${new Date(t.revoked.at).toISOString()} by ${t.revoked.by}`
    : t.expires !== undefined && t.expires <= now ? `expired ${new Date(t.expires).toISOString()}`
      : t.expires !== undefined ? `expires ${new Date(t.expires).toISOString()}` : 'never expires';
  return line`${t.id}  ${t.kind.padEnd(5)}  ${safe(t.name).padEnd(16)}  ${t.admin ? 'admin ' : '      '}  created ${new Date(t.created).toISOString()}  ${state}`;
}

export function registerTokenAdmin(tokenCmd: Command, loginOpts: LoginOpts, login: LoginOf): void {
  loginOpts(tokenCmd.command('list').description('tokens without their secrets: yours, or every token for an admin').option('--json', 'machine-readable output'))
    .action(async (o) => {
      const { tokens } = await apiJson<{ tokens: TokenInfo[] }>(login(o), '/v1/tokens');
      if (o.json) { out(json(tokens)); return; }
      for (const t of tokens) out(formatToken(t));
    });
  loginOpts(tokenCmd.command('revoke <id>').description('revoke a token at once (your own, or any for an admin); it stays listed as revoked'))
    .action(async (id: string, o) => {
      const t = await apiJson<TokenInfo>(login(o), `/v1/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });
      out(formatToken(t));
    });
}

interface CheckResult { user: string; groups: string[]; admin: boolean; console: string; version: number; rules: string; actions: Record<string, Decision> }

export function registerAccess(program: Command, loginOpts: LoginOpts, login: LoginOf): void {
  const access = program.command('access').description('who may do what on which console (rules like conserver\'s rw/ro lists)');
  loginOpts(access.command('show').description('print the access rules (YAML; admins only)').option('--json', 'as JSON'))
    .action(async (o) => {
      const r = await apiJson<{ version: number; doc: unknown }>(login(o), '/v1/access');
      if (o.json) { out(json(r)); return; }
      if (r.doc === null) { out(line`# no access rules are set: every signed-in user may do every console action (tokens and rules: admins)`); return; }
      out(line`# version ${r.version}`);
      put(process.stdout, yaml(r.doc));
    });
  loginOpts(access.command('set <file>').description('replace the access rules with a YAML or JSON file (admins only; checked before it is stored)')
    .option('--if-version <n>', 'only if the stored rules are still this version (from access show)'))
    .action(async (file: string, o) => {
      let doc: unknown;
      try { doc = YAML.parse(fs.readFileSync(file, 'utf8')); } catch (e) { throw new BadParameter(`${file}: ${(e as Error).message}`); }
      const body = { doc, ...(o.ifVersion !== undefined ? { version: Number(o.ifVersion) } : {}) };
      const r = await apiJson<{ version: number; doc: { rules: unknown[] } }>(login(o), '/v1/access', { method: 'PUT', body: JSON.stringify(body) });
      out(line`access rules version ${r.version} stored (${r.doc.rules.length} rules)`);
    });
  loginOpts(access.command('check <user> <console>').description('explain what USER may do on CONSOLE, and which rule decides (others than yourself: admins only)')
    .option('--group <g...>', 'groups the user brings from single sign-on')
    .option('--action <a>', `only this action (${ACTIONS.join(', ')}); exit 1 if denied`).option('--json', 'machine-readable output'))
    .action(async (user: string, console_: string, o) => {
      const q = new URLSearchParams({ user, console: console_ });
      if (o.group?.length) q.set('groups', o.group.join(','));
      const r = await apiJson<CheckResult>(login(o), `/v1/access/check?${q}`);
      if (o.action && !(o.action in r.actions)) throw new BadParameter(`--action: one of ${ACTIONS.join(', ')} (got ${JSON.stringify(o.action)})`);
      if (o.json) out(json(r));
      else {
        out(line`${r.user} on ${r.console}${r.groups.length ? ` (groups ${r.groups.join(', ')})` : ''}${r.admin ? ' (admin)' : ''}; rules: ${r.rules === 'set' ? `version ${r.version}` : r.rules}`);
        for (const [a, d] of Object.entries(r.actions)) if (!o.action || a === o.action) out(line`  ${safe(a).padEnd(7)} ${d.allow ? 'allow' : 'DENY '}  ${d.why}`);
      }
      if (o.action && !r.actions[o.action]!.allow) process.exitCode = 1;
    });
}
