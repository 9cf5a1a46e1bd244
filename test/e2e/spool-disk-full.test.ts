// The relay's spool on a small tmpfs, filled for 10 s while a console floods: the relay never exits,
// says so once, keeps streaming live, holds output in memory and writes it to the spool when space
// returns. Cloud up: the stored stream is byte-identical. Cloud down during the fill: identical too,
// within the memory buffer; with a tiny one, exactly one gap record of exactly the missing bytes and
// every other byte identical. Needs root (mount -t tmpfs); skipped with the reason otherwise.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, openPtyPeer, paceEmitter, serialRig, tmpDir, until, type Proc } from '../helpers.ts';

after(cleanup);

/** Why a tmpfs cannot be mounted here, or undefined if it can. */
function cannotMount(): string | undefined {
  const d = tmpDir('mnt-probe');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d]);
  if (r.status !== 0) return `mount -t tmpfs failed (needs root): ${r.stderr?.toString().trim() || r.error?.message}`;
  spawnSync('umount', [d]);
  return undefined;
}
const skip = cannotMount();

const RATE = 100_000; // bytes/s the device floods with
const FILL_MS = 10_000;

/** Keeps the filesystem at `dir` full (topping it up as the relay frees space) until stopped. */
function keepFull(dir: string) {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'a');
  const block = Buffer.alloc(64 * 1024);
  const top = () => { try { for (;;) { for (let b = block; b.length;) b = b.subarray(fs.writeSync(fd, b)); } } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e; } };
  const small = Buffer.alloc(512);
  const topSmall = () => { try { for (;;) fs.writeSync(fd, small); } catch { /* full */ } };
  top(); topSmall();
  const t = setInterval(() => { top(); topSmall(); }, 20);
  return { stop() { clearInterval(t); fs.closeSync(fd); fs.rmSync(file); } };
}

async function run(t: TestContext, opts: { cloudDown: boolean; memoryBytes?: number }) {
  const rig = await serialRig('spoolfull', ['--segment-bytes', '65536', '--segment-ms', '1000', '--reconnect-max-backoff-ms', '1000',
    ...(opts.memoryBytes ? ['--spool-memory-bytes', String(opts.memoryBytes)] : [])]);
  const mnt = path.join(rig.dir, 'spool');
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mnt]);
  assert.equal(m.status, 0, m.stderr?.toString());
  let relay: Proc | undefined;
  t.after(async () => { await relay?.kill('SIGKILL'); spawnSync('umount', ['-l', mnt]); });
  relay = rig.startRelay();
  await rig.relayUp(relay);
  const stream = Buffer.from(randomBytes(RATE * 20).toString('base64').slice(0, RATE * 20));
  const dev = paceEmitter(openPtyPeer(rig.pair.peer), stream, RATE);
  dev.run(true);
  await until('2 s of output stored', async () => ((await rig.stored())?.end ?? 0) >= 2 * RATE, 15_000, 100);
  if (opts.cloudDown) await rig.cloud.kill('SIGKILL');
  const full = keepFull(mnt);
  const fillFrom = dev.pos;
  const filledAt = Date.now();
  const env = { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: rig.adminToken };
  // While it lasts, `cloudcons ls` gives it as the up console's reason.
  if (!opts.cloudDown) await until('ls to say the spool disk is full', () => /ser1\s+up\s.*relay spool disk full since \S+: output held in memory and sent live/.test(cli(['ls'], env).stdout.toString()), FILL_MS - 2000, 200);
  await new Promise((r) => setTimeout(r, FILL_MS - (Date.now() - filledAt)));
  full.stop();
  const fillTo = dev.pos;
  if (opts.cloudDown) await rig.restartCloud();
  await until('the stream emitted', () => dev.pos >= stream.length, 60_000, 100);
  dev.stop();
  assert.ok(!relay.exited, `the relay never exits:\n${relay.err}`);
  assert.equal((relay.err.match(/SPOOL DISK FULL/g) ?? []).length, 1, `the full disk said once:\n${relay.err}`);
  await relay.waitFor(/spool writable again/, 20_000);
  await until('ls to drop the reason', () => { const o = cli(['ls'], env).stdout.toString(); return /ser1\s+up/.test(o) && !/spool disk full/.test(o); }, 10_000, 200);
  return { rig, relay, stream, fillFrom, fillTo };
}

type Rec = { type: string; detail?: string };
const auditOf = async (rig: { url: string; auth: Record<string, string> }) =>
  ((await (await fetch(`${rig.url}/v1/consoles/ser1/audit`, { headers: rig.auth })).json()) as { records: Rec[] }).records;

/** Waits until the spool has uploaded everything (only its state and an empty active log left). */
async function drained(dir: string): Promise<void> {
  const d = path.join(dir, 'spool', 'ser1');
  await until('the spool drained', () => fs.readdirSync(d).every((f) => f === 'active.json' || f === 'active.log') && fs.statSync(path.join(d, 'active.log')).size === 0, 30_000, 100);
}

test('spool disk full for 10 s with the cloud up: byte-identical, the relay stays up and says it once', { skip, timeout: 120_000 }, async (t) => {
  const { rig, stream } = await run(t, { cloudDown: false });
  const s = await until('everything stored', async () => { const x = await rig.stored(); return x && x.end >= stream.length ? x : undefined; }, 30_000, 200);
  assert.equal(s.end, stream.length);
  assert.ok(s.bytes.equals(stream), 'stored byte for byte');
  await drained(rig.dir);
  assert.deepEqual((await auditOf(rig)).filter((r) => r.type === 'output.gap' || r.type === 'output.conflict'), []);
});

test('spool disk full for 10 s with the cloud down: byte-identical within the memory buffer', { skip, timeout: 120_000 }, async (t) => {
  const { rig, stream, relay } = await run(t, { cloudDown: true });
  const s = await until('everything stored', async () => { const x = await rig.stored(); return x && x.end >= stream.length ? x : undefined; }, 60_000, 200);
  assert.equal(s.end, stream.length);
  assert.ok(s.bytes.equals(stream), 'stored byte for byte');
  await drained(rig.dir);
  assert.deepEqual((await auditOf(rig)).filter((r) => r.type === 'output.gap' || r.type === 'output.conflict'), []);
  assert.doesNotMatch(relay.err, /SPOOL FULL/);
});

test('spool disk full with the cloud down and a 64 KiB memory buffer: one exact gap record, every other byte identical', { skip, timeout: 120_000 }, async (t) => {
  const { rig, stream, relay, fillFrom, fillTo } = await run(t, { cloudDown: true, memoryBytes: 64 * 1024 });
  const gaps = await until('the gap record', async () => {
    const g = (await auditOf(rig)).filter((r) => r.type === 'output.gap');
    return g.length ? g : undefined;
  }, 60_000, 200);
  assert.equal(gaps.length, 1, JSON.stringify(gaps));
  const [, lost, at] = /^(\d+) bytes lost at offset (\d+)/.exec(gaps[0].detail!)!.map(Number);
  // What the 10 s brought, less what memory kept.
  assert.ok(at >= fillFrom - 70_000 && at + lost <= fillTo + 200_000 && lost > (fillTo - fillFrom) - 200_000, `lost ${lost} at ${at}, the fill took ${fillFrom}-${fillTo}`);
  const s = await until('all kept output stored', async () => { const x = await rig.stored(); return x && x.end >= stream.length && x.bytes.length === stream.length - lost ? x : undefined; }, 60_000, 200);
  assert.equal(s.end, stream.length);
  assert.ok(s.bytes.equals(Buffer.concat([stream.subarray(0, at), stream.subarray(at + lost)])), 'every byte but the gap stored, at its place');
  await drained(rig.dir);
  assert.match(relay.err, new RegExp(`SPOOL FULL: console ser1 lost ${lost} bytes of output \\(offsets ${at}-${at + lost},`));
});

test('spool disk full with the cloud up and a 64 KiB memory buffer: the gap covers bytes that went live, and they are kept', { skip, timeout: 120_000 }, async (t) => {
  const { rig, stream, relay } = await run(t, { cloudDown: false, memoryBytes: 64 * 1024 });
  // The relay did drop held output from its spool (a gap segment) ...
  assert.match(relay.err, /SPOOL FULL: console ser1 lost \d+ bytes of output/);
  // ... but the cloud had it live: nothing is lost, and no gap is reported.
  const s = await until('everything stored', async () => { const x = await rig.stored(); return x && x.end >= stream.length && x.bytes.length === stream.length ? x : undefined; }, 30_000, 200);
  assert.equal(s.end, stream.length);
  assert.ok(s.bytes.equals(stream), 'stored byte for byte');
  await drained(rig.dir);
  assert.deepEqual((await auditOf(rig)).filter((r) => r.type === 'output.gap' || r.type === 'output.conflict'), []);
});
