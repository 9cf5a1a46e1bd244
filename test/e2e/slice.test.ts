// End to end through real processes: a serial device on a socat pty -> `cloudcons relay` ->
// `cloudcons cloud` -> `cloudcons attach` on a real pty. Covers typing and echo, spy, force and
// bump, audit under the right user, replay byte-exact after the cloud is killed -9 and output
// produced while it was down, and a device that vanishes and comes back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { cleanup, cli, cloudcons, createToken, freePort, Proc, PtyPair, startCloud, Terminal, tmpDir, until } from '../helpers.ts';

let dir: string, dataDir: string, port: number, url: string;
let cloud: Proc, relay: Proc, pair: PtyPair, device: SerialPort;
const tokens: Record<string, string> = {};
/** Every byte the device has written, in order: the stored log must equal it. */
let emitted = Buffer.alloc(0);
let received = Buffer.alloc(0);
const env = (user: string) => ({ CLOUDCONS_URL: url, CLOUDCONS_TOKEN: tokens[user] });

async function openDevice(): Promise<void> {
  device = new SerialPort({ path: pair.peer, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => device.open((e) => (e ? rej(e) : res())));
  device.on('data', (d: Buffer) => { received = Buffer.concat([received, d]); });
  device.on('error', () => { /* the pty vanishes on purpose in one test */ });
}
async function emit(data: Buffer): Promise<void> {
  emitted = Buffer.concat([emitted, data]);
  await new Promise<void>((res, rej) => device.write(data, (e) => (e ? rej(e) : device.drain(() => res()))));
}
function consoleState(): string | undefined {
  const r = cli(['ls', '--json'], env('alice'));
  return (JSON.parse(r.stdout.toString()) as { name: string; state: string }[]).find((c) => c.name === 'ser1')?.state;
}
function stored(): Buffer {
  const r = cli(['replay', 'ser1', '--from', '0'], env('alice'));
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

before(async () => {
  dir = tmpDir('e2e');
  dataDir = path.join(dir, 'data');
  port = await freePort();
  ({ proc: cloud, url } = await startCloud(dataDir, port));
  for (const u of ['alice', 'bob', 'carol']) tokens[u] = createToken(dataDir, 'user', u);
  tokens.relay = createToken(dataDir, 'relay', 'edge1');
  pair = await PtyPair.create(dir);
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `consoles:\n  ser1:\n    type: serial\n    device: ${pair.dev}\n    baud: 115200\n`);
  relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', tokens.relay]);
  await openDevice();
  await until('ser1 up', () => consoleState() === 'up');
});
after(cleanup);

test('ls shows the console with its relay, type and state; who and errors read well', () => {
  const r = cli(['ls'], env('alice'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /ser1\s+up\s+serial\s+edge1\s+-\s+0/);
  const missing = cli(['attach', 'web99'], env('alice'));
  assert.equal(missing.code, 2);
  assert.match(missing.stdout.toString() + missing.stderr, /console web99 not found; known: ser1/);
  const noLogin = cli(['ls'], { CLOUDCONS_URL: '', CLOUDCONS_TOKEN: '', HOME: dir, XDG_CONFIG_HOME: dir });
  assert.equal(noLogin.code, 3);
  assert.match(noLogin.stderr, /not logged in: run `cloudcons login/);
  const bad = cli(['ls'], { CLOUDCONS_URL: url, CLOUDCONS_TOKEN: 'ccu_wrongwrongwrongwrongwrongwrong' });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid or revoked token/);
});

test('typing reaches the device, output reaches writer and spy, force bumps the writer', async () => {
  const a = new Terminal(['attach', 'ser1'], env('alice'));
  await a.waitFor('[attached to ser1: read-write]');
  a.write('hello\r');
  await until('device got hello', () => received.includes('hello\r'));
  await emit(Buffer.from('hello from the device\r\n'));
  await a.waitFor('hello from the device');
  await emit(Buffer.from('bare-lf\nnext-line\r\n'));
  await a.waitFor('next-line');
  assert.ok(a.screen.includes('bare-lf\nnext-line'), 'the terminal gets the console\'s bytes as sent (no \\n -> \\r\\n)');

  const b = new Terminal(['attach', 'ser1'], env('bob'));
  await b.waitFor('[attached to ser1: spy, read-only (writer: alice)]');
  await emit(Buffer.from('seen by both\r\n'));
  await a.waitFor('seen by both');
  await b.waitFor('seen by both');
  for (const ch of 'bob-typed\r') { b.write(ch); await new Promise((r) => setTimeout(r, 30)); } // a person typing
  await b.waitFor('input not sent: you are a spy');
  await until('each keystroke audited', () => (cli(['audit', 'ser1', '--json'], env('alice')).stdout.toString().match(/input\.denied/g) ?? []).length >= 5);
  assert.equal(b.screen.split('input not sent: you are a spy').length, 2, 'the refusal is shown once, not per keystroke');

  const who = JSON.parse(cli(['who', 'ser1', '--json'], env('carol')).stdout.toString()) as { user: string; mode: string }[];
  assert.deepEqual(who.map((v) => `${v.user}:${v.mode}`).sort(), ['alice:rw', 'bob:spy']);

  const c = new Terminal(['attach', 'ser1', '-f'], env('carol'));
  await c.waitFor('[attached to ser1: read-write]');
  await a.waitFor('[bumped: carol forced the write lock; you are now a spy]');
  c.write('carol-typed\r');
  await until('device got carol', () => received.includes('carol-typed\r'));
  a.write('alice-late\r');
  await a.waitFor('input not sent');

  // escape commands: ^Ecw who, ^Ecs spy, ^Eca take back, ^Ec. disconnect
  c.write('\x05cw');
  await c.waitFor(/carol\s+rw/);
  c.write('\x05cs');
  await c.waitFor('[spy: read-only]');
  a.write('\x05ca');
  await a.waitFor('[read-write]');
  a.write('alice-again\r');
  await until('device got alice-again', () => received.includes('alice-again\r'));
  c.write('\x05cr');
  await c.waitFor('[replay 20 lines]');
  c.write('\x05cl0');
  await c.waitFor('[cloudcons: break not sent: you are a spy');
  a.write('\x05cl0'); // a serial break through the whole path
  await a.waitFor('[cloudcons: break 0 sent]');
  c.write('\x05c.');
  await c.waitFor('[disconnect]');
  a.kill(); b.kill(); c.kill();

  assert.ok(!received.includes('bob-typed'), 'a spy\'s input never reaches the device');
  assert.ok(!received.includes('alice-late'), 'a bumped writer\'s input never reaches the device');

  const audit = cli(['audit', 'ser1'], env('alice')).stdout.toString();
  assert.match(audit, /alice\s+session \S+\s+fence 1\s+input\s+"hello\^M"/);
  assert.match(audit, /carol\s+session \S+\s+fence 2\s+input\s+"carol-typed\^M"/);
  assert.match(audit, /bob\s+session \S+\s+fence -\s+input\.denied\s+"b"/);
  assert.match(audit, /carol .*lock\.force\s+bumped alice/);
  assert.match(audit, /alice .*fence 3\s+input\s+"alice-again\^M"/);
  assert.match(audit, /alice .*lock\.take/);
  assert.match(audit, /break\s+break 0/);
  assert.match(audit, /session\.attach/);
  assert.match(audit, /session\.detach/);
});

test('stored output is byte-exact across a cloud kill -9, including output made while it was down', async () => {
  const spy = new Terminal(['attach', 'ser1', '-s'], env('bob'));
  await spy.waitFor('[attached to ser1: spy, read-only]');
  await emit(Buffer.from('before-the-outage\r\n'));
  await spy.waitFor('before-the-outage');
  await emit(randomBytes(200_000));
  await until('cloud stored it', () => stored().length === emitted.length, 20_000, 200);
  // kill the cloud while output is in flight: 115200 baud-ish pacing, killed part-way through
  const flight = emit(randomBytes(300_000));
  await until('part stored', () => stored().length > emitted.length - 250_000, 20_000, 20);
  await cloud.kill('SIGKILL');
  await flight;
  await emit(randomBytes(100_000)); // the relay holds this until the cloud is back
  await emit(Buffer.from('\r\nduring-the-outage\r\n'));
  await spy.waitFor('[connection lost');
  ({ proc: cloud } = await startCloud(dataDir, port));
  // the attached CLI reconnects by itself and catches up from where it was: once, no gap
  await spy.waitFor('[reattached to ser1: spy, read-only]', 20_000);
  await spy.waitFor('during-the-outage', 20_000);
  assert.equal(spy.screen.split('during-the-outage').length, 2, 'shown exactly once');
  assert.equal(spy.screen.split('before-the-outage').length, 2, 'not shown again after reconnecting');
  spy.kill();
  await until('relay reconnected', () => consoleState() === 'up', 20_000, 200);
  await emit(randomBytes(50_000));
  await until('all stored', () => stored().length >= emitted.length, 20_000, 200);
  const got = stored();
  assert.equal(got.length, emitted.length, 'nothing lost or duplicated');
  assert.ok(got.equals(emitted), 'stored bytes equal what the device sent');
  const tail = cli(['replay', 'ser1', '--tail', '1'], env('alice'));
  assert.equal(tail.code, 0);
  const lastNl = emitted.lastIndexOf(0x0a, emitted.length - 2);
  assert.ok(tail.stdout.equals(emitted.subarray(lastNl + 1)), 'replay --tail 1 is the last line');
});

test('replay works while the relay is down; a vanished device goes down and comes back', async () => {
  await relay.kill('SIGKILL');
  await until('console down', () => consoleState() === 'down', 10_000, 100);
  assert.ok(stored().equals(emitted), 'replay works while the relay is down');
  relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', tokens.relay]);
  await until('console up again', () => consoleState() === 'up', 20_000, 100)
    .catch((e) => { throw new Error(`${e.message}\nrelay said:\n${relay.err}\ncloud said:\n${cloud.err.slice(-2000)}`); });

  await new Promise<void>((r) => device.close(() => r()));
  await pair.stop();
  await until('console down after unplug', () => consoleState() === 'down', 10_000, 100);
  const reason = (JSON.parse(cli(['ls', '--json'], env('alice')).stdout.toString()) as { name: string; reason?: string }[]).find((c) => c.name === 'ser1')?.reason;
  assert.ok(reason, 'down has a reason');
  await pair.start();
  await until('console up after replug', () => consoleState() === 'up', 30_000, 200);
  await openDevice();
  await emit(Buffer.from('back after replug\r\n'));
  await until('stored after replug', () => stored().length === emitted.length, 10_000, 100);
  assert.ok(stored().equals(emitted));
});
