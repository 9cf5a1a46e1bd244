// The fs adapters on a real disk that fills up (a small tmpfs; needs root, skipped otherwise):
// the hot tail never throws out of its flush timer and never claims bytes it could not write;
// the audit store writes a record whole or not at all (a short write is cut off again and the
// append refused), never appends over a torn line or a skipped seq, and its verify tells a torn
// last line (a crash) from a deletion.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FsHotTail } from './hot-tail.ts';
import { FsAuditStore, verifyFsAudit } from './audit-store.ts';
import { dataDisk } from './data-disk.ts';
import { FsTokenStore } from './token-store.ts';
import { readFsAuditHead } from './audit-heads.ts';
import { cleanup, tmpDir } from '../../../test/helpers.ts';
import { fillDisk, mountTmpfs, unmountAll } from '../../../test/tmpfs.ts';
import type { AuditRecord } from '../../core/ports.ts';

after(async () => { unmountAll(); await cleanup(); });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
const rec = (type: string, detail = 'x'): AuditRecord => ({ time: Date.now(), console: 'c1', type, user: 'alice', detail });

/** A data directory on a fresh 1 MiB tmpfs, or undefined (the test skipped, saying why). */
function smallDisk(t: TestContext): string | undefined {
  const dir = path.join(tmpDir('fulldisk'), 'data');
  const why = mountTmpfs(dir, '1m');
  if (why) { t.skip(why); return undefined; }
  dataDisk(dir).log = () => {};
  return dir;
}

test('hot tail on a full disk: the flush timer never throws, the end claims only what the files hold, a new run starts above it once there is room', async (t) => {
  const dir = smallDisk(t);
  if (!dir) return;
  const hot = new FsHotTail(dir, 1024 * 1024, 20);
  const a = bytes(10_000, 1);
  await hot.append('c', 0, 1, a);
  assert.deepEqual(await hot.read('c', 0, 10_000), [{ offset: 0, ts: 1, data: a }]); // flushed
  const filler = path.join(dir, 'filler');
  fillDisk(filler);
  // 5000 more: the first ~2 KB fit the .bin's last page (a short write), the rest does not.
  await hot.append('c', 10_000, 2, bytes(5000, 2));
  await sleep(200); // the timer's flushes fail: an exception out of it would end this process
  assert.equal(await hot.end('c'), 10_000, 'the end goes back to what the files hold');
  assert.equal(fs.statSync(path.join(dir, 'hot', 'c', `${'0'.repeat(16)}.bin`)).size, 10_000, 'the short write was cut off');
  assert.match(dataDisk(dir).problem() ?? '', /data disk full .*ENOSPC/);
  const again = new FsHotTail(dir, 1024 * 1024, 20);
  assert.deepEqual(await again.runs('c'), [{ start: 0, end: 10_000 }], 'what a restarted cloud reports');
  again.close();
  // The relay's next chunk, still full: not stored, no empty run left behind.
  await hot.append('c', 15_000, 3, bytes(3000, 3));
  await sleep(100);
  assert.deepEqual(await hot.runs('c'), [{ start: 0, end: 10_000 }]);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'hot', 'c')).sort(), [`${'0'.repeat(16)}.bin`, `${'0'.repeat(16)}.ts`]);
  // Room again: the next chunk starts a run above the hole (the segment upload fills it).
  fs.rmSync(filler);
  const d = bytes(4000, 4);
  await hot.append('c', 18_000, 4, d);
  assert.deepEqual(await hot.read('c', 0, 30_000), [{ offset: 0, ts: 1, data: a }, { offset: 18_000, ts: 4, data: d }]);
  assert.deepEqual(await hot.runs('c'), [{ start: 0, end: 10_000 }, { start: 18_000, end: 22_000 }]);
  assert.equal(dataDisk(dir).problem(), undefined, 'the full state ends by itself');
  hot.close();
});

test('audit store on a full disk: a record that does not fit is refused whole (no partial line), the chain stays intact, the next append takes its seq', async (t) => {
  const dir = smallDisk(t);
  if (!dir) return;
  const store = new FsAuditStore(dir);
  for (let i = 0; i < 3; i++) await store.append(rec('input', `line ${i}`));
  const file = path.join(dir, 'audit', 'c1.jsonl');
  const before = fs.readFileSync(file);
  const filler = path.join(dir, 'filler');
  fillDisk(filler);
  // 9000 bytes of detail: more than the file's last page has left, so the write stops short.
  await assert.rejects(store.append(rec('input', 'y'.repeat(9000))), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CC_ERR_STORAGE_FULL');
    assert.match(e.message, /data disk is full \(ENOSPC writing audit record seq 4 of c1\).*the input it would record was refused/);
    return true;
  });
  assert.deepEqual(fs.readFileSync(file), before, 'no part of the refused record stays in the file');
  const v = await store.verify('c1');
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.equal(v.headState, 'interrupted'); // the head announces seq 4, never stored
  fs.rmSync(filler);
  await store.append(rec('input', 'after'));
  const recs = await store.list('c1');
  assert.deepEqual(recs.map((r) => [r.seq, r.detail]), [[1, 'line 0'], [2, 'line 1'], [3, 'line 2'], [4, 'after']]);
  const v2 = await store.verify('c1');
  assert.equal(v2.ok, true, JSON.stringify(v2));
  assert.equal(v2.headState, 'matches');
  store.close();
});

test('a new console\'s first audit record on a full disk: refused, and no head file of zeros is left to fail its chain closed later', async (t) => {
  const dir = smallDisk(t);
  if (!dir) return;
  const store = new FsAuditStore(dir);
  await store.append(rec('input')); // audit/ and audit-heads/ exist
  const filler = path.join(dir, 'filler');
  fillDisk(filler);
  await assert.rejects(store.append({ ...rec('session.attach'), console: 'c2' }), /data disk is full/);
  assert.equal(readFsAuditHead(dir, 'c2'), undefined);
  fs.rmSync(filler);
  await store.append({ ...rec('session.attach'), console: 'c2' });
  assert.equal((await store.verify('c2')).ok, true);
  store.close();
});

test('token store on a full disk: a token that cannot be written is refused with StorageFull and not created in memory either', async (t) => {
  const dir = smallDisk(t);
  if (!dir) return;
  const tokens = new FsTokenStore(dir);
  await tokens.create({ kind: 'user', name: 'alice' });
  const filler = path.join(dir, 'filler');
  fillDisk(filler);
  await assert.rejects(tokens.create({ kind: 'user', name: 'bob' }), (e: Error & { code?: string }) => e.code === 'CC_ERR_STORAGE_FULL');
  assert.deepEqual((await tokens.list()).map((x) => x.name), ['alice']);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('tokens')), ['tokens.json'], 'no temporary file left');
  fs.rmSync(filler);
  await tokens.create({ kind: 'user', name: 'bob' });
  assert.deepEqual((await tokens.list()).map((x) => x.name).sort(), ['alice', 'bob']);
});

// ------------------------------------------------------------------- torn tails and deletions
// (an ordinary disk: these write the files as a crash or an old cloud would have left them)

/** A store with records seq 1..n of console c1, closed; its file's lines. */
async function chain(n: number): Promise<{ dir: string; file: string; lines: string[] }> {
  const dir = tmpDir('torn');
  const s = new FsAuditStore(dir);
  for (let i = 0; i < n; i++) await s.append(rec('input', `line ${i}`));
  s.close();
  const file = path.join(dir, 'audit', 'c1.jsonl');
  return { dir, file, lines: fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}

test('verify: a torn last line (a crash mid-write) is intact with a note; the next append keeps a copy, cuts it off and takes its seq', async () => {
  const { dir, file, lines } = await chain(3);
  const torn = '{"time":1,"console":"c1","type":"input","seq":4,"prev":"ab';
  fs.appendFileSync(file, torn);
  const v = await verifyFsAudit(dir, 'c1');
  assert.equal(v.ok, true, JSON.stringify(v));
  assert.deepEqual(v.torn, { where: 'audit/c1.jsonl line 4', bytes: torn.length });
  assert.match(v.note ?? '', /last line .* is torn: an append that never completed .*never acknowledged/);
  const logged: string[] = [];
  dataDisk(dir).log = (l) => logged.push(l);
  const s = new FsAuditStore(dir);
  await s.append(rec('input', 'next'));
  s.close();
  const now = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  assert.deepEqual(now.slice(0, 3), lines);
  assert.equal(JSON.parse(now[3]).seq, 4);
  const copies = fs.readdirSync(path.join(dir, 'audit')).filter((f) => f.startsWith('c1.jsonl.torn-'));
  assert.equal(copies.length, 1);
  assert.equal(fs.readFileSync(path.join(dir, 'audit', copies[0]), 'utf8'), torn, 'the torn bytes are kept');
  assert.match(logged.join('\n'), /audit of c1: the last line of audit\/c1.jsonl was torn \(\d+ bytes .*cut off, a copy kept in audit\/c1.jsonl.torn-/);
  assert.equal((await verifyFsAudit(dir, 'c1')).ok, true);
});

test('verify tells a deletion from a torn tail: a record missing in the middle, and records cut off the end, are BROKEN', async () => {
  const mid = await chain(4);
  fs.writeFileSync(mid.file, [mid.lines[0], mid.lines[2], mid.lines[3]].map((l) => l + '\n').join(''));
  const v = await verifyFsAudit(mid.dir, 'c1');
  assert.equal(v.ok, false);
  assert.equal(v.broken?.problem, 'missing seq');
  assert.equal(v.torn, undefined);

  const end = await chain(4);
  fs.writeFileSync(end.file, end.lines.slice(0, 3).map((l) => l + '\n').join(''));
  const w = await verifyFsAudit(end.dir, 'c1');
  assert.equal(w.ok, false);
  assert.equal(w.headState, 'cut');
  assert.doesNotMatch(w.broken!.detail, /torn/);
  // ... and the store appends nothing over the skipped seq.
  const s = new FsAuditStore(end.dir);
  await assert.rejects(s.append(rec('input')), /the head proves seq 4, but audit\/c1.jsonl ends at seq 3: records were cut off/);
  s.close();
  assert.equal(fs.readFileSync(end.file, 'utf8').split('\n').filter(Boolean).length, 3);
});

test('a torn record the head was moved past (an unchecked short write): BROKEN, named as torn and not a deletion; reseal moves the head back and appends go on', async () => {
  const { dir, file, lines } = await chain(4);
  fs.writeFileSync(file, lines.slice(0, 3).map((l) => l + '\n').join('') + lines[3].slice(0, 40));
  const v = await verifyFsAudit(dir, 'c1');
  assert.equal(v.ok, false);
  assert.equal(v.headState, 'cut');
  assert.match(v.broken!.detail, /the last line \(audit\/c1.jsonl line 4, 40 bytes\) is torn.*not a deletion; cloudcons audit reseal c1 moves the head back to seq 3/);
  const s = new FsAuditStore(dir);
  const r = await s.reseal('c1', 'admin', Date.now());
  assert.equal(r.to.seq, 3);
  await s.append(rec('input', 'after'));
  const v2 = await s.verify('c1');
  assert.equal(v2.ok, true, JSON.stringify(v2));
  assert.deepEqual((await s.list('c1')).map((x) => x.seq), [1, 2, 3, 4, 5]);
  s.close();
});
