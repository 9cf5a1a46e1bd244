#!/usr/bin/env node
// Entry point of the `cloudcons` command. Runs dist/cloudcons.mjs (built by `npm ci` through the
// `prepare` script, see scripts/build.mjs) while it is newer than every source file; otherwise,
// or with CLOUDCONS_FROM_SOURCE=1, the TypeScript sources through tsx's loader.
import fs from 'node:fs';
import path from 'node:path';
import { newestSourceMtime, ROOT } from '../scripts/sources.mjs';

function bundleIsCurrent() {
  if (process.env.CLOUDCONS_FROM_SOURCE === '1') return false;
  try {
    const info = JSON.parse(fs.readFileSync(path.join(ROOT, 'dist/build-info.json'), 'utf8'));
    return fs.existsSync(path.join(ROOT, 'dist/cloudcons.mjs')) && newestSourceMtime() <= info.sourceMtimeMs;
  } catch { return false; }
}

if (bundleIsCurrent()) {
  await import('../dist/cloudcons.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
