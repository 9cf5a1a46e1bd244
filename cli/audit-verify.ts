// `cloudcons audit verify [NAME]`: checks the hash chain of a console's audit (every console's
// without NAME) end to end against its head (cloud/core/audit-chain.ts), through the cloud's
// GET /v1/audit/verify, or offline in an embedded cloud's data directory (`--data DIR`). One line
// per console; exit 0 when every chain is intact, 1 when one is broken.
import type { Command } from 'commander';
import { verifyLine, type AuditVerifyResult } from '../cloud/core/audit-walker.ts';
import { BadParameter } from '../protocol/errors.ts';
import { checkConsoleName } from '../protocol/names.ts';
import { apiJson } from './api.ts';
import type { Login } from './login-config.ts';
import { err, json, line, out, safe } from './print.ts';

export function registerAuditVerify(audit: Command, loginOpts: (c: Command) => Command, login: (o: { url?: string; token?: string }) => Login): void {
  loginOpts(audit.command('verify [console]')
    .description('check the audit hash chain of a console (every console without one) against its head: names the first broken record; exit 1 when one is broken')
    .option('--data <dir>', 'check an embedded cloud\'s data directory offline (its audit/ and audit-heads/), no cloud needed')
    .option('--json', 'machine-readable output'))
    .action(async function (this: Command, name: string | undefined) {
      const o = this.optsWithGlobals() as { data?: string; json?: boolean; url?: string; token?: string };
      if (name !== undefined) checkConsoleName(name, 'console', { cloudStream: true });
      const started = Date.now();
      const results = o.data ? await verifyOffline(o.data, name) : (await apiJson<{ consoles: AuditVerifyResult[] }>(login(o), `/v1/audit/verify${name ? `?console=${encodeURIComponent(name)}` : ''}`)).consoles;
      if (o.json) out(json(results));
      else for (const r of results) out(safe(verifyLine(r))); // names the broken record's detail: someone else's text
      const bad = results.filter((r) => !r.ok).length;
      const records = results.reduce((n, r) => n + r.records + r.unchained, 0);
      err(line`cloudcons audit verify: ${results.length} console(s), ${records} records, ${bad ? `${bad} BROKEN` : 'all intact'} (${Date.now() - started} ms)`);
      process.exitCode = bad ? 1 : 0;
    });
}

export function registerAuditReseal(audit: Command, loginOpts: (c: Command) => Command, login: (o: { url?: string; token?: string }) => Login): void {
  loginOpts(audit.command('reseal <console>')
    .description('after audit verify reports a head mismatch (a lost or unreadable head, one restored from a backup, records cut off the end): move the head to the last stored record; the chain gets an audit.reseal record saying from where to where and who. Refused while records are broken (admins)')
    .option('--data <dir>', 'reseal in an embedded cloud\'s data directory directly (with that cloud stopped)'))
    .action(async function (this: Command, name: string) {
      const o = this.optsWithGlobals() as { data?: string; url?: string; token?: string };
      checkConsoleName(name, 'console', { cloudStream: true });
      let r: { from?: { seq: number }; to: { seq: number }; record: { seq?: number; detail?: string } };
      if (o.data) {
        const { FsAuditStore } = await import('../cloud/adapters/fs/audit-store.ts');
        const os = await import('node:os');
        const store = new FsAuditStore(o.data);
        try { r = await store.reseal(name, `${os.userInfo().username} (offline)`, Date.now()); } finally { store.close(); }
      } else {
        r = await apiJson(login(o), `/v1/audit/reseal?console=${encodeURIComponent(name)}`, { method: 'POST' });
      }
      out(line`${name}: resealed: ${r.record.detail} (audit.reseal is seq ${r.record.seq})`);
    });
}

async function verifyOffline(dir: string, name: string | undefined): Promise<AuditVerifyResult[]> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { fsAuditConsoles, verifyFsAudit } = await import('../cloud/adapters/fs/audit-store.ts');
  if (!fs.existsSync(path.join(dir, 'audit')) && !fs.existsSync(path.join(dir, 'audit-heads'))) {
    throw new BadParameter(`--data ${dir}: no audit/ or audit-heads/ in it (is it an embedded cloud's data directory?)`);
  }
  const out: AuditVerifyResult[] = [];
  for (const c of name ? [name] : fsAuditConsoles(dir)) out.push(await verifyFsAudit(dir, c));
  return out;
}
