// A cloud outage longer than the relay's buffer: the oldest unsent output is dropped, and the log
// carries an explicit gap of exactly the lost byte count; everything else is stored byte-exact.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { cleanup, cloudcons, createToken, freePort, PtyPair, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);

test('relay buffer overflow during a cloud outage is stored as an exact gap, never silently', async () => {
  const dir = tmpDir('gap');
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  let { proc: cloud, url, adminToken } = await startCloud(dataDir, port);
  const relayTok = createToken(dataDir, 'relay', 'edge1');
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `consoles:\n  ser1: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--cloud', url, '--token', relayTok, '--max-buffer-bytes', '65536']);
  const device = new SerialPort({ path: pair.peer, baudRate: 115200 });
  const h = { authorization: `Bearer ${adminToken}` };
  const storedEnd = async () => {
    const r = await fetch(`${url}/v1/consoles/ser1/replay?from=0`, { headers: h });
    return r.ok ? { end: Number(r.headers.get('x-cloudcons-end')), bytes: Buffer.from(await r.arrayBuffer()) } : undefined;
  };
  const write = (b: Buffer) => new Promise<void>((res, rej) => device.write(b, (e) => (e ? rej(e) : device.drain(() => res()))));
  await relay.waitFor(/connected to/);

  const before = randomBytes(10_000);
  await write(before);
  await until('first part stored', async () => (await storedEnd())?.end === before.length);
  await cloud.kill('SIGKILL');
  const during = randomBytes(300_000);
  for (let i = 0; i < during.length; i += 10_000) await write(during.subarray(i, i + 10_000));
  await new Promise((r) => setTimeout(r, 500)); // let the relay read it all into its buffer
  ({ proc: cloud } = await startCloud(dataDir, port));
  const total = before.length + during.length;
  const s = await until('stored after the outage', async () => { const x = await storedEnd(); return x && x.end === total ? x : undefined; }, 20_000, 100);

  const held = s.bytes.length - before.length;
  assert.ok(held > 0 && held <= 65_536, `relay kept ${held} bytes, at most its buffer`);
  assert.ok(s.bytes.equals(Buffer.concat([before, during.subarray(during.length - held)])), 'what was kept is stored byte-exact, at the right place');
  const audit = (await (await fetch(`${url}/v1/consoles/ser1/audit`, { headers: h })).json()) as { records: { type: string; detail?: string; offset?: number }[] };
  const gaps = audit.records.filter((r) => r.type === 'output.gap');
  assert.equal(gaps.length, 1);
  assert.match(gaps[0].detail!, new RegExp(`^${during.length - held} bytes lost at offset ${before.length}: relay buffer full`));
  assert.match(relay.err, /connected to/);
  device.close();
});
