// A relay with more consoles than one 32 KiB frame can describe announces them in several hellos,
// and the real cloud (which enforces the frame limit) registers every one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cli, cloudcons, createToken, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);

test('a relay with 600 consoles: all are registered (hello split under the frame limit)', async () => {
  const dir = tmpDir('many');
  const dataDir = path.join(dir, 'data');
  const { url, adminToken } = await startCloud(dataDir);
  const relayTok = createToken(dataDir, 'relay', 'big');
  const n = 600;
  const lines = Array.from({ length: n }, (_, i) => `  rack42-chassis-${String(i).padStart(3, '0')}: { type: serial, device: ${dir}/no-such-device-${i} }`);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: big }\nconsoles:\n${lines.join('\n')}\n`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', relayTok]);
  await relay.waitFor(/connected to/);
  const env = { CLOUDCONS_URL: url, CLOUDCONS_TOKEN: adminToken };
  const listed = await until('all consoles listed', () => {
    const r = cli(['ls', '--json'], env);
    const cs = JSON.parse(r.stdout.toString() || '[]') as { name: string; relay: string; state: string; reason?: string }[];
    return cs.length === n ? cs : undefined;
  }, 20_000, 250);
  assert.ok(listed.every((c) => c.relay === 'big' && c.state === 'down' && /no such file/.test(c.reason ?? '')), JSON.stringify(listed[0]));
  assert.doesNotMatch(relay.err, /TOO_LARGE|bad message/);
});
