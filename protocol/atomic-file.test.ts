// The shared atomic write: whole or not at all on a full disk (a real tmpfs), and a guard that
// keeps files that matter from being written any other way.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from './atomic-file.ts';
import { mountTmpfs, unmountAll, fillDisk } from '../test/tmpfs.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-atomic-'));
after(() => { unmountAll(); fs.rmSync(root, { recursive: true, force: true }); });

test('a full disk leaves the old file whole and no temporary file; with room the new one is whole, 0600', async (t) => {
  const disk = path.join(root, 'disk');
  const why = mountTmpfs(disk, '256k');
  // Gated: a full disk is a small tmpfs, and mounting one needs root (the skip says why: mount's
  // own error). CI runs as root, so this runs there.
  if (why) { t.skip(why); return; }
  const file = path.join(disk, 'state.json');
  const old = randomBytes(20_000);
  writeFileAtomic(file, old);
  const filler = path.join(disk, 'filler');
  fillDisk(filler);
  fs.truncateSync(filler, fs.statSync(filler).size - 8192); // room for part of the new content
  assert.throws(() => writeFileAtomic(file, randomBytes(100_000)), { code: 'ENOSPC' });
  assert.ok(fs.readFileSync(file).equals(old), 'the old content, byte for byte');
  assert.deepEqual(fs.readdirSync(disk).sort(), ['filler', 'state.json'], 'no temporary file left to fill the disk further');
  fs.rmSync(filler);
  const next = randomBytes(100_000);
  // A temporary file of this pid that a crash left, readable by others, is not reused.
  fs.writeFileSync(`${file}.${process.pid}.tmp`, 'stale', { mode: 0o644 });
  writeFileAtomic(file, next);
  assert.ok(fs.readFileSync(file).equals(next));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(disk), ['state.json']);
});

test('guard: files that matter are written through protocol/atomic-file.ts (no bare writeFile/appendFile in the code)', () => {
  // Each allowed site and why it is not state that a crash or a full disk could tear.
  const allowed: Record<string, RegExp> = {
    'edge-relay/spool.ts': /fs\.writeFileSync\(probe, ''/, // an empty probe that the spool dir is writable, removed at once
    'cloud/adapters/fs/segment-store.ts': /fh\.writeFile\(body\)/, // a temporary file, datasynced, then linked into place
  };
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules') walk(p); continue; }
      if (!e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
      const rel = path.relative(path.resolve(import.meta.dirname, '..'), p);
      fs.readFileSync(p, 'utf8').split('\n').forEach((l, i) => {
        if (!/\b(writeFileSync|appendFileSync|appendFile|writeFile)\(/.test(l) || /^\s*(\/\/|\*)/.test(l)) return;
        if (allowed[rel]?.test(l)) return;
        found.push(`${rel}:${i + 1}: ${l.trim()}`);
      });
    }
  };
  for (const d of ['protocol', 'edge-relay', 'cloud', 'cli']) walk(path.resolve(import.meta.dirname, '..', d));
  assert.deepEqual(found, [], 'write these with writeFileAtomic (protocol/atomic-file.ts), or add the site to the list above with why it need not be atomic');
});
