// Private folders and files whatever the umask, and what was there before tightened at start.
// (node:test runs each file in a process of its own: the umask set here is this file's.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { privateDir, tightenTree } from './private-files.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-private-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
process.umask(0);

const mode = (p: string) => fs.lstatSync(p).mode & 0o777;

test('privateDir makes every missing folder 0700 under umask 000', () => {
  const d = privateDir(path.join(dir, 'a', 'b', 'c'));
  for (const p of [path.join(dir, 'a'), path.join(dir, 'a', 'b'), d]) assert.equal(mode(p), 0o700, p);
});

test('tightenTree takes group and other bits off what this user owns, says so, skips links and the inside of shallow folders', () => {
  const root = path.join(dir, 'data');
  fs.mkdirSync(path.join(root, 'audit'), { recursive: true, mode: 0o755 });
  fs.chmodSync(root, 0o777);
  fs.writeFileSync(path.join(root, 'tokens.json'), '[]', { mode: 0o644 });
  fs.writeFileSync(path.join(root, 'audit', 'web01.jsonl'), '', { mode: 0o666 });
  fs.writeFileSync(path.join(root, 'ok.json'), '', { mode: 0o600 });
  fs.mkdirSync(path.join(root, 'segments', 'logs'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(root, 'segments', 'logs', 'x.seg'), '', { mode: 0o644 });
  const outside = path.join(dir, 'outside.txt');
  fs.writeFileSync(outside, '', { mode: 0o644 });
  fs.symlinkSync(outside, path.join(root, 'link'));
  const lines: string[] = [];
  tightenTree(root, { log: (l) => lines.push(l), shallow: ['segments'] });
  assert.deepEqual([mode(root), mode(path.join(root, 'audit')), mode(path.join(root, 'tokens.json')), mode(path.join(root, 'audit', 'web01.jsonl')), mode(path.join(root, 'ok.json'))], [0o700, 0o700, 0o600, 0o600, 0o600]);
  assert.equal(mode(path.join(root, 'segments')), 0o700, 'a shallow folder itself is tightened');
  assert.equal(mode(path.join(root, 'segments', 'logs')), 0o755, '... not what is inside it');
  assert.equal(mode(outside), 0o644, 'a link is not followed');
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^made 5 file\\(s\\) and folder\\(s\\) under ${root} private \\(group or others could read them\\): .*tokens\\.json \\(was 0644\\)`));
  lines.length = 0;
  tightenTree(root, { log: (l) => lines.push(l) });
  assert.equal(mode(path.join(root, 'segments', 'logs', 'x.seg')), 0o600, 'walked when not shallow');
  tightenTree(root, { log: (l) => lines.push(l) });
  assert.equal(lines.length, 1, 'nothing left to say the second time');
});

test('tightenTree refuses what others could read and this user does not own, naming it and what to do', () => {
  const root = path.join(dir, 'theirs');
  fs.mkdirSync(root, { mode: 0o700 });
  fs.writeFileSync(path.join(root, 'f'), '', { mode: 0o640 });
  // The file is this process's (root's here): seen by a process of another uid it is someone else's.
  assert.throws(() => tightenTree(root, { log: () => {}, uid: 4242 }), (e: Error & { code?: string }) => e.code === 'CC_ERR_CONFIG' && e.message === `${path.join(root, 'f')} is mode 0640, owned by uid ${process.getuid!()}, not this user (uid 4242): others may read it and it cannot be made private here; chown it to this user or chmod go-rwx it`);
  assert.equal(mode(path.join(root, 'f')), 0o640);
});
