// The cloud's data disk fills up under a flood of console output: a real cloud process with its
// data directory on a small tmpfs, a real relay (spool on another disk) and a socat pty. A filler
// file takes the last byte of the tmpfs mid-flood; the cloud is also killed -9 and started again
// while the disk is full. The cloud must never exit on its own, must say the disk is full (log
// and /healthz), refuse what needs storing with a clear 507, and resume by itself once the filler
// is gone: then the stored log equals what the device emitted byte for byte, and the audit chain
// verifies. Needs root (mount -t tmpfs): skipped, saying why, where it cannot mount.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { fillDisk, mountTmpfs, unmountAll } from '../tmpfs.ts';
import { cleanup, cli, cloudcons, createToken, freePort, openPtyPeer, paceEmitter, PtyPair, startCloud, tmpDir, until, type Proc } from '../helpers.ts';

const procs: Proc[] = [];
after(async () => {
  for (const p of procs) await p.kill('SIGKILL'); // the processes first: a busy mount cannot be unmounted
  unmountAll();
  await cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const RATE = 40_000; // bytes/s: a flood, about 3.5x a 115200-baud line

async function health(url: string): Promise<{ status: number; body: { ok: boolean; degraded?: string[] } }> {
  const r = await fetch(`${url}/healthz`);
  return { status: r.status, body: await r.json() as { ok: boolean; degraded?: string[] } };
}

/** The answer to a WebSocket upgrade of /v1/session: 'open', or the refusal's status and body. */
function sessionUpgrade(url: string, token: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/session`, { headers: { authorization: `Bearer ${token}` } });
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(`${res.statusCode} ${body.trim()}`));
    });
    ws.on('error', (e) => resolve(`error ${e.message}`));
  });
}

test('the cloud\'s data disk full mid-flood (and a kill -9 while full): it stays up, says so, resumes by itself; stored output byte-identical, audit intact', { timeout: 180_000 }, async (t) => {
  const dir = tmpDir('diskfull');
  const dataDir = path.join(dir, 'data');
  const why = mountTmpfs(dataDir, '6m');
  if (why) return t.skip(why);
  const port = await freePort();
  let cloud = await startCloud(dataDir, port);
  procs.push(cloud.proc);
  const { url, adminToken } = cloud;
  const auth = { authorization: `Bearer ${adminToken}` };
  const relayTok = createToken(dataDir, 'relay', 'edge1');
  const pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  ser1: { type: serial, device: ${pair.dev}, baud: 115200 }\n`);
  const relay: Proc = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', relayTok,
    '--segment-bytes', '65536', '--segment-ms', '1000', '--upload-max-backoff-ms', '2000', '--reconnect-max-backoff-ms', '1000']);
  procs.push(relay, pair.proc!);
  await relay.waitFor(/console ser1 up/);
  await until('the cloud to list ser1 up', async () => ((await (await fetch(`${url}/v1/consoles/ser1`, { headers: auth })).json()) as { state?: string }).state === 'up', 15_000);

  const stream = randomBytes(RATE * 20);
  const dev = paceEmitter(openPtyPeer(pair.peer), stream, RATE);
  dev.run(true);
  await sleep(2000);

  // The disk fills mid-flood.
  const filler = path.join(dataDir, 'filler');
  const filled = fillDisk(filler);
  await cloud.proc.waitFor(/DATA DISK FULL/, 10_000);
  const h = await until('/healthz to report the full disk', async () => { const x = await health(url); return x.status === 503 ? x : undefined; });
  assert.equal(h.body.ok, false);
  assert.match(h.body.degraded!.join('\n'), /data disk full .*free space on/);
  // `cloudcons ls` says it above the list (on stderr: --json output stays parseable).
  const ls = cli(['ls'], { CLOUDCONS_URL: url, CLOUDCONS_TOKEN: adminToken });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stderr, /cloudcons: the cloud is degraded: data disk full since .*free space on/);
  assert.match(ls.stdout.toString(), /ser1\s+up/);
  // What needs storing is refused, saying why.
  const tok = await fetch(`${url}/v1/tokens`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'user', name: 'bob' }) });
  assert.equal(tok.status, 507);
  assert.match(((await tok.json()) as { error: { message: string } }).error.message, /data disk is full .*retry once an operator has freed space/);
  // A sign-in is audited first: either its record still fits in the audit file's last page, or
  // the sign-in is refused, saying why.
  assert.match(await sessionUpgrade(url, adminToken), /^open$|^507 .*data disk is full/);
  await sleep(2000);
  assert.ok(!cloud.proc.exited, `the cloud exited with the disk full: ${cloud.proc.err.slice(-2000)}`);

  // Killed and started again with the disk still full: it starts, and says so.
  await cloud.proc.kill('SIGKILL');
  cloud = await startCloud(dataDir, port);
  procs.push(cloud.proc);
  await cloud.proc.waitFor(/DATA DISK FULL: .*at start/, 10_000);
  assert.equal((await health(url)).status, 503);
  await sleep(3000);
  assert.ok(!cloud.proc.exited, `the restarted cloud exited with the disk full: ${cloud.proc.err.slice(-2000)}`);
  assert.equal(cloud.proc.err.match(/DATA DISK FULL/g)?.length, 1, `the full disk said once: ${cloud.proc.err}`);

  // Space returns: the cloud resumes by itself.
  fs.rmSync(filler);
  await cloud.proc.waitFor(/has room again/, 10_000);
  assert.equal((await health(url)).status, 200);
  await sleep(2000);
  dev.run(false);
  dev.stop();
  const emitted = stream.subarray(0, dev.pos);
  assert.ok(emitted.length > RATE * 8, `emitted ${emitted.length} bytes`);

  const stored = await until('everything stored', async () => {
    const r = await fetch(`${url}/v1/consoles/ser1/replay?from=0&format=raw`, { headers: auth });
    if (!r.ok) return undefined;
    const s = { end: Number(r.headers.get('x-cloudcons-end')), bytes: Buffer.from(await r.arrayBuffer()) };
    return s.end === emitted.length && s.bytes.length === emitted.length ? s : undefined;
  }, 60_000, 250);
  assert.equal(sha(stored.bytes), sha(emitted), 'stored log equals the emitted stream byte for byte');
  assert.ok(!cloud.proc.exited, 'the cloud is still up');
  assert.doesNotMatch(cloud.proc.err, /uncaught|unhandled/i);

  const v = cli(['audit', 'verify', '--data', dataDir]);
  assert.equal(v.code, 0, `audit verify: ${v.stdout}${v.stderr}`);
  assert.match(v.stderr, /all intact/);
  console.log(`# disk full mid-flood: filler ${filled} bytes, ${emitted.length} bytes emitted and stored byte-identical; ${v.stdout.toString().trim().split('\n').length} chain(s) intact`);
});
