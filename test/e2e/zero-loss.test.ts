// The log pipeline loses nothing: a device emits a known pseudo-random byte stream at 115200 baud
// (11520 B/s) through a real pty while the cloud is killed -9 and restarted, the relay is killed -9
// (with output still unsent in its spool) and restarted, and the cloud is down for a minute.
// Afterwards the stored log equals the emitted stream byte for byte: nothing lost, nothing twice,
// all of it in sealed segments.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, openPtyPeer, paceEmitter, serialRig, until } from '../helpers.ts';
import { parseSegmentKey } from '../../protocol/segment.ts';

after(cleanup);

/** Outage length of the "cloud down for a minute" phase (CC_OUTAGE_MS, default 60000). */
const OUTAGE_MS = Number(process.env.CC_OUTAGE_MS ?? 60_000);
const RATE = 11_520;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('kill -9 of cloud and relay and a long cloud outage: the stored log equals the emitted stream', { timeout: OUTAGE_MS + 120_000 }, async () => {
  const rig = await serialRig('zeroloss', ['--segment-bytes', '16384', '--segment-ms', '1000']);
  const { dir, dataDir, stored } = rig;
  const startRelay = rig.startRelay;
  let relay = startRelay();
  await rig.relayUp(relay);
  const stream = randomBytes(Math.ceil(RATE * (OUTAGE_MS / 1000 + 20)));
  const dev = paceEmitter(openPtyPeer(rig.pair.peer), stream, RATE);

  dev.run(true);
  await sleep(2000);
  // 1. The cloud dies mid-stream and comes back.
  await rig.cloud.kill('SIGKILL');
  await sleep(3000);
  await rig.restartCloud();
  await sleep(2000);
  // 2. The cloud dies again; the relay spools; then the relay is killed -9 with unsent output in
  //    its spool. (The device pauses while no relay holds the line: opening a serial port flushes
  //    what the tty buffered, so bytes sent to a closed port are the device's loss, not ours.)
  await rig.cloud.kill('SIGKILL');
  await sleep(2000);
  dev.run(false);
  await sleep(300);
  await relay.kill('SIGKILL');
  const spooled = fs.readdirSync(path.join(dir, 'spool', 'ser1'));
  assert.ok(spooled.some((f) => f.endsWith('.seg')) || fs.statSync(path.join(dir, 'spool', 'ser1', 'active.log')).size > 0, `unsent output in the spool: ${spooled}`);
  relay = startRelay();
  await relay.waitFor(/console ser1 up/); // the cloud is down here
  dev.run(true);
  await sleep(2000);
  await rig.restartCloud();
  await sleep(2000);
  // 3. The cloud is down for a minute.
  await rig.cloud.kill('SIGKILL');
  await sleep(OUTAGE_MS);
  await rig.restartCloud();
  await sleep(2000);
  dev.run(false);
  dev.stop();
  const emitted = stream.subarray(0, dev.pos);
  assert.ok(emitted.length > RATE * (OUTAGE_MS / 1000 + 10) * 0.9, `emitted ${emitted.length} bytes`);

  const s = await until('everything stored', async () => { const x = await stored(); return x && x.end === emitted.length && x.bytes.length === emitted.length ? x : undefined; }, 30_000, 200);
  assert.equal(sha(s.bytes), sha(emitted), 'stored log equals the emitted stream byte for byte');
  // ... and once sealed, it is all in segments (the hot tail is only a cache).
  await until('sealed and uploaded', () => {
    const keys = listKeys(path.join(dataDir, 'segments', 'logs', 'ser1')).filter((k) => k.endsWith('.seg')).map((k) => parseSegmentKey(k)!).sort((a, b) => a.start - b.start);
    let end = 0;
    for (const k of keys) { assert.equal(k.start, end, `segments tile the stream: ${k.key}`); assert.ok(!k.gap, 'no gap'); end = k.end; }
    return end === emitted.length;
  }, 20_000, 200);
  // The relay lets go of a segment after the cloud's answer reaches it (and unlinks in the thread
  // pool), a moment after the object is visible in the store.
  await until('the spool let go of uploaded segments', () => !fs.readdirSync(path.join(dir, 'spool', 'ser1')).some((f) => f.endsWith('.seg')), 10_000, 100);
  assert.doesNotMatch(relay.err, /SPOOL FULL|SPOOL WRITE|UPLOAD REFUSED/);
});

function listKeys(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), `${rel}${e.name}/`); else out.push(`${rel}${e.name}`);
    }
  };
  walk(dir, 'logs/ser1/');
  return out;
}
