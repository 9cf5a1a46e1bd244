#!/usr/bin/env node
// `npm test`: typecheck, then every *.test.ts (unit tests beside the code, contract and
// end-to-end tests in test/) under node's test runner. Extra args are passed to node --test,
// e.g. `npm test -- --test-name-pattern=lock`. TEST_FILES=a,b limits the run to some files.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dirs = ['protocol', 'edge-relay', 'cloud', 'cli', 'web', 'infra', 'test', 'bench'];
const files = [];
function walk(d) {
  if (!fs.existsSync(d)) return;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') walk(p);
    else if (e.isFile() && e.name.endsWith('.test.ts')) files.push(path.relative(root, p));
  }
}
for (const d of dirs) walk(path.join(root, d));
const only = process.env.TEST_FILES?.split(',').filter(Boolean);
const run = only ? files.filter((f) => only.some((o) => f.includes(o))) : files;
// node --test without files would fall back to its default patterns (and run this script).
if (!run.length) { console.error(`no test files match TEST_FILES=${process.env.TEST_FILES}`); process.exit(2); }

// End-to-end tests run the CLI as shipped: the bundle `npm ci` builds (bin/cloudcons.js would fall
// back to the sources through tsx if it were stale).
const b = spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'inherit' });
if (b.status !== 0) { console.error('build failed'); process.exit(b.status ?? 1); }

if (!process.env.SKIP_TYPECHECK) {
  // The node code and the browser code (web/, DOM types) are checked as two projects.
  for (const project of ['.', 'web']) {
    const tc = spawnSync('npx', ['tsc', '--noEmit', '-p', project], { cwd: root, stdio: 'inherit' });
    if (tc.status !== 0) { console.error(`typecheck failed (${project})`); process.exit(tc.status ?? 1); }
  }
}
// A run that stops making progress must end with a reason, not hang CI: every test has a timeout
// (its own, else TEST_TIMEOUT_MS), a file whose tests are done exits even if something it started
// still holds its event loop (--test-force-exit), and the whole run is killed after
// TEST_RUN_TIMEOUT_MS (default 20 min; a full run takes about 3), printing what was still running.
const testTimeout = Number(process.env.TEST_TIMEOUT_MS ?? 300_000);
const runTimeout = Number(process.env.TEST_RUN_TIMEOUT_MS ?? 20 * 60_000);
// The fuzz test keeps both cores busy for its whole budget: it runs alone, after the others, so
// their timeouts do not measure its load.
const SOLO = /fuzz/;
const phases = [run.filter((f) => !SOLO.test(f)).sort(), run.filter((f) => SOLO.test(f)).sort()].filter((p) => p.length);
let child;
const watchdog = setTimeout(() => {
  const ps = spawnSync('ps', ['-o', 'pid,etimes,args', '-g', String(child.pid)], { encoding: 'utf8' });
  console.error(`\nnpm test: the run did not finish within ${runTimeout / 1000} s (TEST_RUN_TIMEOUT_MS); killing it. Still running:\n${ps.stdout}`);
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
}, runTimeout);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { try { process.kill(-child.pid, sig); } catch { /* gone */ } });
let failed = 0;
for (const files of phases) {
  child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-force-exit', `--test-timeout=${testTimeout}`,
    ...process.argv.slice(2), ...files], { cwd: root, stdio: 'inherit', detached: true });
  const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  // Whatever the test files started and left behind goes with them.
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* all gone */ }
  failed ||= code;
}
clearTimeout(watchdog);
process.exit(failed);
