#!/usr/bin/env node
// `npm run build` (also run by `npm ci` / `npm install` through `prepare`): bundles the CLI (and so
// the relay and the embedded cloud) into dist/cloudcons.mjs with esbuild, and the AWS Lambda
// functions into dist/lambda/. bin/cloudcons.js runs the CLI bundle while it is newer than every
// source file, else the TypeScript sources through tsx, so a developer's edit is never shadowed by
// a stale bundle. Why bundle: a relay through tsx carries
// tsx's loader thread and an esbuild service process (~45 MB RSS) on every edge host.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { newestSourceMtime, ROOT } from './sources.mjs';
import { buildWeb } from './web-build.mjs';

const started = newestSourceMtime();
// Code splitting: what the CLI imports lazily (the cloud, the relay, the AWS adapters) becomes a
// chunk that loads, with the packages it needs, only when used. Without it esbuild hoists every
// package import to the top of one file, and `cloudcons ls` would load the AWS SDK.
// Built into a fresh directory, then swapped in: a test run or CLI using dist/ while another
// build runs (two `npm test` in one checkout) never finds it half written.
const OUT = path.join(ROOT, `dist.build-${process.pid}`);
fs.rmSync(OUT, { recursive: true, force: true });
const cli = build({
  entryPoints: { cloudcons: path.join(ROOT, 'cli/main.ts') },
  outdir: OUT, splitting: true, chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' },
  bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
  sourcemap: 'linked', logLevel: 'warning',
});
// The Lambda functions of the AWS stack (infra/stack.ts deploys dist/lambda/<name>/ as each one's
// code, handler `index.<export>`), built beside the CLI (in parallel, ~0.5 s more). One
// self-contained file each: everything bundled, the AWS SDK v3 included rather than taken from
// the runtime, because the adapters rely on recent SDK features (PutObject `IfNoneMatch`, the
// `requestChecksumCalculation` option) and the runtime's copy is whatever version AWS ships that
// month; bundling pins what the tests ran, and esbuild keeps only the clients used. Whitespace and
// syntax are minified but names kept, so stack traces in CloudWatch still say where.
// The banner gives bundled CommonJS packages a `require` for Node built-ins (ESM has none).
const lambdas = build({
  entryPoints: { 'ws/index': path.join(ROOT, 'cloud/lambda/entry-ws.ts'), 'http/index': path.join(ROOT, 'cloud/lambda/entry-http.ts'),
    'archive/index': path.join(ROOT, 'cloud/lambda/entry-archive.ts') },
  outdir: path.join(OUT, 'lambda'), outExtension: { '.js': '.mjs' },
  bundle: true, platform: 'node', format: 'esm', target: 'node20', mainFields: ['module', 'main'],
  minifyWhitespace: true, minifySyntax: true, legalComments: 'none', logLevel: 'warning',
  banner: { js: "import { createRequire as __ccRequire } from 'node:module'; const require = __ccRequire(import.meta.url);" },
});
// The web viewer, into dist/web/ (scripts/web-build.mjs).
const web = buildWeb(path.join(OUT, 'web'));
await Promise.all([cli, lambdas, web]);
fs.writeFileSync(path.join(OUT, 'build-info.json'), JSON.stringify({ sourceMtimeMs: started, builtAt: new Date().toISOString() }) + '\n');
// dist/release/ (`npm run release`, scripts/release.mjs) is not this build's: it moves over as it is.
try { fs.renameSync(path.join(ROOT, 'dist/release'), path.join(OUT, 'release')); } catch (e) { if (e.code !== 'ENOENT') throw e; }
const old = path.join(ROOT, `dist.old-${process.pid}`);
try { fs.renameSync(path.join(ROOT, 'dist'), old); } catch (e) { if (e.code !== 'ENOENT') throw e; }
fs.renameSync(OUT, path.join(ROOT, 'dist'));
fs.rmSync(old, { recursive: true, force: true });
