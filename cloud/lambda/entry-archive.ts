// Lambda entry point of the archiver, run on a schedule (infra/stack.ts: hourly), for every
// console of the registry:
//   - moves audit records older than CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS from the DynamoDB table to
//     the Object Lock audit bucket (cloud/adapters/aws/s3-audit-archive.ts);
//   - compacts segments: each UTC day before today becomes one segment object per run of
//     contiguous segments (LogStore.compact), so no small object ever reaches a lifecycle
//     transition to an archive storage class.
// esbuild bundles it into dist/lambda/archive/index.mjs (scripts/build.mjs).
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
import { LogStore } from '../core/log-store.ts';
import { entryConfig, entryPorts, positiveInt } from './entry-shared.ts';

const config = entryConfig();
if (!config.auditBucket) throw new Error('CLOUDCONS_AUDIT_BUCKET is not set: the archiver needs the audit bucket (infra/stack.ts sets it)');
const afterMs = positiveInt(process.env, 'CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS') ?? 3_600_000;
const { ports } = entryPorts(config, { send: async () => false, close: async () => {} });
const log = new LogStore(ports.segments, ports.hot);

export async function handler(): Promise<{ consoles: number; objects: number; records: number; segmentsMerged: number; segmentsInto: number }> {
  const store = ports.audit;
  if (!(store instanceof ArchivedAuditStore)) throw new Error('the audit store is not the archiving one');
  const consoles = (await ports.consoles.list()).map((c) => c.name);
  const before = Date.now() - afterMs;
  const r = await store.archiveAll(consoles, before, (line) => console.log(line));
  const today = new Date(new Date().toISOString().slice(0, 10)).getTime();
  let segmentsMerged = 0, segmentsInto = 0;
  const failed = [...r.failed];
  for (const c of consoles) {
    try {
      const m = await log.compact(c, today);
      segmentsMerged += m.merged; segmentsInto += m.into;
      if (m.merged || m.deleted) console.log(`segments of ${c}: ${m.merged} merged into ${m.into}, ${m.deleted} small objects deleted`);
    } catch (e) {
      failed.push(c);
      console.log(`segments of ${c}: compaction failed, the next run tries again: ${(e as Error).message}`);
    }
  }
  console.log(JSON.stringify({ msg: 'archive run', consoles: consoles.length, auditBefore: new Date(before).toISOString(), auditObjects: r.objects, auditRecords: r.records, segmentsMerged, segmentsInto, failed }));
  if (failed.length) throw new Error(`archiving failed for ${failed.length} console(s): ${[...new Set(failed)].join(', ')} (nothing is lost: the next run tries again; see the lines above)`);
  return { consoles: consoles.length, objects: r.objects, records: r.records, segmentsMerged, segmentsInto };
}
