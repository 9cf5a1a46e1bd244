#!/usr/bin/env node
// `npm run build` (also run by `npm ci` / `npm install` through `prepare`): bundles the CLI (and so
// the relay and the embedded cloud) into dist/cloudcons.mjs with esbuild. bin/cloudcons.js runs the
// bundle while it is newer than every source file, else the TypeScript sources through tsx, so a
// developer's edit is never shadowed by a stale bundle. Why bundle: a relay through tsx carries
// tsx's loader thread and an esbuild service process (~45 MB RSS) on every edge host.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { newestSourceMtime, ROOT } from './sources.mjs';

const started = newestSourceMtime();
await build({
  entryPoints: [path.join(ROOT, 'cli/main.ts')],
  outfile: path.join(ROOT, 'dist/cloudcons.mjs'),
  bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
  sourcemap: 'linked', logLevel: 'warning',
});
fs.writeFileSync(path.join(ROOT, 'dist/build-info.json'), JSON.stringify({ sourceMtimeMs: started, builtAt: new Date().toISOString() }) + '\n');
