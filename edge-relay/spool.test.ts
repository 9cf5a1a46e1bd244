import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { bufferSource, readBlock, verifySegment, type Chunk } from '../protocol/segment.ts';
import { Spool, type SpoolOptions } from './spool.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
function tmp(): string { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-spool-')); dirs.push(d); return d; }
const quiet = { log: () => {} };

async function segmentBytes(file: string): Promise<{ start: number; end: number; data: Buffer; chunks: Chunk[]; gap?: unknown }> {
  const buf = fs.readFileSync(file);
  const f = await verifySegment(buf);
  const chunks: Chunk[] = [];
  for (let i = 0; i < f.blocks.length; i++) chunks.push(...(await readBlock(bufferSource(buf), f, i)));
  return { start: f.start, end: f.end, data: Buffer.concat(chunks.map((c) => c.data)), chunks, gap: f.gap };
}

test('appends get offsets, read back from the active log, and seal into a byte-exact segment', async () => {
  const sp = new Spool({ dir: tmp(), ...quiet });
  const c = sp.open('web01');
  const parts = [Buffer.from('login: '), randomBytes(5000), Buffer.from('\r\n$ ')];
  let ts = 1000;
  const offs = parts.map((p) => sp.append(c, p, ts++));
  assert.deepEqual(offs, [0, 7, 5007]);
  const all = Buffer.concat(parts);
  assert.ok(c.readActive(0, 1 << 20)!.data.equals(all));
  assert.ok(c.readActive(3, 10)!.data.equals(all.subarray(3, 13)));
  assert.ok(c.readActive(5000, 100)!.data.equals(all.subarray(5000)));
  assert.equal(c.readActive(all.length, 10), undefined);
  await sp.sealConsole(c);
  assert.equal(c.start, all.length);
  assert.equal(c.sealed.length, 1);
  const seg = await segmentBytes(c.sealed[0].file);
  assert.ok(seg.data.equals(all));
  assert.deepEqual(seg.chunks.map((x) => x.ts), [1000, 1001, 1002]);
  assert.equal(sp.append(c, Buffer.from('x'), ts), all.length, 'offsets continue after a seal');
  await sp.close();
});

test('a restarted spool recovers: torn tail cut off, interrupted seal finished, offsets continue', async () => {
  const dir = tmp();
  let sp = new Spool({ dir, ...quiet });
  let c = sp.open('c');
  sp.append(c, Buffer.from('aaaa'), 1);
  sp.append(c, Buffer.from('bbbb'), 2);
  await c.confirm(0);
  // Crash in the middle of sealing: the log was renamed, no segment written yet.
  fs.renameSync(path.join(dir, 'c', 'active.log'), path.join(dir, 'c', 'sealing-0.log'));
  fs.writeFileSync(path.join(dir, 'c', 'active.json'), JSON.stringify({ start: 8, confirmed: true }));
  fs.writeFileSync(path.join(dir, 'c', 'active.log'), '');
  fs.closeSync(fs.openSync(path.join(dir, 'c', 'junk.seg.tmp'), 'w'));
  // ...and a record torn in half in the new active log.
  const logs: string[] = [];
  sp = new Spool({ dir, log: (l) => logs.push(l) });
  c = sp.open('c');
  sp.append(c, Buffer.from('cccc'), 3);
  await sp.close();
  fs.appendFileSync(path.join(dir, 'c', 'active.log'), Buffer.from([0x43, 0x43, 0x44, 0x31, 9, 0, 0]));
  sp = new Spool({ dir, log: (l) => logs.push(l) });
  c = sp.open('c');
  await c.idle();
  assert.ok(logs.some((l) => /torn or corrupt/.test(l)), logs.join('\n'));
  assert.equal(c.next, 12);
  assert.ok(c.readActive(8, 100)!.data.equals(Buffer.from('cccc')));
  assert.equal(c.sealed.length, 1);
  assert.ok((await segmentBytes(c.sealed[0].file)).data.equals(Buffer.from('aaaabbbb')));
  assert.ok(!fs.readdirSync(path.join(dir, 'c')).some((f) => f.endsWith('.tmp') || f.startsWith('sealing')));
  await sp.close();
});

test('confirm moves provisional offsets onto the cloud stream; uploads wait for it', async () => {
  const sp = new Spool({ dir: tmp(), ...quiet });
  const c = sp.open('c');
  sp.append(c, Buffer.from('first'), 1);
  await sp.sealConsole(c);
  sp.append(c, Buffer.from('second'), 2);
  assert.equal(c.nextUpload(), undefined, 'nothing uploads before the cloud confirmed the offsets');
  assert.equal(await c.confirm(1000), 1005, 'live resumes after the sealed part');
  assert.equal(c.next, 1011);
  const s = c.nextUpload()!;
  assert.deepEqual([s.start, s.end], [1000, 1005]);
  const seg = await segmentBytes(s.file);
  assert.deepEqual([seg.start, seg.chunks[0].offset], [1000, 1000]);
  c.uploaded(s);
  assert.equal(c.nextUpload(), undefined);
  for (let i = 0; i < 100 && fs.existsSync(s.file); i++) await new Promise((r) => setTimeout(r, 10)); // unlinked in the thread pool
  assert.ok(!fs.existsSync(s.file), 'an uploaded segment leaves the disk');
  // Confirmed and empty but the cloud is ahead (the console moved relays): jump forward.
  await sp.sealConsole(c);
  c.uploaded(c.nextUpload()!);
  assert.equal(await c.confirm(5000), 5000);
  assert.equal(sp.append(c, Buffer.from('z'), 3), 5000);
  await sp.close();
});

test('past the cap the oldest segments become one exact gap record, newest data kept', async () => {
  const logs: string[] = [];
  const sp = new Spool({ dir: tmp(), capBytes: 40_000, log: (l) => logs.push(l) });
  const c = sp.open('c');
  await c.confirm(0);
  const payloads: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const p = randomBytes(10_000);
    payloads.push(p);
    sp.append(c, p, 100 + i);
    await sp.sealConsole(c);
  }
  await new Promise((r) => setTimeout(r, 50));
  await c.idle();
  assert.ok(sp.diskBytes <= 40_000, `disk ${sp.diskBytes}`);
  const gaps = c.sealed.filter((s) => s.gap);
  assert.equal(gaps.length, 1, 'adjacent losses merge into one gap');
  const g = await segmentBytes(gaps[0].file);
  const kept = c.sealed.filter((s) => !s.gap);
  assert.equal(g.start, 0);
  assert.equal(g.end, kept[0].start);
  assert.equal((g.gap as { bytes: number }).bytes, kept[0].start);
  assert.equal(kept.at(-1)!.end, 60_000);
  assert.ok((await segmentBytes(kept.at(-1)!.file)).data.equals(payloads[5]));
  assert.ok(logs.some((l) => /SPOOL FULL: console c lost 10000 bytes/.test(l)), logs.join('\n'));
  await sp.close();
});

test('a spool directory that cannot be created or written is a clear error', () => {
  const file = path.join(tmp(), 'plain-file');
  fs.writeFileSync(file, '');
  assert.throws(() => new Spool({ dir: path.join(file, 'spool'), ...quiet }), /spool directory .*plain-file\/spool cannot be used: ENOTDIR/);
});

/** A spool at `dir` with console `c`, confirmed at `cloudEnd`. */
async function confirmedSpool(dir: string, cloudEnd = 0) {
  const sp = new Spool({ dir, ...quiet });
  const c = sp.open('c');
  await c.confirm(cloudEnd);
  return { sp, c };
}

test('a crash after a seal renamed the log, before active.json: the stream continues after the sealing log, not at its start', async () => {
  const dir = tmp();
  let { sp, c } = await confirmedSpool(dir);
  sp.append(c, Buffer.from('aaaa'), 1);
  sp.append(c, Buffer.from('bbbb'), 2);
  await sp.close();
  // As the seal's first step left it: active.json still says 0.
  fs.renameSync(path.join(dir, 'c', 'active.log'), path.join(dir, 'c', 'sealing-0.log'));
  sp = new Spool({ dir, ...quiet });
  c = sp.open('c');
  assert.equal(c.next, 8);
  assert.equal(sp.append(c, Buffer.from('cc'), 3), 8);
  await c.idle();
  assert.deepEqual(c.sealed.map((s) => [s.start, s.end]), [[0, 8]]);
  await sp.close();
});

test('a crash after the segment was renamed into place, before its sealing log was removed: listed once', async () => {
  const dir = tmp();
  let { sp, c } = await confirmedSpool(dir);
  sp.append(c, Buffer.from('aaaa'), 1);
  fs.copyFileSync(path.join(dir, 'c', 'active.log'), path.join(dir, 'log.bak'));
  await sp.sealConsole(c);
  await sp.close();
  fs.copyFileSync(path.join(dir, 'log.bak'), path.join(dir, 'c', 'sealing-0.log'));
  sp = new Spool({ dir, ...quiet });
  c = sp.open('c');
  await c.idle();
  assert.deepEqual(c.sealed.map((s) => [s.start, s.end]), [[0, 4]], 'one segment, not the same file twice (the second upload would fail forever)');
  assert.ok(!fs.existsSync(path.join(dir, 'c', 'sealing-0.log')));
  assert.equal(c.next, 4);
  await sp.close();
});

test('a crash in dropOldest after the gap segment was written: the gap wins over the data it replaced', async () => {
  const dir = tmp();
  let { sp, c } = await confirmedSpool(dir);
  sp.append(c, randomBytes(1000), 1);
  await sp.sealConsole(c);
  const data = c.sealed[0].file;
  fs.copyFileSync(data, path.join(dir, 'seg.bak'));
  await c.dropOldest('test');
  await sp.close();
  fs.copyFileSync(path.join(dir, 'seg.bak'), data);
  sp = new Spool({ dir, ...quiet });
  c = sp.open('c');
  assert.deepEqual(c.sealed.map((s) => [s.start, s.end, s.gap]), [[0, 1000, true]]);
  assert.ok(!fs.existsSync(data));
  await sp.close();
});

test('active.json: two slots written in turn; a torn newer slot leaves the older state; the one-object format still reads', async () => {
  const dir = tmp();
  let { sp, c } = await confirmedSpool(dir, 100);
  sp.append(c, Buffer.from('abc'), 1);
  await sp.sealConsole(c); // state: start 103
  await sp.close();
  const file = path.join(dir, 'c', 'active.json');
  const buf = fs.readFileSync(file);
  assert.equal(buf.length, 256);
  const slots = [buf.subarray(0, 128).toString(), buf.subarray(128).toString()];
  const newer = slots.findIndex((s) => s.includes('"start":103'));
  assert.ok(newer >= 0 && slots[1 - newer].includes('"start":100'), slots.join('|'));
  buf[newer * 128 + 20] ^= 0xff; // torn mid-write
  fs.writeFileSync(file, buf);
  fs.rmSync(c.sealed[0]?.file ?? path.join(dir, 'none'), { force: true }); // uploaded: only the state tells
  sp = new Spool({ dir, ...quiet });
  c = sp.open('c');
  assert.equal(c.start, 100, 'the older slot');
  assert.equal(c.confirmed, true);
  await sp.close();
  fs.writeFileSync(file, JSON.stringify({ start: 7, confirmed: true }));
  sp = new Spool({ dir, ...quiet });
  c = sp.open('c');
  assert.equal(c.start, 7);
  await sp.close();
  assert.equal(fs.statSync(file).size, 256, 'rewritten in slots');
});

/** A tmpfs of `size` at a new directory, or the reason there cannot be one (needs root). */
function tmpfs(size: string): { dir: string; umount(): void } | string {
  const dir = tmp();
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  if (r.status !== 0) return `mount -t tmpfs failed (needs root): ${r.stderr?.toString().trim() || r.error?.message}`;
  return { dir, umount: () => { spawnSync('umount', ['-l', dir]); } };
}
const probe = tmpfs('64k');
const noTmpfs = typeof probe === 'string' ? probe : (probe.umount(), undefined);

/** Fills the filesystem at `dir`; returns the filler file. */
function fillUp(dir: string): string {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'a');
  try { for (const n of [65536, 4096, 512, 1]) { try { for (;;) fs.writeSync(fd, Buffer.alloc(n)); } catch { /* next size */ } } } finally { fs.closeSync(fd); }
  return file;
}

/** A confirmed spool (console `c`) on a fresh 1 MiB tmpfs, its log lines in `logs`; closed and
 *  unmounted after the test. */
async function spoolOnTmpfs(t: TestContext, opts: Partial<SpoolOptions>) {
  const m = tmpfs('1m') as { dir: string; umount(): void };
  const logs: string[] = [];
  const sp = new Spool({ dir: path.join(m.dir, 'spool'), ...opts, log: (l) => logs.push(l) });
  t.after(async () => { await sp.close(); m.umount(); });
  const c = sp.open('c');
  await c.confirm(0);
  return { m, logs, sp, c };
}

test('a full spool disk: output keeps its offsets, is read back from memory, and reaches the spool in order when space returns', { skip: noTmpfs }, async (t) => {
  const { m, logs, sp, c } = await spoolOnTmpfs(t, { segmentBytes: 4096 });
  const parts = Array.from({ length: 12 }, () => randomBytes(1500));
  for (const p of parts.slice(0, 3)) sp.append(c, p, 1); // the third starts a seal ...
  const filler = fillUp(m.dir); // ... whose segment the disk refuses
  let o = 4500;
  for (const [i, p] of parts.slice(3).entries()) { assert.equal(sp.append(c, p, 2 + i), o, 'offsets continue'); o += p.length; }
  sp.tick(); // seals and retries fail: nothing thrown
  await c.idle();
  assert.ok(c.heldBytes > 0, 'held in memory');
  assert.equal(c.sealed.length, 0);
  assert.ok(c.sealingBytes > 0 && !fs.readdirSync(c.dir).some((f) => f.endsWith('.tmp')), 'the failed seal is waiting for a retry and left no .tmp');
  assert.ok(c.readActive(9000, 100)!.data.equals(Buffer.concat(parts).subarray(9000, 9100)), 'read back from memory');
  assert.equal(logs.filter((l) => /SPOOL DISK FULL/.test(l)).length, 1, logs.join('\n'));
  for (let i = 0; i < 5; i++) sp.tick();
  assert.equal(logs.filter((l) => /SPOOL DISK FULL/.test(l)).length, 1, 'said once');
  fs.rmSync(filler);
  for (let i = 0; i < 50 && !logs.some((l) => /spool writable again/.test(l)); i++) { sp.tick(Date.now() + 60_000); await c.idle(); await new Promise((r) => setTimeout(r, 20)); }
  assert.ok(logs.some((l) => /spool writable again/.test(l)), logs.join('\n'));
  await sp.sealConsole(c);
  await c.idle();
  const got: Buffer[] = [];
  let at = 0;
  for (const s of c.sealed) { const seg = await segmentBytes(s.file); assert.equal(seg.start, at); at = seg.end; got.push(seg.data); }
  assert.ok(Buffer.concat(got).equals(Buffer.concat(parts)), 'the segments hold every byte, in order');
  assert.ok(!fs.readdirSync(c.dir).some((f) => f.endsWith('.tmp') || f.startsWith('sealing')));
});

test('a full spool disk past memoryBytes: the oldest held bytes become one exact gap segment once space returns', { skip: noTmpfs }, async (t) => {
  const { m, logs, sp, c } = await spoolOnTmpfs(t, { memoryBytes: 5000 });
  // The first record fills the log's first page exactly: a tmpfs takes no more after the filler.
  const parts = [randomBytes(4096 - 32), ...Array.from({ length: 9 }, () => randomBytes(1000))];
  sp.append(c, parts[0], 1);
  const filler = fillUp(m.dir);
  for (let i = 1; i < 10; i++) sp.append(c, parts[i], 1 + i);
  assert.equal(c.heldBytes, 5000);
  assert.deepEqual(c.lost, { start: 4064, end: 8064, t0: 2, t1: 5 });
  assert.equal(c.skip(5000), 8064, 'live output skips what is lost');
  fs.rmSync(filler);
  for (let i = 0; i < 50 && (c.lost || c.heldBytes); i++) { sp.tick(); await c.idle(); await new Promise((r) => setTimeout(r, 20)); }
  await sp.sealConsole(c);
  await c.idle();
  assert.deepEqual(c.sealed.map((s) => [s.start, s.end, s.gap]), [[0, 4064, false], [4064, 8064, true], [8064, 13_064, false]]);
  const g = await segmentBytes(c.sealed[1].file);
  assert.deepEqual(g.gap, { offset: 4064, bytes: 4000, t0: 2, t1: 5, reason: (g.gap as { reason: string }).reason });
  assert.ok((await segmentBytes(c.sealed[2].file)).data.equals(Buffer.concat(parts.slice(5))));
  assert.ok(logs.some((l) => /SPOOL FULL: console c lost 4000 bytes of output \(offsets 4064-8064/.test(l)), logs.join('\n'));
});

test('the cloud ahead of a spool with data pending (a relay died holding output that went live): held data keeps its offsets, new output continues at the cloud end', async () => {
  const { sp, c } = await confirmedSpool(tmp());
  sp.append(c, Buffer.from('aaaa'), 1);
  await sp.sealConsole(c);
  sp.append(c, Buffer.from('bb'), 2);
  assert.equal(await c.confirm(100), 100);
  assert.equal(sp.append(c, Buffer.from('c'), 3), 100, 'not at 6: the cloud has 6-100 and would drop it as a resend');
  await c.idle();
  assert.deepEqual(c.sealed.map((s) => [s.start, s.end]), [[0, 4], [4, 6]]);
  await sp.close();
});

/** The data of a console's sealed segments in order, checked contiguous from `from`. */
async function sealedData(c: { sealed: { file: string }[] }, from: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let at = from;
  for (const s of c.sealed) { const seg = await segmentBytes(s.file); assert.equal(seg.start, at, `segment ${s.file} continues at ${at}`); at = seg.end; got.push(seg.data); }
  return Buffer.concat(got);
}

test('a confirm that the full disk refuses partway moves nothing: the spool stays as it was, and a later confirm (or a restart) moves all of it', { skip: noTmpfs }, async (t) => {
  const m = tmpfs('1m') as { dir: string; umount(): void };
  const dir = path.join(m.dir, 'spool');
  let sp = new Spool({ dir, ...quiet });
  t.after(async () => { await sp.close(); m.umount(); });
  let c = sp.open('c');
  // A small segment the disk still takes moved, then a large one it does not.
  const parts = [randomBytes(10_000), randomBytes(300_000), randomBytes(5000)];
  for (const p of parts) { sp.append(c, p, 1); await sp.sealConsole(c); }
  const before = new Map(fs.readdirSync(c.dir).map((f) => [f, fs.readFileSync(path.join(c.dir, f))]));
  const filler = fillUp(m.dir);
  fs.truncateSync(filler, fs.statSync(filler).size - 60_000);
  await assert.rejects(c.confirm(5000), /nothing moved/);
  assert.equal(c.confirmed, false);
  assert.equal(c.nextUpload(), undefined);
  const after = fs.readdirSync(c.dir);
  assert.deepEqual(after.sort(), [...before.keys()].sort(), 'no segment moved, no copy left behind');
  for (const f of after) assert.ok(fs.readFileSync(path.join(c.dir, f)).equals(before.get(f)!), `${f} unchanged`);
  // A restart finds the spool as it was; with room again the move is whole.
  await sp.close();
  sp = new Spool({ dir, ...quiet });
  c = sp.open('c');
  assert.deepEqual(c.sealed.map((s) => s.start), [0, 10_000, 310_000]);
  fs.rmSync(filler);
  assert.equal(await c.confirm(5000), 5000 + 315_000);
  assert.ok((await sealedData(c, 5000)).equals(Buffer.concat(parts)));
  assert.ok(!fs.readdirSync(c.dir).some((f) => f.includes('.from-') || f.endsWith('.tmp')));
});

test('a new console sealing while its first confirm waits in the queue: the segment gets the cloud\'s offsets, not the provisional ones', async () => {
  const sp = new Spool({ dir: tmp(), ...quiet });
  const c = sp.open('c');
  const a = randomBytes(300_000), b = Buffer.from('after the welcome');
  sp.append(c, a, 1);
  const first = sp.sealConsole(c); // compresses over several turns: the confirm queues behind it
  const confirmed = c.confirm(1000);
  sp.append(c, b, 2);
  void sp.sealConsole(c); // the tick or segmentBytes, between the welcome and the confirm
  await first;
  assert.equal(await confirmed, 1000 + a.length);
  await sp.sealConsole(c);
  await c.idle();
  assert.deepEqual(c.sealed.map((s) => [s.start, s.end]), [[1000, 1000 + a.length], [1000 + a.length, 1000 + a.length + b.length]]);
  assert.ok((await sealedData(c, 1000)).equals(Buffer.concat([a, b])));
  await sp.close();
});

test('a kill -9 at each step of a new console\'s confirm: the restarted spool holds every byte once, at the cloud\'s offsets', async () => {
  const { CONFIRM_STEPS } = await import('./spool.ts');
  const child = path.join(tmp(), 'confirm-child.mts');
  fs.writeFileSync(child, `
    import fs from 'node:fs';
    import { randomBytes } from 'node:crypto';
    import { Spool } from ${JSON.stringify(path.resolve('edge-relay/spool.ts'))};
    const dir = process.argv[2];
    const sp = new Spool({ dir, log: () => {} });
    const c = sp.open('c');
    const all = [];
    for (let i = 0; i < 3; i++) { const p = randomBytes(20_000 + i); all.push(p); sp.append(c, p, 1 + i); await sp.sealConsole(c); }
    const tail = randomBytes(777); all.push(tail); sp.append(c, tail, 9);
    fs.writeFileSync(dir + '/expected', Buffer.concat(all));
    await c.confirm(5000);
  `);
  for (const step of CONFIRM_STEPS) {
    const dir = tmp();
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, dir], { env: { ...process.env, CLOUDCONS_TEST_CRASH_AT: `confirm:${step}` }, encoding: 'utf8' });
    assert.equal(r.signal, 'SIGKILL', `${step}: the child stopped at the step (${r.stderr})`);
    const expected = fs.readFileSync(path.join(dir, 'expected'));
    fs.rmSync(path.join(dir, 'expected'));
    const sp = new Spool({ dir, ...quiet });
    const c = sp.open('c');
    await c.idle();
    assert.equal(await c.confirm(5000), 5000 + expected.length - 777, `${step}: live resumes after the sealed part`);
    await sp.sealConsole(c);
    await c.idle();
    assert.ok((await sealedData(c, 5000)).equals(expected), `${step}: every byte once, from the cloud's end`);
    assert.ok(!fs.readdirSync(c.dir).some((f) => f.includes('.from-') || f.endsWith('.tmp')), step);
    await sp.close();
  }
});
