// A relay whose sealed segments overlap output the cloud already stored (a relay restarted after a
// crash sealed the same output again, or another writer used those offsets): the cloud's 409 says
// what it holds, and the relay sends only the rest within seconds instead of retrying the segment
// forever with every later segment of the console held behind it. Where the stored bytes are
// other than the relay's, the cloud keeps what it stored first and the relay sets its segment
// aside (`.seg.conflict`, said loudly once) and goes on. Real cloud and relay processes; the
// cloud stores segments itself (PUT through the cloud) or in S3 (s3rver: presigned PUT + commit).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { encodeSegment, segmentKey, verifySegment, type Chunk } from '../../protocol/segment.ts';
import { closeAwsPeers, startS3rver } from '../aws-peers.ts';
import { cleanup, serialRig, until } from '../helpers.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

const awsEnv = (endpoint: string) => ({ AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });

/** Chunks of `data` from offset `start`, 100 bytes each, one ms apart from `t0`. */
const chunked = (data: Buffer, start: number, t0: number): Chunk[] => {
  const out: Chunk[] = [];
  for (let p = 0; p < data.length; p += 100) out.push({ offset: start + p, ts: t0 + p / 100, data: data.subarray(p, p + 100) });
  return out;
};
const text = (n: number) => Buffer.from(crypto.randomBytes(n).toString('base64').slice(0, n));

for (const store of ['cloud', 's3'] as const) {
  test(`${store === 's3' ? 'S3 (presigned PUT + commit)' : 'PUT through the cloud'}: a 409 for an overlapping segment is resolved within seconds: same bytes, the rest is sent; other bytes, the cloud's are kept and the segment set aside; later segments are not held`, async (t) => {
    const cloudExtra = store === 's3' ? { args: ['--s3-bucket', 'cc-overlap'], env: awsEnv((await startS3rver(['cc-overlap'])).endpoint) } : {};
    const rig = await serialRig(`overlap-${store}`, ['--segment-ms', '60000'], cloudExtra);
    // A first run registers ser1 (the cloud takes uploads only for a console its relay published).
    let relay = rig.startRelay();
    await rig.relayUp(relay);
    await relay.kill();

    const t0 = Date.now() - 60_000;
    const X = text(3000), Y = text(2000), Z = text(1000), W = text(500);
    // What the cloud stored before: [0, 1000) with the relay's bytes, and [3500, 4000) with other
    // bytes than the relay has there (another writer).
    const put = async (seg: Buffer) => {
      const r = await fetch(`${rig.url}/v1/consoles/ser1/segments`, { method: 'PUT', headers: { authorization: `Bearer ${rig.relayToken}` }, body: seg });
      assert.equal(r.status, 201, await r.text());
    };
    await put(await encodeSegment('ser1', chunked(X.subarray(0, 1000), 0, t0)));
    await put(await encodeSegment('ser1', chunked(W, 3500, t0 + 35)));

    // The relay's spool: three sealed segments, [0, 3000), [3000, 5000), [5000, 6000).
    const dir = path.join(rig.dir, 'spool', 'ser1');
    const A = await encodeSegment('ser1', chunked(X, 0, t0));
    const B = await encodeSegment('ser1', chunked(Y, 3000, t0 + 30));
    const C = await encodeSegment('ser1', chunked(Z, 5000, t0 + 50));
    for (const seg of [A, B, C]) fs.writeFileSync(path.join(dir, path.basename(segmentKey(await verifySegment(seg)))), seg, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'active.json'), JSON.stringify({ start: 6000, confirmed: true }), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'active.log'), '', { mode: 0o600 });

    const started = Date.now();
    relay = rig.startRelay();
    const want = Buffer.concat([X, Y.subarray(0, 500), W, Y.subarray(1000), Z]);
    const got = await until('the stored stream to reach 6000', async () => {
      const s = await rig.stored();
      return s && s.end === 6000 && s.bytes.length === 6000 ? s.bytes : undefined;
    }, 20_000, 100);
    const took = Date.now() - started;
    assert.ok(got.equals(want), 'stored stream: the relay\'s bytes, and the other writer\'s where the cloud had them first');
    assert.ok(took < 8000, `past the 409s in ${took} ms (no backoff: at most a relay start and a few uploads)`);
    t.diagnostic(`relay start to every byte stored: ${took} ms`);

    await until('the spool to be empty', () => (fs.readdirSync(dir).filter((f) => f.endsWith('.seg')).length === 0 ? true : undefined), 5000);
    const log = relay.out + relay.err;
    assert.match(log, /segment 0-3000 of ser1: the cloud already had 0-1000 with the same bytes; sent the rest \(1000-3000\)/);
    assert.equal(log.match(/UPLOAD CONFLICT/g)?.length, 1, log);
    assert.match(log, /UPLOAD CONFLICT for ser1: the cloud holds other output at 3500-4000 than this relay's segment 3000-5000 \(first difference at offset 3500/);
    assert.doesNotMatch(log, /UPLOAD REFUSED|upload failed/);
    // The relay's other bytes are kept for an operator, whole.
    const aside = fs.readdirSync(dir).filter((f) => f.endsWith('.seg.conflict'));
    assert.equal(aside.length, 1);
    assert.ok(fs.readFileSync(path.join(dir, aside[0])).equals(B));
    // Audited in the console's trail as a conflict; the same-bytes overlap is not.
    const r = await fetch(`${rig.url}/v1/consoles/ser1/audit`, { headers: rig.auth });
    const conflicts = ((await r.json()) as { records: { type: string; detail?: string }[] }).records.filter((x) => x.type === 'output.conflict');
    assert.equal(conflicts.length, 1, JSON.stringify(conflicts));
    assert.match(conflicts[0].detail!, /segment 3000-5000 of ser1 differs from the output stored at 3500-4000/);
    await relay.kill();
  });
}
