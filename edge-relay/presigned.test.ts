// The headers of a presigned segment upload come from the cloud: the relay checks them before it
// sends. A content-length that is not the segment's size once left the PUT hanging for the full
// 60 s upload timeout (fetch waits for bytes that never come), holding that console's uploads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { presignedHeaders } from './relay.ts';

test('presigned upload headers: signed ones pass, a wrong size or connection header is refused at once', async () => {
  const signed = { 'if-none-match': '*', 'content-type': 'application/octet-stream', 'content-length': '100', 'x-amz-checksum-sha256': 'abc=' };
  assert.deepEqual(presignedHeaders(signed, 100), signed);
  assert.deepEqual(presignedHeaders(undefined, 5), {});
  assert.deepEqual(presignedHeaders(null, 5), {});
  assert.throws(() => presignedHeaders({ 'content-length': '1' }, 100), /expects "1" bytes, but the segment has 100/);
  assert.throws(() => presignedHeaders({ 'Content-Length': '101' }, 100), /expects "101" bytes/);
  assert.throws(() => presignedHeaders('x', 1), /headers of type string, not an object/);
  assert.throws(() => presignedHeaders([], 1), /type array/);
  assert.throws(() => presignedHeaders({ a: 1 }, 1), /header "a" is not a string/);
  assert.throws(() => presignedHeaders({ 'Transfer-Encoding': 'chunked' }, 1), /connection header "Transfer-Encoding"/);

  // The checked headers make a real PUT that completes. (The same PUT with a content-length of
  // 1 waits until its timeout under Node 20's fetch: the reason for the check.)
  const srv = http.createServer((req, res) => { let n = 0; req.on('data', (d: Buffer) => { n += d.length; }); req.on('end', () => res.end(String(n))); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
  try {
    const ok = await fetch(url, { method: 'PUT', headers: presignedHeaders(signed, 100), body: Buffer.alloc(100), signal: AbortSignal.timeout(5000) });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), '100');
  } finally {
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  }
});
