// The web viewer (web/): one script and one stylesheet (xterm.js and its CSS bundled in: no CDN,
// it must work in an air-gapped datacenter), plus index.html, into OUT/. The embedded cloud
// serves them; the AWS stack uploads them to its viewer bucket. Built by scripts/build.mjs into
// dist/web/ and by scripts/release.mjs into a release's lib/web/.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { ROOT } from './sources.mjs';

export async function buildWeb(out) {
  // main.ts imports app.css (which imports xterm's): esbuild writes it beside app.js as app.css.
  await build({
    entryPoints: { app: path.join(ROOT, 'web/src/main.ts') },
    outdir: path.join(out, 'assets'), bundle: true, platform: 'browser', format: 'esm', target: ['chrome110', 'firefox110', 'safari16'],
    minify: true, sourcemap: 'linked', legalComments: 'linked', logLevel: 'warning',
  });
  fs.copyFileSync(path.join(ROOT, 'web/index.html'), path.join(out, 'index.html'));
}
