// The embedded cloud with its sealed segments in S3 (`cloudcons cloud --s3-bucket`), s3rver
// standing in for S3: a real relay process seals a serial console's output and uploads it straight
// to the bucket with presigned PUTs (the relay holds no AWS credentials), the cloud process commits
// it (not in DATA/segments) and replays it byte-exact, also after a
// restart; a bucket that does not exist stops the cloud with a clear message.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { S3SegmentStore } from '../../cloud/adapters/aws/s3-segment-store.ts';
import { closeAwsPeers, startS3rver } from '../aws-peers.ts';
import { cleanup, cloudcons, openPtyPeer, serialRig, tmpDir, until } from '../helpers.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

const awsEnv = (endpoint: string) => ({ AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });

test('cloud --s3-bucket: segments land in S3 under the prefix and replay byte-exact, also after a cloud restart', async () => {
  const { endpoint, client } = await startS3rver(['cc-segs']);
  const rig = await serialRig('s3seg', ['--segment-bytes', '8192', '--segment-ms', '500'], { args: ['--s3-bucket', 'cc-segs', '--s3-prefix', 'site1/'], env: awsEnv(endpoint) });
  assert.match(rig.cloud.out, /segments in S3 bucket cc-segs under site1\//);
  const relay = rig.startRelay();
  await rig.relayUp(relay);
  const peer = openPtyPeer(rig.pair.peer);
  const data = Buffer.from(crypto.randomBytes(48 * 1024).toString('base64')); // 64 KiB of text, ~8 segments
  for (let i = 0; i < data.length;) {
    try { i += peer.write(data.subarray(i, i + 1024)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; }
    await new Promise((r) => setTimeout(r, 5));
  }

  const bucket = new S3SegmentStore({ client, bucket: 'cc-segs', prefix: 'site1/' });
  // Everything sealed and uploaded: the segments in the bucket cover all of it.
  const segs = await until('all output in S3 segments', async () => {
    const l = (await bucket.list('logs/ser1/')).filter((o) => o.key.endsWith('.seg'));
    const end = Math.max(0, ...l.map((o) => Number(/\/\d{16}-(\d{16})_/.exec(o.key)?.[1] ?? 0)));
    return end >= data.length ? l : undefined;
  }, 30_000, 200);
  assert.ok(segs.length >= 4, `${segs.length} segments`);
  assert.match(relay.err + relay.out, /segment uploads go straight to the cloud's segment store \(presigned PUT\)/);
  assert.doesNotMatch(relay.err + relay.out, /UPLOAD REFUSED|upload failed/);
  assert.ok(!(await bucket.list('logs/ser1/')).some((o) => o.key.endsWith('.tri')), 'one-block segments get no grep index (one PUT per segment)');
  assert.ok(!fs.existsSync(path.join(rig.dataDir, 'segments')) || fs.readdirSync(path.join(rig.dataDir, 'segments')).length === 0, 'nothing in DATA/segments');

  // The upload API refuses what it must: other tokens, foreign keys, bodies that are not the
  // segment their key names (deleted from the bucket), commits of nothing.
  const api = (p: string, token: string, body: unknown) => fetch(`${rig.url}/v1/consoles/ser1/segments/${p}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const fake = 'logs/ser1/2026/11/25/0000000100000000-0000000100000010_1764028800000-1764028800001.seg';
  assert.equal((await api('upload-url', rig.adminToken, { key: fake, size: 10 })).status, 403, 'a user token may not upload');
  const wrong = await api('upload-url', rig.relayToken, { key: fake.replace('ser1', 'other'), size: 10 });
  assert.equal(wrong.status, 400);
  assert.match(await wrong.text(), /not a segment key of console ser1/);
  assert.equal((await api('upload-url', rig.relayToken, { key: fake, size: 1e12 })).status, 400, 'larger than --max-segment-bytes');
  const missing = await api('commit', rig.relayToken, { key: fake });
  assert.equal(missing.status, 409);
  assert.match(await missing.text(), /not in the store: upload it first/);
  const how = await (await api('upload-url', rig.relayToken, { key: fake, size: 10 })).json() as { mode: string; url: string; headers: Record<string, string> };
  assert.equal(how.mode, 'presigned');
  assert.equal((await fetch(how.url, { method: 'PUT', headers: how.headers, body: Buffer.from('not a seg!') })).status, 200);
  const bad = await api('commit', rig.relayToken, { key: fake });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /segment rejected/);
  assert.ok(!(await bucket.list('logs/ser1/2026/11/25/0000000100000000')).length, 'the bad object was deleted');

  const stored = async () => (await rig.stored())?.bytes;
  assert.ok((await until('replay of everything', async () => ((await stored())?.equals(data) ? true : undefined), 15_000)));
  await relay.kill();
  await rig.cloud.kill();
  fs.rmSync(path.join(rig.dataDir, 'hot'), { recursive: true, force: true }); // only S3 holds the output now
  await rig.restartCloud();
  const again = await stored();
  assert.ok(again?.equals(data), `after a restart, replay from S3 gives ${again?.length} of ${data.length} bytes`);
});

test('cloud --s3-bucket with a bucket that does not exist: a clear error, exit code non-zero', async () => {
  const { endpoint } = await startS3rver(['other']);
  // (Not spawnSync: s3rver answers from this process's event loop.)
  const p = cloudcons(['cloud', '--data', tmpDir('s3bad'), '--port', '0', '--s3-bucket', 'no-such-bucket'], awsEnv(endpoint));
  const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  assert.notEqual(code, 0);
  assert.match(p.err, /cannot use S3 bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+: NoSuchBucket/);
  assert.doesNotMatch(p.out, /listening on/);
});
