// The embedded cloud with its sealed segments in S3 (`cloudcons cloud --s3-bucket`), s3rver
// standing in for S3: a real relay process seals and uploads a serial console's output, the cloud
// process stores it in the bucket (not in DATA/segments) and replays it byte-exact, also after a
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
  await relay.waitFor(/console ser1 up/);
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
  assert.ok((await bucket.list('logs/ser1/')).some((o) => o.key.endsWith('.tri')), 'the grep index sits beside the segments');
  assert.ok(!fs.existsSync(path.join(rig.dataDir, 'segments')) || fs.readdirSync(path.join(rig.dataDir, 'segments')).length === 0, 'nothing in DATA/segments');

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
