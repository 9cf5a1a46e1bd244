// Release folders (cloudcons-<version>-linux-<arch>/, the layout `npm run release` makes) for the
// install, upgrade and rollback tests. The real release: CLOUDCONS_TEST_RELEASE names a tarball or
// an unpacked folder, else this arch's release is built from this checkout once per test process
// (scripts/release.mjs --arch, into a temp folder: never a tarball left in dist/release by an
// older build; ~10 s with its runtime cache warm). With CLOUDCONS_TEST_RELEASE=checkout the folder
// is assembled from this checkout instead: the same files from packaging/, and a bin/cloudcons
// that, like the release's launcher, resolves its folder through symlinks and runs
// `lib/cloudcons.mjs` there, which here imports the checkout's CLI under the Node running the tests.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers.ts';

const ARCH = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : process.arch;
let built: string | undefined;

/** The real release this run uses, or undefined for folders assembled from the checkout. */
export function realRelease(): string | undefined {
  const env = process.env.CLOUDCONS_TEST_RELEASE;
  if (env === 'checkout') return undefined;
  if (env) return path.resolve(env);
  if (built) return built;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-release-'));
  process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'release.mjs'), '--arch', ARCH, '--out', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 240_000 });
  const tar = fs.readdirSync(out).find((f) => f.endsWith(`-linux-${ARCH}.tar.gz`));
  if (!tar) throw new Error(`scripts/release.mjs --arch ${ARCH} made no tarball in ${out}`);
  return (built = path.join(out, tar));
}

/** A release folder in `dir` whose VERSION is `version`. From a real release, that release with
 *  its VERSION file rewritten (its code is the same: the tests tell versions apart by folder). */
export function releaseFolder(dir: string, version: string): string {
  const folder = path.join(dir, `cloudcons-${version}-linux-${ARCH}`);
  const real = realRelease();
  if (real) {
    const unpacked = path.join(dir, '.unpacked');
    let src = real;
    if (fs.statSync(real).isFile()) {
      fs.mkdirSync(unpacked, { recursive: true });
      execFileSync('tar', ['-xzf', real, '-C', unpacked]);
      src = path.join(unpacked, fs.readdirSync(unpacked)[0]!);
    }
    execFileSync('cp', ['-R', src, folder]);
    if (fs.existsSync(unpacked)) fs.rmSync(unpacked, { recursive: true, force: true });
    fs.writeFileSync(path.join(folder, 'VERSION'), `${version}\n`);
    return folder;
  }
  const put = (rel: string, from: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
    fs.copyFileSync(from, path.join(folder, rel));
    fs.chmodSync(path.join(folder, rel), mode);
  };
  const pkg = path.join(ROOT, 'packaging');
  put('install.sh', path.join(pkg, 'install.sh'), 0o755);
  put('share/systemd/cloudcons-relay.service', path.join(pkg, 'systemd', 'cloudcons-relay.service'));
  put('share/systemd/cloudcons-cloud.service', path.join(pkg, 'systemd', 'cloudcons-cloud.service'));
  put('share/examples/relay.yaml', path.join(pkg, 'relay.yaml'));
  fs.writeFileSync(path.join(folder, 'VERSION'), `${version}\n`);
  fs.mkdirSync(path.join(folder, 'bin'));
  fs.writeFileSync(path.join(folder, 'bin', 'cloudcons'), `#!/bin/sh
# Test stand-in for the release's launcher (test/release-folder.ts).
HERE=$(dirname "$(readlink -f "$0")")
exec ${JSON.stringify(process.execPath)} "$HERE/../lib/cloudcons.mjs" "$@"
`, { mode: 0o755 });
  fs.mkdirSync(path.join(folder, 'lib'));
  fs.writeFileSync(path.join(folder, 'lib', 'cloudcons.mjs'), `await import(${JSON.stringify(path.join(ROOT, 'bin', 'cloudcons.js'))});\n`);
  return folder;
}
