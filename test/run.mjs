#!/usr/bin/env node
// `npm test`: typecheck, then every *.test.ts (unit tests beside the code, contract and
// end-to-end tests in test/) under node's test runner. Extra args are passed to node --test,
// e.g. `npm test -- --test-name-pattern=lock`. TEST_FILES=a,b limits the run to some files.
import { spawnSync } from 'node:child_process';
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
  const tc = spawnSync('npx', ['tsc', '--noEmit', '-p', '.'], { cwd: root, stdio: 'inherit' });
  if (tc.status !== 0) { console.error('typecheck failed'); process.exit(tc.status ?? 1); }
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...process.argv.slice(2), ...run.sort()], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
