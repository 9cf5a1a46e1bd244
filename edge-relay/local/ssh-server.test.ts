// The SSH server against its seams (the relay's consoles, the local audit), with a real ssh2
// client: input reaches the console only after the audit recorded it, and not at all when the
// audit cannot record it (the client is told); a sign-in the audit cannot record is refused; a
// connection that does not sign in is closed after the login grace time.
// test/e2e/local-ssh.test.ts drives a real relay with the OpenSSH client.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { ConsoleInfo } from '../../protocol/messages.ts';
import { ConfigAccess } from './config-access.ts';
import { LocalLocks } from './local-lock.ts';
import { LocalSshServer, type LocalConsoles } from './ssh-server.ts';
import { loadHostKey } from './ssh-keys.ts';
import type { LocalAuditRecord } from './types.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-ssh-server-'));
const servers: LocalSshServer[] = [];
after(async () => { for (const s of servers) await s.close(); fs.rmSync(dir, { recursive: true, force: true }); });

const alice = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'alice' });

async function rig(opts: { failing?: (r: LocalAuditRecord) => boolean; loginGraceMs?: number } = {}) {
  const records: LocalAuditRecord[] = [];
  const written: { data: Buffer; recordsBefore: string[] }[] = [];
  const info: ConsoleInfo = { name: 'c1', type: 'exec', state: 'up', since: Date.now(), breaks: [{ id: '1', text: 'serial break' }], defaultBreak: '1' };
  const consoles: LocalConsoles = {
    relayName: () => 'edge1', list: () => [info], cloudConnected: () => false,
    tap: () => () => {},
    write: async (_c, data) => { written.push({ data, recordsBefore: records.map((r) => r.what) }); },
    sendBreak: async () => {}, resize: () => {},
  };
  const server = new LocalSshServer({
    host: '127.0.0.1', port: 0, hostKey: loadHostKey(path.join(dir, 'host_key')), maxAuthTries: 6, authPerSourcePerMinute: 100, maxSessions: 4,
    idleTimeoutMs: 0, maxBufferBytes: 1 << 20, loginGraceMs: opts.loginGraceMs ?? 60_000,
    access: new ConfigAccess({ alice: { keys: [alice.public], rw: ['*'] } }, path.join(dir, 'relay.yaml')),
    audit: { record: (r) => { if (opts.failing?.(r)) throw new Error('ENOSPC: no space left on device'); records.push(r); } },
    consoles, locks: new LocalLocks(fs.mkdtempSync(path.join(dir, 'spool-'))), log: () => {},
  });
  servers.push(server);
  const { port } = await server.listen();
  return { port, records, written };
}

/** Signs in as alice, runs `c1` on a pty, types `keys` once the session is read-write; resolves
 *  with the screen once `until` shows on it. */
function session(port: number, keys: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    let screen = '';
    c.on('error', reject);
    c.on('ready', () => c.exec('c1', { pty: { cols: 80, rows: 24 } }, (e, ch) => {
      if (e) return reject(e);
      let typed = false;
      ch.on('data', (d: Buffer) => {
        screen += d.toString();
        if (!typed && screen.includes('read-write')) { typed = true; ch.write(keys); }
        if (until.test(screen)) { c.end(); resolve(screen); }
      });
    }));
    c.connect({ host: '127.0.0.1', port, username: 'alice', privateKey: alice.private, hostVerifier: () => true });
  });
}

test('input reaches the console only after the local audit recorded it', { timeout: 15_000 }, async () => {
  const r = await rig();
  await session(r.port, 'ls\r', /read-write/);
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(Buffer.concat(r.written.map((w) => w.data)), Buffer.from('ls\r'));
  for (const w of r.written) assert.equal(w.recordsBefore.at(-1), 'input', 'the input record comes right before its write');
  assert.deepEqual(r.records.filter((x) => x.what === 'input').map((x) => x.data?.toString()).join(''), 'ls\r');
  assert.deepEqual([...new Set(r.records.map((x) => x.what))].slice(0, 3), ['signin', 'attach', 'lock']);
});

test('input the audit cannot record is not sent, and the user is told', { timeout: 15_000 }, async () => {
  const r = await rig({ failing: (x) => x.what === 'input' });
  const screen = await session(r.port, 'rm -rf /\r', /not sent: the relay cannot record input in its audit now/);
  assert.match(screen, /not sent/);
  assert.equal(r.written.length, 0);
});

test('a sign-in the audit cannot record is refused', { timeout: 15_000 }, async () => {
  const r = await rig({ failing: (x) => x.what === 'signin' });
  await assert.rejects(session(r.port, '', /never/), /All configured authentication methods failed/);
  assert.equal(r.records.filter((x) => x.what === 'signin').length, 0);
});

test('a connection that does not sign in is closed after the login grace time', { timeout: 10_000 }, async () => {
  const r = await rig({ loginGraceMs: 300 });
  const t0 = Date.now();
  const closed = await new Promise<number>((resolve) => {
    const s = net.connect(r.port, '127.0.0.1');
    s.on('data', () => {}); // the server's greeting; this client says nothing
    s.on('close', () => resolve(Date.now() - t0));
    s.on('error', () => {});
  });
  assert.ok(closed >= 250 && closed < 5000, `closed after ${closed} ms`);
});
