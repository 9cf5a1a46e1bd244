import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bufferSource, readBlock, verifySegment, type Chunk } from '../protocol/segment.ts';
import { Spool } from './spool.ts';

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
