// Reload without dropping a console (issue 16, item 5): a real relay process on SIGHUP re-reads
// relay.yaml; added consoles open and become attachable on the same connection, removed ones close
// with what they captured uploaded, changed ones reopen, and the untouched ones are not touched: an
// exec console keeps its process (PID), a serial port (socat pty) stays open on the same fd, and
// output produced across the reload is stored byte-exact. A broken file changes nothing and is
// logged with every problem; ten SIGHUPs in a second coalesce; a config without consoles is allowed.
// `--check-config` checks without a cloud or token. The embedded cloud re-reads its TLS certificate.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { cleanup, cli, cloudcons, createToken, freePort, openPtyPeer, paceEmitter, serialRig, tmpDir, until, type Proc } from '../helpers.ts';
import { makeSelfSigned } from '../../cloud/server/tls.ts';
import { certFingerprint } from '../../protocol/tls.ts';

after(cleanup);

const pidOf = (p: Proc) => p.child.pid!;
/** A shell on the console's pty that writes its PID to `file`, then numbered lines, 50 a second. */
const ticker = (file: string) => `{ type: exec, command: [/bin/sh, -c, 'echo $$ > ${file}; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.02; done'] }`;
/** "tick 1\r\n" ... up to the last whole line, and checks that is exactly what `b` holds up to there. */
function ticksExact(b: Buffer): number {
  const s = b.toString();
  const n = (s.match(/tick (\d+)\r\n/g) ?? []).length;
  let want = '';
  for (let i = 1; i <= n; i++) want += `tick ${i}\r\n`;
  assert.equal(s.slice(0, want.length), want, 'the exec console\'s output is stored without a gap or a doubled line');
  return n;
}

async function rig(prefix: string) {
  const r = await serialRig(prefix, ['--segment-ms', '600000']);
  const cfgFile = path.join(r.dir, 'relay.yaml');
  const pid = (n: string) => Number(fs.readFileSync(path.join(r.dir, `${n}.pid`), 'utf8').trim());
  const view = async (n: string) => {
    const res = await fetch(`${r.url}/v1/consoles/${n}`, { headers: r.auth });
    return res.ok ? (await res.json()) as { state: string; since: number; reason?: string } : undefined;
  };
  const replay = async (n: string) => {
    const res = await fetch(`${r.url}/v1/consoles/${n}/replay?from=0&format=raw`, { headers: r.auth });
    return res.ok ? { end: Number(res.headers.get('x-cloudcons-end')), bytes: Buffer.from(await res.arrayBuffer()) } : undefined;
  };
  const write = (consoles: string) => fs.writeFileSync(cfgFile, `relay: { name: edge1 }\nconsoles:\n${consoles}`);
  /** SIGHUP, then the reload's log line (the `n`th reload line of this relay). */
  const hup = async (relay: Proc, n: number) => {
    relay.child.kill('SIGHUP');
    const re = /relay: (reloaded|reload refused)[^\n]*\n/g;
    await until(`reload ${n} logged`, () => (relay.err.match(re)?.length ?? 0) >= n, 20_000);
    return relay.err.match(re)![n - 1];
  };
  const serialFd = (relay: Proc) => {
    const dev = fs.realpathSync(r.pair.dev);
    const dir = `/proc/${pidOf(relay)}/fd`;
    return fs.readdirSync(dir).filter((fd) => { try { return fs.readlinkSync(path.join(dir, fd)) === dev; } catch { return false; } }).join(',');
  };
  return { ...r, cfgFile, pid, view, replay, write, hup, serialFd };
}

test('SIGHUP: added consoles open on the same connection, removed ones close with their output uploaded, changed ones reopen, untouched ones keep their process and port with no gap', { timeout: 180_000 }, async () => {
  const r = await rig('reload');
  const base = `  ser1: { type: serial, device: ${r.pair.dev}, baud: 115200 }\n  keep: ${ticker(path.join(r.dir, 'keep.pid'))}\n`;
  const held = (n: number) => `  held: { type: exec, command: [/bin/sh, -c, 'echo $$ > ${path.join(r.dir, 'held.pid')}; exec sleep ${n}'] }\n`;
  r.write(`${base}  chg1: { type: exec, command: [/bin/sh, -c, 'echo $$ > ${path.join(r.dir, 'chg1.pid')}; echo one; exec sleep 1000'] }\n  gone1: { type: exec, command: [/bin/sh, -c, 'echo gone-marker; exec sleep 1000'] }\n${held(1000)}`);
  const relay = r.startRelay();
  await r.relayUp(relay);
  await until('every console up in the cloud', async () => (await Promise.all(['keep', 'chg1', 'gone1', 'held'].map(r.view))).every((v) => v?.state === 'up'), 20_000);
  // `held` taken down by hand: changed by the reload, it stays down.
  assert.equal((await fetch(`${r.url}/v1/consoles/held/down`, { method: 'POST', headers: r.auth })).status, 200);
  await until('held down', async () => (await r.view('held'))?.state === 'down', 10_000);
  const heldPid = r.pid('held');
  await until('gone1 printed', async () => (await r.replay('gone1'))?.bytes.toString().includes('gone-marker'), 10_000);
  const keepPid = r.pid('keep'), chgPid = r.pid('chg1');
  const fd = r.serialFd(relay);
  assert.ok(fd, 'the relay holds the serial port open');
  const serSince = (await r.view('ser1'))!.since, keepSince = (await r.view('keep'))!.since;
  const connects = (relay.err.match(/connected to /g) ?? []).length;

  // The device talks all through the reload.
  const peer = openPtyPeer(r.pair.peer);
  const stream = Buffer.from(Array.from({ length: 4000 }, (_, i) => `serial line ${i} ${'x'.repeat(i % 37)}\r\n`).join(''));
  const dev = paceEmitter(peer, stream, 20_000);
  dev.run(true);
  await until('the device has sent some', () => dev.pos > 5000, 10_000);
  // gone1 removed, chg1 changed, new1 added (with a break sequence of its own), ser1 and keep as they were.
  r.write(`${base}  chg1: { type: exec, command: [/bin/sh, -c, 'echo $$ > ${path.join(r.dir, 'chg1.pid')}; echo two; exec sleep 1000'] }\n  new1: { type: exec, command: [/bin/sh, -c, 'echo new-console-here; exec sleep 1000'] }\n${held(1001)}`);
  const line = await r.hup(relay, 1);
  assert.match(line, /reloaded .*relay\.yaml: added new1; removed gone1; changed chg1, held; unchanged ser1, keep\n/);
  await until('the device has sent more after the reload', () => dev.pos > 20_000, 10_000);
  dev.stop();

  // new1: up in the cloud and its output stored, without a new connection.
  await until('new1 up in the cloud', async () => (await r.view('new1'))?.state === 'up', 15_000);
  await until('new1\'s output stored', async () => (await r.replay('new1'))?.bytes.toString().includes('new-console-here'), 10_000);
  // chg1: a new process with its new settings, its stream continued.
  await until('chg1 reopened', () => r.pid('chg1') !== chgPid, 10_000);
  await until('chg1\'s new output stored after its old', async () => /one\r\n[^]*two\r\n/.test((await r.replay('chg1'))?.bytes.toString() ?? ''), 10_000);
  // Untouched: same process, same port on the same fd, not down for a moment.
  assert.equal(r.pid('keep'), keepPid, 'the exec console\'s process keeps its PID');
  process.kill(keepPid, 0);
  assert.equal(r.serialFd(relay), fd, 'the serial port stays open on the same fd');
  assert.equal((await r.view('ser1'))!.since, serSince, 'ser1 was not down meanwhile');
  assert.equal((await r.view('keep'))!.since, keepSince, 'keep was not down meanwhile');
  assert.doesNotMatch(relay.err, /console (ser1|keep) down/);
  // Byte-exact across the reload: all the device sent, and keep's numbered lines.
  await until('the serial output stored byte-exact', async () => (await r.stored())?.bytes.equals(stream.subarray(0, dev.pos)), 20_000, 100);
  await until('keep ticked on after the reload', async () => ticksExact((await r.replay('keep'))!.bytes) > 200, 20_000, 200);
  // gone1: down in the cloud; what it captured sealed and uploaded, then the cloud no longer counts
  // it as published (an admin may free the name).
  await until('gone1 unpublished', () => /console gone1: removed; everything it captured is uploaded/.test(relay.err), 20_000);
  const g = (await r.view('gone1'))!;
  assert.equal(g.state, 'down');
  assert.match(g.reason ?? '', /removed from the relay config/);
  const segs: string[] = [];
  const walk = (d: string) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : segs.push(e.name); };
  walk(path.join(r.dataDir, 'segments', 'logs', 'gone1'));
  const stored = await r.replay('gone1');
  assert.ok(stored!.bytes.toString().includes('gone-marker'));
  assert.equal(Math.max(...segs.map((s) => Number(/^\d{16}-(\d{16})_/.exec(s)![1]))), stored!.end, 'everything gone1 captured is in uploaded segments');
  assert.deepEqual(fs.readdirSync(path.join(r.dir, 'spool', 'gone1')).filter((f) => f.endsWith('.seg')), [], 'no segment of gone1 waits in the spool');
  const rm = await fetch(`${r.url}/v1/consoles/gone1`, { method: 'DELETE', headers: r.auth });
  assert.equal(rm.status, 200, await rm.text());
  assert.equal((relay.err.match(/connected to /g) ?? []).length, connects, 'the relay did not reconnect');
  const h = (await r.view('held'))!;
  assert.equal(h.state, 'down');
  assert.match(h.reason ?? '', /^down by admin/);
  assert.equal(r.pid('held'), heldPid, 'held was not opened again');
  assert.ok(!relay.exited);
});

test('a console removed while the cloud is away: the relay stopped before its upload keeps it in the spool, and uploads it at its next start', { timeout: 120_000 }, async () => {
  const r = await rig('reload-orphan');
  const ser = `  ser1: { type: serial, device: ${r.pair.dev}, baud: 115200 }\n`;
  r.write(`${ser}  gone1: { type: exec, command: [/bin/sh, -c, 'echo orphan-marker; exec sleep 1000'] }\n`);
  let relay = r.startRelay();
  await r.relayUp(relay);
  await until('gone1 printed', async () => (await r.replay('gone1'))?.bytes.toString().includes('orphan-marker'), 15_000);
  await r.cloud.kill('SIGTERM'); // (stopped, not killed: its console registry is saved 200 ms after a change)
  r.write(ser);
  assert.match(await r.hup(relay, 1), /added none; removed gone1; changed none; unchanged ser1/);
  await relay.kill('SIGTERM');
  assert.match(relay.err, /stopping before everything removed consoles captured was uploaded: gone1 \(1 segments waiting\)/);
  await r.restartCloud();
  relay = r.startRelay();
  await relay.waitFor(/spool gone1: console gone1 is not in the config \(removed by a reload before its upload finished\): uploading the 1 segment\(s\)/);
  await relay.waitFor(/console gone1: removed; everything it captured is uploaded/, 20_000);
  const segs: string[] = [];
  const walk = (d: string) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : segs.push(e.name); };
  walk(path.join(r.dataDir, 'segments', 'logs', 'gone1'));
  const stored = (await r.replay('gone1'))!;
  assert.ok(stored.bytes.toString().includes('orphan-marker'));
  assert.equal(Math.max(...segs.map((x) => Number(/^\d{16}-(\d{16})_/.exec(x)![1]))), stored.end, 'what gone1 captured is in uploaded segments');
  assert.deepEqual(fs.readdirSync(path.join(r.dir, 'spool', 'gone1')).filter((f) => f.endsWith('.seg')), []);
  await r.relayUp(relay);
});

test('SIGHUP with a broken file changes nothing and logs every problem; ten SIGHUPs in a second coalesce; a config without consoles is allowed', { timeout: 180_000 }, async () => {
  const r = await rig('reload-bad');
  // `slow` ignores SIGHUP: closing it takes the exec driver's 2 s grace, so a reload that
  // reopens it runs while the storm's signals arrive.
  const slow = (n: number) => `  slow: { type: exec, command: [/bin/sh, -c, "trap '' HUP; exec sleep ${n}"] }\n`;
  const base = `  ser1: { type: serial, device: ${r.pair.dev}, baud: 115200 }\n  keep: ${ticker(path.join(r.dir, 'keep.pid'))}\n${slow(1000)}`;
  r.write(base);
  const relay = r.startRelay();
  await r.relayUp(relay);
  await until('keep up', async () => (await r.view('keep'))?.state === 'up', 15_000);
  const keepPid = r.pid('keep');
  const fd = r.serialFd(relay);

  // Three problems at once: every one in the line, nothing changed.
  r.write(`${base}  bad1: { type: serial, device: /dev/x, baud: fast }\n  bad2: { type: telnet }\n  bad3: { type: exec, command: x, colour: red }\n`);
  const refused = await r.hup(relay, 1);
  assert.match(refused, /reload refused, nothing changed \(the running config stays\): 3 problems: /);
  assert.match(refused, /console bad1: baud: must be one of 50\.\.4000000 \(got "fast"\)/);
  assert.match(refused, /console bad2: host: required for type telnet/);
  assert.match(refused, /console bad3: unknown field "colour"/);
  assert.equal(r.pid('keep'), keepPid);
  assert.equal(r.serialFd(relay), fd);
  assert.equal(await r.view('bad1'), undefined, 'nothing of the broken file was applied');

  // Ten SIGHUPs within a second, the file changed before them: one reload runs (2 s: it reopens
  // `slow`), exactly one more after it, which sees the file as it is; the relay lives on, nothing
  // is lost.
  const peer = openPtyPeer(r.pair.peer);
  const stream = Buffer.from(Array.from({ length: 3000 }, (_, i) => `storm ${i}\r\n`).join(''));
  const dev = paceEmitter(peer, stream, 10_000);
  dev.run(true);
  const stormed = `  ser1: { type: serial, device: ${r.pair.dev}, baud: 115200 }\n  keep: ${ticker(path.join(r.dir, 'keep.pid'))}\n${slow(1001)}  new1: { type: exec, command: [/bin/sh, -c, 'echo storm-added; exec sleep 1000'] }\n`;
  r.write(stormed);
  for (let i = 0; i < 10; i++) { relay.child.kill('SIGHUP'); await new Promise((res) => setTimeout(res, 50)); }
  await until('new1 up', async () => (await r.view('new1'))?.state === 'up', 15_000);
  await until('two reloads', () => (relay.err.match(/relay: reloaded [^\n]*\n/g)?.length ?? 0) >= 2, 15_000);
  await new Promise((res) => setTimeout(res, 1500)); // any reload still queued would be logged by now
  const reloads = relay.err.match(/relay: reloaded [^\n]*\n/g)!;
  assert.equal(reloads.length, 2, `ten SIGHUPs in a second while a reload runs: that one and one more\n${reloads.join('')}`);
  assert.match(reloads[0], /added new1; removed none; changed slow; unchanged ser1, keep\n/);
  assert.match(reloads[1], /added none; removed none; changed none; unchanged ser1, keep, slow, new1\n/);
  assert.ok(!relay.exited);
  assert.equal(r.pid('keep'), keepPid);
  dev.stop();
  await until('the serial output stored byte-exact', async () => (await r.stored())?.bytes.equals(stream.subarray(0, dev.pos)), 20_000, 100);

  // No consoles at all: allowed, with a warning; everything closes; adding them back works.
  const n = (relay.err.match(/relay: (reloaded|reload refused)/g) ?? []).length;
  fs.writeFileSync(r.cfgFile, 'relay: { name: edge1 }\nconsoles: {}\n');
  const none = await r.hup(relay, n + 1);
  assert.match(none, /added none; removed ser1, keep, slow, new1; changed none; unchanged none/);
  assert.match(relay.err, /warning: .*relay\.yaml: the config has no consoles: this relay holds none/);
  await until('keep\'s process ended', () => { try { process.kill(keepPid, 0); return false; } catch { return true; } }, 10_000);
  await until('ser1 down in the cloud', async () => (await r.view('ser1'))?.state === 'down', 10_000);
  assert.equal(r.serialFd(relay), '', 'the serial port is closed');
  r.write(base);
  await r.hup(relay, n + 2);
  await until('ser1 up again', async () => (await r.view('ser1'))?.state === 'up', 15_000);
  peer.write('back again\r\n');
  await until('output after re-adding stored', async () => (await r.stored())?.bytes.equals(Buffer.concat([stream.subarray(0, dev.pos), Buffer.from('back again\r\n')])), 15_000, 100);
  assert.ok(!relay.exited);
});

test('SIGHUP re-reads the token file: a rotated token is used on a new connection (make-before-break), so revoking the old one drops nothing; a broken token or CA file refuses the reload', { timeout: 120_000 }, async () => {
  const r = await rig('reload-token');
  const relay = r.startRelay();
  await r.relayUp(relay);
  const peer = openPtyPeer(r.pair.peer);
  peer.write('before\r\n');
  const fresh = createToken(r.dataDir, 'relay', 'edge1');
  fs.writeFileSync(r.tokenFile, `${fresh}\n`, { mode: 0o600 });
  assert.match(await r.hup(relay, 1), /unchanged ser1; the token changed: opening a new connection with it \(make-before-break/);
  await relay.waitFor(/moved to the new connection \(make-before-break\)/);
  // The old token revoked: its connection is gone already, so the relay stays connected.
  const { tokens } = await (await fetch(`${r.url}/v1/tokens`, { headers: r.auth })).json() as { tokens: { id: string; kind: string; name: string; created: number }[] };
  const old = tokens.filter((t) => t.kind === 'relay' && t.name === 'edge1').sort((a, b) => a.created - b.created)[0];
  assert.equal((await fetch(`${r.url}/v1/tokens/${old.id}`, { method: 'DELETE', headers: r.auth })).status, 200);
  await new Promise((res) => setTimeout(res, 1000));
  peer.write('after\r\n');
  await until('output after the rotation stored', async () => (await r.stored())?.bytes.toString() === 'before\r\nafter\r\n', 15_000, 100);
  assert.doesNotMatch(relay.err, /disconnected from cloud/);
  // Broken: an empty token file, and a CA file that is not there: one line with both, nothing changed.
  fs.writeFileSync(r.tokenFile, '\n', { mode: 0o600 });
  fs.writeFileSync(r.cfgFile, `relay: { name: edge1, cloud: { ca: no-such-ca.pem } }\nconsoles:\n  ser1: { type: serial, device: ${r.pair.dev}, baud: 115200 }\n  new1: { type: exec, command: /bin/true }\n`);
  const refused = await r.hup(relay, 2);
  assert.match(refused, /reload refused, nothing changed \(the running config stays\): 2 problems: token file .*relay-token is empty: .*; cannot read the CA file .*no-such-ca\.pem/);
  assert.equal(await r.view('new1'), undefined);
  // Uploads and the next connection still use the token in force.
  fs.writeFileSync(r.tokenFile, `${fresh}\n`, { mode: 0o600 });
  assert.ok(!relay.exited);
});

test('cloudcons relay --check-config: a good file gets a one-line summary (exit 0), a bad one every problem (exit 2); no cloud or token needed', async () => {
  const dir = tmpDir('checkcfg');
  const good = path.join(dir, 'good.yaml');
  fs.writeFileSync(good, 'relay: { name: edge9 }\nconsoles:\n  a: { type: exec, command: /bin/true }\n  b: { type: tcp, host: 10.0.0.5, port: 2001 }\n');
  const env = { CLOUDCONS_URL: '', CLOUDCONS_TOKEN_FILE: '', CLOUDCONS_RELAY_TOKEN: '', CREDENTIALS_DIRECTORY: '' };
  const ok = cli(['relay', '--check-config', good], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.toString(), `${good}: ok: relay edge9, 2 consoles: a (exec), b (tcp)\n`);
  assert.equal(ok.stderr, '');
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'relay: { name: edge9, cloud: { ca: missing-ca.pem } }\nconsoles:\n  a: { type: serial, baud: 7 }\n  b: { type: nope }\n');
  const no = cli(['relay', '--check-config', bad], env);
  assert.equal(no.code, 2);
  assert.equal(no.stdout.toString(), '');
  assert.match(no.stderr, /invalid config .*bad\.yaml/);
  assert.match(no.stderr, /console a: device: required for type serial/);
  assert.match(no.stderr, /console a: baud: must be one of 50\.\.4000000 \(got 7\)/);
  assert.match(no.stderr, /console b: type: must be one of serial, exec/);
  // The CA file the config names must be there (the relay reads it at start and at reload).
  fs.writeFileSync(bad, 'relay: { name: edge9, cloud: { ca: missing-ca.pem } }\nconsoles: {}\n');
  const ca = cli(['relay', '--check-config', bad], env);
  assert.equal(ca.code, 2);
  assert.match(ca.stderr, /relay: cloud: ca: cannot read the CA file .*missing-ca\.pem/);
  const empty = path.join(dir, 'empty.yaml');
  fs.writeFileSync(empty, 'consoles: {}\n');
  const e = cli(['relay', '--check-config', empty], env);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout.toString(), /: ok: relay \S+, 0 consoles\n$/);
  assert.match(e.stderr, /warning: .*the config has no consoles/);
});

test('the embedded cloud on SIGHUP serves a rotated TLS certificate to new connections, refuses a broken one keeping the old, and keeps running', { timeout: 60_000 }, async () => {
  const dir = tmpDir('cloud-hup');
  const certFile = path.join(dir, 'cert.pem'), keyFile = path.join(dir, 'key.pem');
  const a = await makeSelfSigned(['127.0.0.1']);
  const b = await makeSelfSigned(['127.0.0.1']);
  fs.writeFileSync(certFile, a.cert);
  fs.writeFileSync(keyFile, a.key);
  const port = await freePort();
  const cloud = cloudcons(['cloud', '--data', path.join(dir, 'data'), '--port', String(port), '--tls-cert', certFile, '--tls-key', keyFile]);
  await cloud.waitFor(/listening on https:/);
  const seen = () => new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => { resolve(`SHA256:${s.getPeerCertificate().fingerprint256}`); s.end(); });
    s.on('error', reject);
  });
  assert.equal(await seen(), certFingerprint(a.cert));
  const held = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  await new Promise((res) => held.once('secureConnect', res));
  fs.writeFileSync(certFile, b.cert);
  fs.writeFileSync(keyFile, b.key);
  cloud.child.kill('SIGHUP');
  await cloud.waitFor(/cloud: reload: TLS certificate .*cert\.pem loaded: new connections get SHA256:/);
  assert.match(cloud.err, /no access rules set \(every user may do everything\)/);
  assert.equal(await seen(), certFingerprint(b.cert), 'a new connection sees the new certificate');
  assert.ok(!held.destroyed, 'an open connection is not dropped');
  held.destroy();
  // A key that does not belong to the certificate: refused in one line, the served one stays.
  fs.writeFileSync(keyFile, a.key);
  cloud.child.kill('SIGHUP');
  await cloud.waitFor(/cloud: reload: TLS certificate NOT reloaded, the one in use stays \(SHA256:[^)]*\): cannot use the TLS certificate .*cert\.pem with the key .*key\.pem/);
  assert.equal(await seen(), certFingerprint(b.cert));
  assert.ok(!cloud.exited, 'the cloud keeps running');
});
