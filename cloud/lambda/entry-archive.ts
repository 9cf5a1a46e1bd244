// Lambda entry point of the audit archiver, run on a schedule (infra/stack.ts: hourly): moves
// every console's audit records older than CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS from the DynamoDB
// table to the Object Lock audit bucket (cloud/adapters/aws/s3-audit-archive.ts). esbuild bundles it
// into dist/lambda/archive/index.mjs (scripts/build.mjs).
//
// Environment (parsed in entry-shared.ts, plus):
//   CLOUDCONS_TABLE, CLOUDCONS_SEGMENTS_BUCKET   as for the other functions (required)
//   CLOUDCONS_AUDIT_BUCKET                       the audit bucket (required here)
//   CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS             records older than this move, default 3600000 (1 h)
//
// The consoles are those of the console registry (a console stays there after its relay is gone).
// A console whose archiving fails keeps its records in DynamoDB for the next run; the invocation
// then fails (so the function's Errors metric and any alarm on it see it) after doing the rest.
import { ArchivedAuditStore } from '../adapters/aws/s3-audit-archive.ts';
import { entryConfig, entryPorts, positiveInt } from './entry-shared.ts';

const config = entryConfig();
if (!config.auditBucket) throw new Error('CLOUDCONS_AUDIT_BUCKET is not set: the archiver needs the audit bucket (infra/stack.ts sets it)');
const afterMs = positiveInt(process.env, 'CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS') ?? 3_600_000;
const { ports } = entryPorts(config, { send: async () => false, close: async () => {} });

export async function handler(): Promise<{ consoles: number; objects: number; records: number }> {
  const store = ports.audit;
  if (!(store instanceof ArchivedAuditStore)) throw new Error('the audit store is not the archiving one');
  const consoles = (await ports.consoles.list()).map((c) => c.name);
  const before = Date.now() - afterMs;
  const r = await store.archiveAll(consoles, before, (line) => console.log(line));
  console.log(JSON.stringify({ msg: 'audit archive run', consoles: consoles.length, before: new Date(before).toISOString(), objects: r.objects, records: r.records, failed: r.failed }));
  if (r.failed.length) throw new Error(`archiving the audit of ${r.failed.length} console(s) failed: ${r.failed.join(', ')} (their records stay in DynamoDB; see the lines above)`);
  return { consoles: consoles.length, objects: r.objects, records: r.records };
}
