// Reconnects back off in every failure mode: a cloud that closes the link right after each welcome
// (as one that cannot take what the relay sends does) gets ever longer waits, not a dial every
// few hundred milliseconds; a connection that lasted starts the backoff over. A console whose
// confirm its spool cannot do (a full disk) is retried alone, without dropping the link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { Relay } from './relay.ts';
import { Spool } from './spool.ts';
import { parseRelayConfig } from './config.ts';
import { fillDisk, mountTmpfs, unmountAll } from '../test/tmpfs.ts';

test('a link that dies right after each welcome backs off like one that never opens', { timeout: 30_000 }, async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const dials: number[] = [];
  wss.on('connection', (ws) => {
    dials.push(Date.now());
    ws.on('message', () => { ws.send(JSON.stringify({ v: 1, t: 'welcome', ends: {} })); setTimeout(() => ws.close(1011, 'gone again'), 20); });
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-backoff-'));
  const logs: string[] = [];
  const { port } = wss.address() as { port: number };
  const relay = new Relay({ relay: { name: 'r1' }, consoles: {} }, {
    cloudUrl: `http://127.0.0.1:${port}`, token: 't', spoolDir: dir, minBackoffMs: 50, maxBackoffMs: 1600, log: (l) => logs.push(l),
  });
  t.after(async () => { await relay.stop(); wss.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  relay.start();
  await new Promise((r) => setTimeout(r, 5000));
  // Waits drawn from [0, 50 * 2^n] capped at 1.6 s: about 10 dials in 5 s; resetting after each
  // welcome (the old behaviour) dials every ~45 ms: about 75.
  assert.ok(dials.length >= 3 && dials.length <= 20, `${dials.length} dials in 5 s:\n${logs.join('\n')}`);
  assert.ok(logs.filter((l) => /closed again|disconnected/.test(l)).length <= 3, `said at the first and every 10th:\n${logs.join('\n')}`);
});

test('a new console whose spool disk is too full to move it onto the cloud\'s offsets is retried alone; the link stays up', { timeout: 30_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-confirm-'));
  const disk = path.join(root, 'disk');
  const why = mountTmpfs(disk, '1m');
  // Gated: a full disk is a small tmpfs, and mounting one needs root (the skip says why: mount's
  // own error). CI runs as root, so this runs there.
  if (why) { t.skip(why); return; }
  const spoolDir = path.join(disk, 'spool');
  // Console a has output from before the relay ever reached the cloud: provisional offsets.
  const pre = new Spool({ dir: spoolDir, log: () => {} });
  const a = pre.open('a');
  pre.append(a, randomBytes(300_000), Date.now());
  await pre.sealConsole(a);
  await pre.close();
  const filler = path.join(disk, 'filler');
  fillDisk(filler);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  let dials = 0;
  wss.on('connection', (ws) => {
    dials++;
    ws.on('message', (d) => { if (JSON.parse(d.toString()).t === 'hello') ws.send(JSON.stringify({ v: 1, t: 'welcome', ends: { a: 1000, b: 0 } })); });
  });
  const logs: string[] = [];
  const { port } = wss.address() as { port: number };
  const cfg = parseRelayConfig('relay: { name: r1 }\nconsoles:\n  a: { type: exec, command: "sleep 60" }\n  b: { type: exec, command: "sleep 60" }\n', 'relay.yaml');
  const relay = new Relay(cfg, { cloudUrl: `http://127.0.0.1:${port}`, token: 't', spoolDir, minBackoffMs: 50, maxBackoffMs: 400, log: (l) => logs.push(l) });
  t.after(async () => { await relay.stop(); wss.close(); unmountAll(); fs.rmSync(root, { recursive: true, force: true }); });
  relay.start();
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(ok(), `${what}:\n${logs.join('\n')}`);
  };
  await until('the move refused', () => logs.some((l) => /console a: cannot move .* nothing moved; its output waits in the spool; trying again/.test(l)));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(dials, 1, `one connection, kept:\n${logs.join('\n')}`);
  fs.rmSync(filler);
  await until('confirmed once there is room', () => logs.some((l) => /console a: its offsets are confirmed after \d+ retries/.test(l)));
  assert.deepEqual(fs.readdirSync(path.join(spoolDir, 'a')).filter((f) => f.endsWith('.seg')).map((f) => f.slice(0, 33)), ['0000000000001000-0000000000301000'], 'moved whole onto the cloud\'s offsets');
  assert.equal(dials, 1);
});
