// Reconnects back off in every failure mode: a cloud that closes the link right after each welcome
// (as one that cannot take what the relay sends does) gets ever longer waits, not a dial every
// few hundred milliseconds; a connection that lasted starts the backoff over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { Relay } from './relay.ts';

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
