// Test hook: local audit records without the SSH server. With CLOUDCONS_TEST_LOCAL_AUDIT_DIR set,
// the relay records each `*.json` file that appears in that folder (in name order; a
// LocalAuditRecord with `data` in base64) in its local audit journal, then deletes the file (so a
// test that sees it gone knows record() returned: the record is durable). With
// CLOUDCONS_TEST_CRASH_AT=audit-ok the relay kills itself (SIGKILL) when the cloud confirms an
// upload, before the journal learns it (a crash between upload and confirm). Without them, nothing
// changes. For test/e2e/local-audit.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import type { LocalAudit, LocalAuditRecord } from './types.ts';

const dir = process.env.CLOUDCONS_TEST_LOCAL_AUDIT_DIR;
export const crashAtAuditOk = process.env.CLOUDCONS_TEST_CRASH_AT === 'audit-ok';

/** Starts feeding `audit` from the test's folder (a no-op without the variable); returns a stop. */
export function testAuditHook(audit: LocalAudit, log: (l: string) => void): () => void {
  if (!dir) return () => {};
  const timer = setInterval(() => {
    let names: string[];
    try { names = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort(); } catch { return; }
    for (const f of names) {
      const file = path.join(dir, f);
      const r = JSON.parse(fs.readFileSync(file, 'utf8')) as LocalAuditRecord & { data?: string };
      try { audit.record({ ...r, data: r.data === undefined ? undefined : Buffer.from(r.data, 'base64') }); } catch (e) { log(`test hook: ${f}: ${(e as Error).message}`); fs.renameSync(file, `${file}.refused`); continue; }
      fs.rmSync(file);
    }
  }, 20);
  timer.unref();
  return () => clearInterval(timer);
}
