// A relay's clock steps back an hour while a console prints (NTP correcting it, an operator): the
// output after the step is stamped an hour earlier than the output before it, in later segments
// and inside the segment sealed across the step. `replay --since` still finds all of it (the
// cloud's time lookups never assume that times grow). Real cloud and relay processes; the step is
// the relay's test clock hook (CLOUDCONS_TEST_CLOCK_FILE).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, cloudcons, openPtyPeer, serialRig, until } from '../helpers.ts';

after(cleanup);

const HOUR = 3_600_000;

test('replay --since finds output stamped before and after the relay\'s clock stepped back an hour, byte for byte', async () => {
  const rig = await serialRig('clockstep');
  const clock = path.join(rig.dir, 'clock');
  fs.writeFileSync(clock, '0');
  const relay = cloudcons(['relay', '--config', path.join(rig.dir, 'relay.yaml'), '--spool', path.join(rig.dir, 'spool'), '--cloud', rig.url, '--token', rig.relayToken,
    '--segment-bytes', '4096', '--segment-ms', '400'], { CLOUDCONS_TEST_CLOCK_FILE: clock });
  await rig.relayUp(relay);
  const peer = openPtyPeer(rig.pair.peer);
  const write = async (b: Buffer) => {
    for (let i = 0; i < b.length;) {
      try { i += peer.write(b.subarray(i, i + 512)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const line = (n: number, tag: string) => Buffer.from(Array.from({ length: n }, (_, i) => `${tag} ${i} ${crypto.randomBytes(12).toString('hex')}\r\n`).join(''));
  const before = line(300, 'before'), after = line(300, 'after');
  await write(before);
  await until('the output before the step stored', async () => ((await rig.stored())?.end ?? 0) >= before.length ? true : undefined, 15_000);
  fs.writeFileSync(clock, String(-HOUR)); // the relay's clock steps back an hour
  await new Promise((r) => setTimeout(r, 300));
  await write(after);
  const all = Buffer.concat([before, after]);
  await until('everything sealed and uploaded', async () => {
    const files = fs.readdirSync(path.join(rig.dir, 'spool', 'ser1')).filter((f) => f.endsWith('.seg'));
    const s = await rig.stored();
    return s && s.end === all.length && !files.length ? true : undefined;
  }, 20_000, 100);

  // The stored chunk times really step back (so this tests what it says).
  const chunks = await (await fetch(`${rig.url}/v1/consoles/ser1/replay?from=0&format=chunks`, { headers: rig.auth })).text();
  const times = chunks.trim().split('\n').map((l) => JSON.parse(l) as { ts?: number }).filter((x) => x.ts !== undefined).map((x) => x.ts!);
  assert.ok(times.some((t, i) => i > 0 && t < times[i - 1] - HOUR / 2), `chunk times step back an hour: ${times.slice(0, 2)} ... ${times.slice(-2)}`);

  // The last 10 minutes by the real clock: the output before the step (stamped now) and, after it
  // in offset order, the output stamped an hour back.
  const env = { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: rig.adminToken };
  const r = cli(['replay', 'ser1', '--since', '10m', '--raw'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.equals(all), `replay --since 10m: ${r.stdout.length} of ${all.length} bytes`);
  await relay.kill();
});
