// Replay and search over a large stored history (issue 3 targets): builds SIZE_MB (default 1024)
// of console text for one console as 1 MiB sealed segments in a fresh data directory, starts the
// embedded cloud in-process, and measures through its HTTP API:
//   - time to first byte of `replay --tail 1000` and of `replay --since <middle>`
//   - grep throughput (MB/s of raw log scanned, a pattern that never matches), against GNU grep
//     over the same text as one plain file (what conserver's logfile would be)
// Run: node --import tsx bench/log-replay.ts   (SIZE_MB=256 for a quicker run; KEEP=1 keeps files)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsSegmentStore } from '../cloud/adapters/fs/segment-store.ts';
import { startCloudServer } from '../cloud/server/node-server.ts';
import { encodeSegment, type Chunk } from '../protocol/segment.ts';
import { FsHotTail } from '../cloud/adapters/fs/hot-tail.ts';
import { LogStore } from '../cloud/core/log-store.ts';

const SIZE = Number(process.env.SIZE_MB ?? 1024) * 1024 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-log-'));
const dataDir = path.join(dir, 'data');
const plain = path.join(dir, 'conserver-style.log');

const FILL = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_[]()';
const t0 = Date.UTC(2026, 0, 1);
let off = 0, line = 0, ts = t0;
// Through LogStore.putSegment, as an upload would: verified, stored, grep index built.
const store = new LogStore(new FsSegmentStore(dataDir), new FsHotTail(dataDir));
const plainFd = fs.openSync(plain, 'w');
const build0 = Date.now();
while (off < SIZE) {
  const chunks: Chunk[] = [];
  let n = 0;
  while (n < 1024 * 1024) {
    let s = '';
    for (let i = 0; i < 50; i++, line++) s += `[${String(line).padStart(10)}] kernel: ${FILL.slice(line % 40, (line % 40) + 40)} ok\r\n`;
    const data = Buffer.from(s);
    chunks.push({ offset: off + n, ts, data });
    ts += 5;
    n += data.length;
  }
  await store.putSegment('bench', await encodeSegment('bench', chunks));
  for (const c of chunks) fs.writeSync(plainFd, c.data);
  off += n;
}
fs.closeSync(plainFd);
const tMid = t0 + (ts - t0) / 2;
console.log(`built ${(off / 1048576).toFixed(0)} MiB of history in ${((Date.now() - build0) / 1000).toFixed(1)} s (${fs.readdirSync(path.join(dataDir, 'segments', 'logs', 'bench', '2026', '01', '01')).filter((f) => f.endsWith('.seg')).length} segments)`);

const srv = await startCloudServer({ dataDir, log: () => {} });
const { token } = await srv.ports.tokens.create({ kind: 'user', name: 'bench' });
const h = { authorization: `Bearer ${token}` };

async function ttfb(q: string): Promise<{ first: number; total: number; bytes: number }> {
  const a = performance.now();
  const res = await fetch(`${srv.url}/v1/consoles/bench/replay?${q}`, { headers: h });
  const reader = res.body!.getReader();
  let first = 0, bytes = 0;
  for (;;) { const r = await reader.read(); if (r.done) break; if (!first) first = performance.now() - a; bytes += r.value.length; }
  return { first, total: performance.now() - a, bytes };
}
const rows: string[][] = [];
for (const [what, q] of [['replay --tail 1000', 'tail=1000&format=text'], ['replay --since <middle> --until +3 s', `since=${tMid}&until=${tMid + 3000}&format=text`]] as const) {
  await ttfb(q); // warm-up: footers cached, as for any console in use
  const runs = [await ttfb(q), await ttfb(q), await ttfb(q)].sort((a, b) => a.first - b.first);
  rows.push([what, `${runs[1].first.toFixed(1)} ms`, `${runs[1].total.toFixed(1)} ms`, `${runs[1].bytes} B`]);
}
console.log('\n| measurement | time to first byte | total | bytes |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);

// grep: a pattern that never matches (the index lets cloudcons skip blocks), one that matches
// every 50,000th line (selective), and one without required literals (full scan), each beside
// GNU grep -E over the same text as one plain file (page cache warm).
const mb = off / 1e6;
console.log(`\n| grep pattern over ${mb.toFixed(0)} MB | cloudcons | GNU grep -E, plain file | matches |\n|---|---|---|---|`);
for (const pat of ['NEVER_[0-9]+_MATCHES', '\\[ *[0-9]*50000\\] kernel', '[0-9]{10}\\] kernel: XYZ']) {
  const g0 = performance.now();
  const gr = await fetch(`${srv.url}/v1/grep?pattern=${encodeURIComponent(pat)}&console=bench&max=10000000`, { headers: h });
  const hits = (await gr.text()).split('\n').filter(Boolean).length;
  const gs = (performance.now() - g0) / 1000;
  spawnSync('grep', ['-E', '-c', pat, plain]);
  const p0 = performance.now();
  const gnu = spawnSync('grep', ['-E', '-c', pat, plain], { encoding: 'utf8' });
  const ps = (performance.now() - p0) / 1000;
  console.log(`| \`${pat}\` | ${(mb / gs).toFixed(0)} MB/s (${gs.toFixed(2)} s) | ${(mb / ps).toFixed(0)} MB/s (${ps.toFixed(2)} s) | ${hits} / ${gnu.stdout.trim()} |`);
}
await srv.close();
if (!process.env.KEEP) fs.rmSync(dir, { recursive: true, force: true }); else console.log(`kept ${dir}`);
