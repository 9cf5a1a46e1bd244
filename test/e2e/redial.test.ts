// Relays re-dial before API Gateway's 2-hour connection limit, make-before-break: with the limit
// shortened to 1.5 s, a relay moves to a fresh connection several times while a device streams at
// 115200 baud and a user is attached; the stored log equals the emitted stream byte for byte, the
// attached user's live view equals it too, and the console never goes down.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cleanup, openPtyPeer, paceEmitter, serialRig, Terminal, until } from '../helpers.ts';

after(cleanup);

test('make-before-break re-dial every 1.5 s: nothing lost or doubled, live or stored; the console stays up', { timeout: 120_000 }, async () => {
  const rig = await serialRig('redial', ['--max-connection-ms', '1500']);
  const relay = rig.startRelay();
  await rig.relayUp(relay);
  const userTok = rig.adminToken;
  // A spy watching live (raw), through the real CLI on a pty.
  const term = new Terminal(['attach', 'ser1', '-s'], { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: userTok });
  await until('the spy attached', () => (/spy|attached/i.test(term.screen) ? true : undefined), 15_000);
  const stream = Buffer.from(randomBytes(11_520 * 7).toString('hex').slice(0, 11_520 * 7)); // 7 s of printable text
  const dev = paceEmitter(openPtyPeer(rig.pair.peer), stream, 11_520);
  dev.run(true);
  await until('the stream emitted', () => (dev.pos >= stream.length ? true : undefined), 30_000, 100);
  dev.stop();
  const s = await until('everything stored', async () => { const x = await rig.stored(); return x && x.end >= stream.length ? x : undefined; }, 30_000, 200);
  assert.equal(s.end, stream.length, 'nothing doubled');
  assert.ok(s.bytes.equals(stream), 'stored byte for byte');
  const moves = (relay.err.match(/moved to the new connection/g) ?? []).length;
  assert.ok(moves >= 3, `relay moved connections ${moves} times:\n${relay.err}`);
  assert.doesNotMatch(relay.err, /disconnected from cloud|console ser1 down/);
  await until('the spy saw it all, once, in order', () => (term.screen.replace(/\r?\n/g, '').includes(stream.toString()) ? true : undefined), 15_000);
  const audit = await (await fetch(`${rig.url}/v1/consoles/ser1/audit`, { headers: rig.auth })).json() as { records: { type: string }[] };
  assert.ok(!audit.records.some((r) => r.type === 'console.down'), 'no console.down while moving');
});
