// A cloud whose segment upload endpoint takes a request and never answers: the relay gives the
// request up after --upload-timeout-ms, says so, and tries again after its backoff (at most
// --upload-max-backoff-ms), instead of holding the console's uploads for the 60 s default.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cleanup, openPtyPeer, serialRig, until } from '../helpers.ts';

after(cleanup);

test('relay: an upload request that gets no answer is given up after --upload-timeout-ms and retried within --upload-max-backoff-ms', async (t) => {
  const seen: { at: number; url: string }[] = [];
  const silent = http.createServer((req) => { seen.push({ at: Date.now(), url: req.url ?? '' }); req.resume(); });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.after(() => { silent.closeAllConnections(); silent.close(); });
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;

  // The WebSocket goes to the real cloud; segment uploads (HTTP, CLOUD/v1/...) to the silent one.
  const rig = await serialRig('uptimeout');
  const relay = rig.startRelay(['--cloud', silentUrl, '--ws-url', `${rig.url.replace(/^http/, 'ws')}/v1/relay`,
    '--segment-ms', '100', '--upload-timeout-ms', '1500', '--upload-max-backoff-ms', '1000']);
  await rig.relayUp(relay);
  openPtyPeer(rig.pair.peer).write('some output to seal\r\n');
  await until('the first upload request', () => (seen.length ? true : undefined), 15_000);
  const failed = await relay.waitFor(/upload failed for ser1 \(1 segments, \d+ bytes waiting\): (.*); retrying in (\d+) ms/, 10_000);
  const gaveUpAfter = Date.now() - seen[0].at;
  assert.ok(gaveUpAfter >= 1400 && gaveUpAfter < 5000, `given up after ${gaveUpAfter} ms (timeout 1500 ms)`);
  assert.match(failed[1], /timeout|aborted/i, 'says it timed out');
  assert.ok(Number(failed[2]) <= 1000, `backoff ${failed[2]} ms, at most 1000`);
  await until('the retry', () => (seen.length >= 2 ? true : undefined), 5000);
  assert.match(seen[1].url, /^\/v1\/consoles\/ser1\/segments/);
  t.diagnostic(`gave up after ${gaveUpAfter} ms; retried ${seen[1].at - seen[0].at} ms after the first request`);
  await relay.kill();
});
