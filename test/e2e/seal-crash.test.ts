// A relay killed with kill -9 at each step inside a seal (driven by the test hook
// CLOUDCONS_TEST_CRASH_AT=seal:<step>, spool.ts SEAL_STEPS) and started again: the cloud ends up with
// every byte the console emitted exactly once, stored in segments that tile the stream (no gap, no
// overlap), no upload refused, the spool drained.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cloudcons, openPtyPeer, serialRig, until, type Proc } from '../helpers.ts';
import { SEAL_STEPS } from '../../edge-relay/spool.ts';

after(cleanup);

/** The data directory's stored segments of a console: [start, end, gap] in offset order. */
function storedSegments(dataDir: string, name: string): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      const m = /^(\d{16})-(\d{16})_\d+-\d+(\.gap)?\.seg$/.exec(e.name);
      if (m) out.push([+m[1], +m[2], !!m[3]]);
    }
  };
  walk(path.join(dataDir, 'segments', 'logs', name));
  return out.sort((a, b) => a[0] - b[0]);
}

test('kill -9 of the relay at every step of a seal: each restart uploads every byte exactly once', { timeout: 240_000 }, async () => {
  const rig = await serialRig('sealcrash', ['--segment-ms', '1000', '--reconnect-max-backoff-ms', '1000']);
  const spoolDir = path.join(rig.dir, 'spool', 'ser1');
  const relayWith = (env: NodeJS.ProcessEnv = {}): Proc => cloudcons(['relay', '--config', path.join(rig.dir, 'relay.yaml'), '--spool', path.join(rig.dir, 'spool'), '--cloud', rig.url, '--token', rig.relayToken, '--segment-ms', '1000', '--reconnect-max-backoff-ms', '1000'], env);
  const dev = openPtyPeer(rig.pair.peer);
  const emitted: Buffer[] = [];
  const emit = async (n: number) => {
    // Printable, so nothing on the line can be taken for a control character.
    const b = Buffer.from(randomBytes(n).toString('base64').slice(0, n));
    emitted.push(b);
    for (let p = 0; p < b.length;) {
      try { p += dev.write(b.subarray(p, p + 4096)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; await new Promise((r) => setTimeout(r, 2)); }
    }
  };
  const total = () => emitted.reduce((n, b) => n + b.length, 0);
  const drained = () => {
    const files = fs.readdirSync(spoolDir);
    return files.every((f) => f === 'active.json' || f === 'active.log') && fs.statSync(path.join(spoolDir, 'active.log')).size === 0;
  };
  /** Everything emitted so far stored, in segments, once, and nothing left in the spool. */
  const settled = async (what: string, relay: Proc) => {
    await until(`${what}: all ${total()} bytes stored in segments and the spool drained`, async () => {
      const s = await rig.stored();
      const segs = storedSegments(rig.dataDir, 'ser1');
      return s?.end === total() && segs.at(-1)?.[1] === total() && drained() ? true : undefined;
    }, 30_000, 100).catch((e: Error) => { throw new Error(`${e.message}\nspool: ${fs.readdirSync(spoolDir).join(' ')}\nsegments: ${JSON.stringify(storedSegments(rig.dataDir, 'ser1'))}\nrelay:\n${relay.err}`); });
  };

  let relay = relayWith();
  await rig.relayUp(relay);
  await emit(20_000);
  await settled('before the first crash', relay);
  for (const step of SEAL_STEPS) {
    await relay.kill('SIGTERM');
    relay = relayWith({ CLOUDCONS_TEST_CRASH_AT: `seal:${step}` });
    await rig.relayUp(relay);
    // All of it read at once; the seal comes due 0.75-1 s after its first byte, and dies there.
    await emit(100_000);
    await until(`the relay to kill itself at seal:${step}`, () => relay.exited, 15_000, 20);
    assert.equal(relay.child.signalCode, 'SIGKILL', `seal:${step}: the relay died by the hook:\n${relay.err}`);
    // Output right after the restart (a pty drops what is written while nobody has it open): the
    // spool must give it offsets after everything the killed relay had read.
    relay = relayWith();
    await relay.waitFor(/console ser1 up/);
    await emit(3_000);
    await rig.relayUp(relay);
    await settled(`after kill -9 at seal:${step}`, relay);
    await new Promise((r) => setTimeout(r, 1500)); // an upload of something listed twice would fail by now
    assert.doesNotMatch(relay.err, /UPLOAD REFUSED|upload failed/, `seal:${step}`);
  }
  await emit(5_000);
  await settled('at the end', relay);
  const s = (await rig.stored())!;
  const stream = Buffer.concat(emitted);
  assert.equal(s.end, stream.length, 'no offset reused or skipped');
  assert.ok(s.bytes.equals(stream), 'stored byte for byte');
  // Segments tile [0, end): every byte uploaded exactly once, no gap record.
  let at = 0;
  for (const [a, b, gap] of storedSegments(rig.dataDir, 'ser1')) {
    assert.equal(gap, false, `a gap segment at ${a}-${b}`);
    assert.equal(a, at, `segments tile the stream (one starts at ${a}, the one before ended at ${at})`);
    at = b;
  }
  assert.equal(at, stream.length);
  const audit = await (await fetch(`${rig.url}/v1/consoles/ser1/audit`, { headers: rig.auth })).json() as { records: { type: string; detail?: string }[] };
  assert.deepEqual(audit.records.filter((r) => r.type === 'output.conflict' || r.type === 'output.gap'), []);
  assert.ok(!relay.exited);
});
