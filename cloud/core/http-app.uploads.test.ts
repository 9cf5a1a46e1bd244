// The HTTP API without a socket (app.request): who may upload is decided before a byte of the body
// is read, uploads in progress are bounded, and console rm / move are for admins.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHttpApp, type HttpOptions } from './http-app.ts';
import { encodeSegment } from '../../protocol/segment.ts';
import { cleanup } from '../../test/helpers.ts';
import { coreRig } from '../../test/core-rig.ts';

after(cleanup);

async function rig(opts: Partial<HttpOptions> = {}) {
  const r = await coreRig();
  const app = createHttpApp(r.core, r.ports, opts);
  const token = async (kind: 'user' | 'relay', name: string, admin = false) => (await r.ports.tokens.create({ kind, name, admin })).token;
  return { ...r, app, edge1: await token('relay', 'edge1'), evil: await token('relay', 'evil'), nobody: await token('user', 'nobody'), root: await token('user', 'root', true) };
}

/** A request body that counts what was read of it and never ends until `end()`. */
function heldBody(first = Buffer.alloc(64 * 1024, 1)) {
  let pulls = 0;
  let finish: (() => void) | undefined;
  const stream = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      if (pulls++ === 0) { ctl.enqueue(new Uint8Array(first)); return; }
      await new Promise<void>((r) => { finish = r; });
      ctl.close();
    },
  }, { highWaterMark: 0 });
  return { stream, get pulls() { return pulls; }, end: () => finish?.() };
}

const put = (app: Awaited<ReturnType<typeof rig>>['app'], token: string, body: ReadableStream<Uint8Array> | Buffer, headers: Record<string, string> = {}) =>
  app.request('/v1/consoles/web01/segments', { method: 'PUT', body, headers: { authorization: `Bearer ${token}`, ...headers }, duplex: 'half' } as RequestInit);

test('a segment upload from a user or another relay is refused before its body is read', async () => {
  const r = await rig();
  for (const [token, status, re] of [[r.nobody, 403, /only relay tokens may upload segments/], [r.evil, 403, /console web01 is published by relay edge1, not evil/]] as const) {
    const body = heldBody();
    const res = await put(r.app, token, body.stream, { 'content-length': String(16 * 1024 * 1024) });
    assert.equal(res.status, status);
    assert.match((await res.json() as { error: { message: string } }).error.message, re);
    assert.equal(body.pulls, 0, 'not a byte of the body was read');
  }
  for (const route of ['upload-url', 'commit']) {
    const body = heldBody(Buffer.from('{"key":'));
    const res = await r.app.request(`/v1/consoles/web01/segments/${route}`, { method: 'POST', body: body.stream, headers: { authorization: `Bearer ${r.nobody}`, 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 403, route);
    assert.equal(body.pulls, 0, `${route}: the body was not read`);
  }
});

test('a segment upload that says it is bigger than maxSegmentBytes is refused before its body is read', async () => {
  const r = await rig({ maxSegmentBytes: 1024 * 1024 });
  const body = heldBody();
  const res = await put(r.app, r.edge1, body.stream, { 'content-length': String(1024 * 1024 + 1) });
  assert.equal(res.status, 413);
  assert.match((await res.json() as { error: { message: string } }).error.message, /larger than this cloud accepts \(1048576 bytes, --max-segment-bytes\)/);
  assert.equal(body.pulls, 0);
});

test('segment uploads in progress are bounded per relay (maxUploadsPerRelay): the next is refused with 429 unread; a finished one frees its slot', async () => {
  const r = await rig({ maxUploadsPerRelay: 2 });
  const held = [heldBody(), heldBody()];
  const pending = held.map((b) => put(r.app, r.edge1, b.stream));
  await new Promise((res) => setTimeout(res, 50));
  const third = heldBody();
  const res = await put(r.app, r.edge1, third.stream);
  assert.equal(res.status, 429);
  assert.match((await res.json() as { error: { message: string } }).error.message, /relay edge1 has 2 segment uploads in progress, its limit \(maxUploadsPerRelay 2\)/);
  assert.equal(third.pulls, 0);
  for (const b of held) b.end();
  for (const p of pending) assert.equal((await p).status, 400, 'not a segment, but read and answered');
  const seg = await encodeSegment('web01', [{ offset: 0, ts: 1, data: Buffer.from('boot\n') }]);
  assert.equal((await put(r.app, r.edge1, seg)).status, 201);
});

test('console rm and move are for admins', async () => {
  const r = await rig();
  const call = (token: string, method: string, path: string, body?: unknown) =>
    r.app.request(path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.equal((await call(r.nobody, 'DELETE', '/v1/consoles/web01')).status, 403);
  assert.equal((await call(r.nobody, 'POST', '/v1/consoles/web01/move', { relay: 'evil' })).status, 403);
  assert.equal((await call(r.edge1, 'DELETE', '/v1/consoles/web01')).status, 403);
  assert.equal((await call(r.root, 'DELETE', '/v1/consoles/web01')).status, 409, 'its relay publishes it');
  assert.equal((await call(r.root, 'POST', '/v1/consoles/web01/move', {})).status, 400);
  const bad = await call(r.root, 'POST', '/v1/consoles/web01/move', { relay: 'relay:edge2' });
  assert.equal(bad.status, 400, 'no relay token could have that name');
  assert.match((await bad.json() as { error: { message: string } }).error.message, /^relay: /);
  const moved = await call(r.root, 'POST', '/v1/consoles/web01/move', { relay: 'Edge2' });
  assert.equal(moved.status, 200);
  assert.equal((await moved.json() as { relay: string }).relay, 'edge2', 'relay names are read in normal form, as tokens are');
  const rm = await call(r.root, 'DELETE', '/v1/consoles/web01');
  assert.equal(rm.status, 200);
  assert.equal((await call(r.root, 'GET', '/v1/consoles/web01')).status, 404);
});

test('bodies without a Content-Length are counted as the route reads them: over the limit is 413, within it is read as usual', async () => {
  const r = await rig({ maxBodyBytes: 1024, maxSegmentBytes: 4096 });
  const chunked = (parts: Buffer[]) => new ReadableStream<Uint8Array>({
    pull(ctl) { const p = parts.shift(); if (p) ctl.enqueue(new Uint8Array(p)); else ctl.close(); },
  });
  const req = (path: string, method: string, token: string, parts: Buffer[]) =>
    r.app.request(path, { method, body: chunked(parts), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
  const big = await req('/v1/access', 'PUT', r.root, [Buffer.from('{"doc":{"default":"rw","x":"'), Buffer.alloc(2000, 97), Buffer.from('"}}')]);
  assert.equal(big.status, 413);
  assert.match((await big.json() as { error: { message: string } }).error.message, /request body larger than 1024 bytes \(maxBodyBytes\) on PUT \/v1\/access/);
  const ok = await req('/v1/access', 'PUT', r.root, [Buffer.from('{"doc":'), Buffer.from('{"default":"rw"}}')]);
  assert.equal(ok.status, 200);
  const seg = await req('/v1/consoles/web01/segments', 'PUT', r.edge1, [Buffer.alloc(3000), Buffer.alloc(3000)]);
  assert.equal(seg.status, 413);
});
