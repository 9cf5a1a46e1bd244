#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2
// Entry point of the `cloudcons` command. Runs dist/cloudcons.mjs (built by `npm ci` through the
// `prepare` script, see scripts/build.mjs) while it is newer than every source file; otherwise,
// or with CLOUDCONS_FROM_SOURCE=1, the TypeScript sources through tsx's loader.
// The shebang caps V8's young generation (semi-space) at 2 MB: a relay holding 1000 busy consoles
// then stays near 100 MB RSS instead of ~180 MB (V8 reads the flag only at start, so it has to be
// here; `node bin/cloudcons.js` without it runs the same, with Node's default heap sizing).
// MALLOC_ARENA_MAX=2 stops glibc giving each thread-pool thread (fdatasync, fs, zlib) an arena of
// its own, whose freed memory stays in the RSS: ~20 MB less for that relay. Other libcs ignore it.
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
