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
// Code splitting: what the CLI imports lazily (the cloud, the relay, the AWS adapters) becomes a
// chunk that loads, with the packages it needs, only when used. Without it esbuild hoists every
// package import to the top of one file, and `cloudcons ls` would load the AWS SDK.
fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: { cloudcons: path.join(ROOT, 'cli/main.ts') },
  outdir: path.join(ROOT, 'dist'), splitting: true, chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' },
  bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
  sourcemap: 'linked', logLevel: 'warning',
});
fs.writeFileSync(path.join(ROOT, 'dist/build-info.json'), JSON.stringify({ sourceMtimeMs: started, builtAt: new Date().toISOString() }) + '\n');
