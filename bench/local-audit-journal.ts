// What a local audit record costs the relay (edge-relay/local/audit-journal.ts): record() writes
// its line and fdatasyncs before input goes out. `node --import tsx bench/local-audit-journal.ts
// [DIR] [N]`: N records (default 2000) of a typical keystroke batch into a journal under DIR
// (default a fresh folder in the OS temp dir, i.e. its disk), per-record latency percentiles.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditJournal } from '../edge-relay/local/audit-journal.ts';

const dir = process.argv[2] ? fs.mkdtempSync(path.join(process.argv[2], 'cc-jbench-')) : fs.mkdtempSync(path.join(os.tmpdir(), 'cc-jbench-'));
const n = Number(process.argv[3] ?? 2000);
const j = new AuditJournal({ dir, maxBytes: 1024 ** 3 });
const ms: number[] = [];
for (let i = 0; i < n; i++) {
  const t0 = process.hrtime.bigint();
  j.record({ console: 'web01', what: 'input', user: 'alice', source: 'cloud', fingerprint: 'SHA256:Vh4rRZl3D4mYlqJx0Bm0yB7wHnlmV+Q0bTgGJ1nZQ8A', session: 'ssh-1', ts: Date.now(), data: Buffer.from('ls -l\r') });
  ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
j.close();
ms.sort((a, b) => a - b);
const p = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(3);
console.log(`${n} records in ${dir}: p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms per record (write + fdatasync)`);
fs.rmSync(dir, { recursive: true, force: true });
