// The embedded cloud's data directory is its user's alone: under umask 000 every folder it makes
// is 0700 and every file 0600 (each store, the TLS files, the admin token), and a directory left
// readable by others is tightened at start. (This file's process has its own umask.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startCloudServer } from './node-server.ts';
import { selfSignedCert } from './tls.ts';
import { bootstrapAdmin } from '../../cli/run-cloud.ts';
import { encodeSegment, segmentKey, verifySegment } from '../../protocol/segment.ts';
import { cleanup, looseModes, tmpDir } from '../../test/helpers.ts';

after(cleanup);
process.umask(0);

test('under umask 000 the cloud writes only private folders (0700) and files (0600): every store, TLS, admin token', async () => {
  const data = path.join(tmpDir('private-data'), 'data');
  fs.mkdirSync(data, { recursive: true, mode: 0o700 });
  const cert = await selfSignedCert(data, '127.0.0.1');
  await bootstrapAdmin(data);
  const s = await startCloudServer({ dataDir: data, tls: cert, log: () => {} });
  const p = s.ports;
  for (let i = 0; i < 3; i++) await p.audit.append({ time: i, console: 'web01', type: 'input', user: 'alice' });
  await p.audit.append({ time: 9, console: '_cloud', type: 'auth.failure' });
  await p.hot.append('web01', 0, 1, Buffer.from('hello'));
  const seg = await encodeSegment('web01', [{ offset: 0, ts: Date.UTC(2026, 0, 1), data: Buffer.from('hello') }]);
  await p.segments.put(segmentKey(await verifySegment(seg)), seg);
  await p.tokens.create({ kind: 'user', name: 'bob', admin: false });
  await p.access.put({ rules: [] }, 0);
  await p.consoles.put({ name: 'web01', type: 'serial', state: 'up', since: 1, relay: 'edge1' });
  await s.close(); // writes consoles.json and the hot tail's files
  const made = fs.readdirSync(data).sort();
  for (const want of ['access.json', 'admin-token', 'audit', 'audit-heads', 'consoles.json', 'hot', 'segments', 'tls', 'tokens.json']) assert.ok(made.includes(want), `${want} in ${made}`);
  assert.ok(fs.readdirSync(path.join(data, 'segments', 'logs', 'web01', '2026', '01', '01')).length === 1);
  assert.deepEqual(looseModes(data), []);
});

test('a data directory left readable by others is tightened at start, and the log says so', async () => {
  const data = path.join(tmpDir('private-data'), 'data');
  fs.mkdirSync(path.join(data, 'audit'), { recursive: true, mode: 0o755 });
  fs.chmodSync(data, 0o755);
  fs.writeFileSync(path.join(data, 'audit', 'web01.jsonl'), '', { mode: 0o644 });
  fs.writeFileSync(path.join(data, 'tokens.json'), '[]', { mode: 0o644 });
  const lines: string[] = [];
  const s = await startCloudServer({ dataDir: data, log: (l) => lines.push(l) });
  await s.close();
  assert.deepEqual(looseModes(data), []);
  assert.ok(lines.some((l) => /^made 4 file\(s\) and folder\(s\) under .* private/.test(l)), lines.join('\n'));
});
