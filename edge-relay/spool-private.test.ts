// The spool holds console output: under umask 000 its folders are 0700 and its files 0600 (active
// logs, state, sealed and shifted segments, gap records), and a spool left readable by others is
// tightened when the relay starts. (This file's process has its own umask.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Spool } from './spool.ts';
import { looseModes } from '../test/helpers.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
function tmp(): string { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-spool-private-')); dirs.push(d); return d; }
process.umask(0);

test('under umask 000 every spool folder is 0700 and every file 0600: active log, state, segments, shifted segments, gap records', async () => {
  const dir = path.join(tmp(), 'spool');
  const sp = new Spool({ dir, capBytes: 40_000, log: () => {} });
  const c = sp.open('web01');
  sp.append(c, Buffer.from('before the cloud said where we are'), 1);
  await sp.sealConsole(c);
  await c.confirm(500); // the unconfirmed segment is rewritten at the cloud's offset
  for (let i = 0; i < 6; i++) { sp.append(c, randomBytes(10_000), 100 + i); await sp.sealConsole(c); } // past the cap: a gap record
  await new Promise((r) => setTimeout(r, 50));
  await c.idle();
  assert.ok(c.sealed.some((s) => s.gap), 'a gap record was written');
  sp.append(c, Buffer.from('still active'), 200);
  const files = fs.readdirSync(path.join(dir, 'web01'));
  assert.ok(files.includes('active.log') && files.includes('active.json'), files.join(' '));
  assert.deepEqual(looseModes(dir), []);
  await sp.close();
});

test('a spool left readable by others is tightened when it is opened, and the log says so', async () => {
  const dir = path.join(tmp(), 'spool');
  fs.mkdirSync(path.join(dir, 'web01'), { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'web01', 'active.log'), '', { mode: 0o644 });
  const logs: string[] = [];
  const sp = new Spool({ dir, log: (l) => logs.push(l) });
  assert.deepEqual(looseModes(dir), []);
  assert.ok(logs.some((l) => /^made 3 file\(s\) and folder\(s\) under .* private/.test(l)), logs.join('\n'));
  await sp.close();
});
