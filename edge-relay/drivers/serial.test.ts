// SerialDriver against real ptys made by socat: `dev` is what the driver opens, `peer` plays the
// device on the other end of the line.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SerialDriver } from './serial.ts';
import type { SerialConsoleConfig } from '../config.ts';
import { cleanup, openPtyPeer, PtyPair } from '../../test/helpers.ts';

after(cleanup);

/** A socat pty pair linked at <dir>/dev and <dir>/peer, stopped by cleanup(). */
async function startSocat(_t: TestContext, dir: string): Promise<PtyPair> { return PtyPair.create(dir); }

/** The device end: collects what the driver sent, writes what the device "says". */
function openPeer(_t: TestContext, file: string) { return openPtyPeer(file); }

function tmp(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serial-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function cfg(device: string, over: Partial<SerialConsoleConfig> = {}): SerialConsoleConfig {
  return { type: 'serial', device, baud: 9600, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none', breakDelayMs: 250, ...over };
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens a driver, recording data and close reasons; closed in test cleanup. */
async function openDriver(t: TestContext, driver: SerialDriver) {
  const data: Buffer[] = [];
  const closes: string[] = [];
  await driver.open({ onData: (d) => data.push(d), onClose: (r) => closes.push(r) });
  t.after(() => driver.close());
  return { data: () => Buffer.concat(data), closes };
}

const allBytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256));

test('bytes flow both ways, all 256 byte values intact', async (t) => {
  const pair = await startSocat(t, tmp(t));
  const driver = new SerialDriver(cfg(pair.dev, { baud: 115200 }));
  const got = await openDriver(t, driver);
  const peer = openPeer(t, pair.peer);

  await driver.write(allBytes);
  await until('peer to receive 1024 bytes', () => peer.received().length >= allBytes.length);
  assert.deepEqual(peer.received(), allBytes);

  peer.write(allBytes);
  await until('driver to receive 1024 bytes', () => got.data().length >= allBytes.length);
  assert.deepEqual(got.data(), allBytes);
  assert.deepEqual(got.closes, []);
});

/** A device end that reads only once told to, a few KiB per millisecond: a pty and socat buffer
 *  far less than a megabyte, so the driver's writes meet EAGAIN and must wait for writable. */
function openSlowPeer(t: TestContext, file: string) {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  const chunks: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  t.after(() => { clearInterval(timer); fs.closeSync(fd); });
  return {
    received: () => Buffer.concat(chunks),
    write: (b: Buffer) => fs.writeSync(fd, b),
    readSlowly(bytesPerTick: number) {
      timer = setInterval(() => {
        const b = Buffer.alloc(bytesPerTick);
        try { chunks.push(b.subarray(0, fs.readSync(fd, b))); } catch { /* EAGAIN: nothing yet */ }
      }, 1);
    },
  };
}

test('a 1 MB write arrives intact and in order at a slow reader', async (t) => {
  const pair = await startSocat(t, tmp(t));
  const driver = new SerialDriver(cfg(pair.dev, { baud: 115200 }));
  const got = await openDriver(t, driver);
  const peer = openSlowPeer(t, pair.peer);

  const big = crypto.randomBytes(1 << 20);
  let written = false;
  const writing = driver.write(big).then(() => { written = true; });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(written, false, 'the peer reads nothing yet and a pty cannot take 1 MB at once');

  peer.readSlowly(8 * 1024);
  await writing;
  await until('peer to receive 1 MB', () => peer.received().length >= big.length, 10_000);
  assert.equal(peer.received().length, big.length);
  assert.ok(peer.received().equals(big), 'bytes arrived intact and in order');
  assert.deepEqual(got.closes, []);
});

test('output held by XOFF waits without blocking input; XON lets it through', async (t) => {
  // (A slow reader cannot show this with socat: socat itself blocks writing to the full peer pty
  // and stops relaying the other way. XOFF stops output inside the driver's own tty.)
  const pair = await startSocat(t, tmp(t));
  const driver = new SerialDriver(cfg(pair.dev, { baud: 115200, flowControl: 'xonxoff' }));
  const got = await openDriver(t, driver);
  const peer = openSlowPeer(t, pair.peer);
  peer.write(Buffer.from([0x13])); // XOFF
  await new Promise((r) => setTimeout(r, 50));

  const data = crypto.randomBytes(64 * 1024);
  let written = false;
  const writing = driver.write(data).then(() => { written = true; });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(written, false, 'output is stopped');
  // The write waits for writable; the device's output must still come through (the driver
  // polls for readable and writable together).
  peer.write(Buffer.from('still reading'));
  await until('device output while output is stopped', () => got.data().toString() === 'still reading');
  assert.equal(written, false);

  peer.write(Buffer.from([0x11])); // XON
  peer.readSlowly(8 * 1024);
  await writing;
  await until('peer to receive 64 KiB', () => peer.received().length >= data.length);
  assert.ok(peer.received().equals(data), 'bytes arrived intact and in order');
  assert.deepEqual(got.closes, []);
});

test('many small writes interleaved with a slow reader keep their order; each resolves in turn', async (t) => {
  const pair = await startSocat(t, tmp(t));
  const driver = new SerialDriver(cfg(pair.dev, { baud: 115200 }));
  await openDriver(t, driver);
  const peer = openSlowPeer(t, pair.peer);
  peer.readSlowly(4 * 1024);

  // 3000 writes of 1..700 random bytes, issued 100 per turn of the event loop, so new writes
  // arrive both while earlier ones wait for the OS and after the queue ran dry.
  const parts: Buffer[] = [];
  const resolvedOrder: number[] = [];
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 3000; i++) {
    const part = crypto.randomBytes(1 + crypto.randomInt(700));
    parts.push(part);
    writes.push(driver.write(part).then(() => { resolvedOrder.push(i); }));
    if (i % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(writes);
  const all = Buffer.concat(parts);
  await until('peer to receive everything', () => peer.received().length >= all.length, 10_000);
  assert.equal(peer.received().length, all.length);
  assert.ok(peer.received().equals(all), 'bytes arrived intact and in write order');
  assert.deepEqual(resolvedOrder, parts.map((_, i) => i));
});

test('baud, parity, stop bits and flow control reach the tty', async (t) => {
  const pair = await startSocat(t, tmp(t));
  const stty = () => execFileSync('stty', ['-F', pair.dev, '-a']).toString();
  const flags = (s: string) => new Set(s.split(/[\s;]+/));

  // Defaults first, so the assertions below can only pass if the settings were applied.
  const plain = new SerialDriver(cfg(pair.dev));
  await plain.open({ onData() {}, onClose() {} });
  let s = stty();
  assert.match(s, /speed 9600 baud/);
  for (const f of ['-parodd', '-cstopb', '-crtscts', '-ixon', '-ixoff']) assert.ok(flags(s).has(f), `${f} in ${s}`);
  await plain.close();

  // A Linux pty always clears PARENB and forces CS8 in its termios (drivers/tty/pty.c), so parity
  // shows up only as PARODD and data bits not at all; a real UART keeps them.
  const tuned = new SerialDriver(cfg(pair.dev, { baud: 19200, parity: 'odd', stopBits: 2, flowControl: 'rtscts' }));
  await tuned.open({ onData() {}, onClose() {} });
  s = stty();
  assert.match(s, /speed 19200 baud/);
  for (const f of ['parodd', 'cstopb', 'crtscts', '-ixon']) assert.ok(flags(s).has(f), `${f} in ${s}`);
  await tuned.close();

  const xon = new SerialDriver(cfg(pair.dev, { baud: 57600, flowControl: 'xonxoff' }));
  await xon.open({ onData() {}, onClose() {} });
  s = stty();
  assert.match(s, /speed 57600 baud/);
  // (PARODD would still show: serialport's "none" clears only PARENB, and the pty keeps its termios.)
  for (const f of ['ixon', 'ixoff', '-crtscts', '-cstopb']) assert.ok(flags(s).has(f), `${f} in ${s}`);
  await xon.close();
});

test('device vanishing (socat killed) fires onClose within a couple of seconds', async (t) => {
  // Idle and busy lines: with data flowing a read() is often in flight at the hang-up, which
  // serialport alone never reports (see serial.ts).
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (const busy of [false, true]) {
      const pair = await startSocat(t, tmp(t));
      const driver = new SerialDriver(cfg(pair.dev)); // default watchdog interval
      const got = await openDriver(t, driver);
      const peer = openPeer(t, pair.peer);
      const flood = busy ? setInterval(() => { try { peer.write(allBytes); } catch { /* gone */ } }, 1) : undefined;
      t.after(() => clearInterval(flood));
      if (busy) await until('data flowing', () => got.data().length > 10_000);
      const killedAt = Date.now();
      await pair.stop(signal);
      await until(`onClose (${signal}, busy=${busy})`, () => got.closes.length > 0, 2000);
      clearInterval(flood);
      assert.ok(Date.now() - killedAt < 2000);
      assert.equal(got.closes.length, 1);
      // Never "disappeared": the hang-up itself is detected, by serialport or the TIOCMGET check.
      assert.match(got.closes[0], /^device (disconnected: |.* hung up$)/);
      await assert.rejects(driver.write(Buffer.from('x')), /is not open/);
    }
  }
});

test('watchdog: device path removed or pointed at another device fires onClose', async (t) => {
  const dir = tmp(t);
  const pair = await startSocat(t, dir);
  const driver = new SerialDriver(cfg(pair.dev), { watchIntervalMs: 100 });

  let got = await openDriver(t, driver);
  fs.unlinkSync(pair.dev); // like a /dev/serial/by-id link vanishing on unplug
  await until('onClose after unlink', () => got.closes.length > 0, 2000);
  assert.deepEqual(got.closes, [`device ${pair.dev} disappeared`]);

  // Put the link back, reopen, then atomically re-point it at the other pty.
  fs.symlinkSync(fs.readlinkSync(pair.peer), pair.dev + '.tmp');
  fs.renameSync(pair.dev + '.tmp', pair.dev);
  got = await openDriver(t, driver);
  const other = path.join(dir, 'other');
  fs.symlinkSync('/dev/null', other);
  fs.renameSync(other, pair.dev);
  await until('onClose after replacement', () => got.closes.length > 0, 2000);
  assert.deepEqual(got.closes, [`device ${pair.dev} was replaced by another device`]);
});

test('close releases the port: reopen works, a second opener is locked out meanwhile', async (t) => {
  const pair = await startSocat(t, tmp(t));
  const driver = new SerialDriver(cfg(pair.dev));
  const got = await openDriver(t, driver);
  await assert.rejects(driver.open({ onData() {}, onClose() {} }), /already open/);

  const rival = new SerialDriver(cfg(pair.dev));
  await assert.rejects(rival.open({ onData() {}, onClose() {} }), new RegExp(`^Error: open ${pair.dev}: .*lock`, 'i'));

  await driver.close();
  assert.deepEqual(got.closes, ['closed']);
  await driver.close(); // repeated close is harmless
  assert.deepEqual(got.closes, ['closed']);

  // close() during open: the open fails, the port is released, and the next open works.
  const closesDuring: string[] = [];
  const opening = driver.open({ onData() {}, onClose: (r) => closesDuring.push(r) });
  await driver.close();
  await assert.rejects(opening, /closed while opening/);
  assert.deepEqual(closesDuring, ['closed']);

  const again = await openDriver(t, driver);
  const peer = openPeer(t, pair.peer);
  peer.write(Buffer.from('after reopen'));
  await until('data after reopen', () => again.data().toString() === 'after reopen');
});

test('sendBreak holds the break for breakDelayMs; open of a missing device says so', async (t) => {
  const pair = await startSocat(t, tmp(t));
  const driver = new SerialDriver(cfg(pair.dev, { breakDelayMs: 150 }));
  await assert.rejects(driver.sendBreak(), /is not open/);
  await openDriver(t, driver);
  const start = Date.now();
  await driver.sendBreak();
  assert.ok(Date.now() - start >= 145, `break took ${Date.now() - start} ms`);

  const missing = new SerialDriver(cfg('/dev/does-not-exist-ttyUSB9'));
  await assert.rejects(missing.open({ onData() {}, onClose() {} }), { message: 'open /dev/does-not-exist-ttyUSB9: no such file' });
});

/** Streams `bytes` per `everyMs` from the device end until stopped. */
function stream(peer: ReturnType<typeof openPtyPeer>, bytes: number, everyMs: number) {
  let sent = 0;
  const timer = setInterval(() => { sent += peer.write(Buffer.alloc(bytes, 0x61 + (sent % 26))); }, everyMs);
  return { stop: () => { clearInterval(timer); return sent; } };
}

test('read hold-off: a busy unattended line is read in fewer, larger pieces, nothing lost', async (t) => {
  async function run(readHoldoffMs: number) {
    const pair = await startSocat(t, tmp(t));
    const driver = new SerialDriver(cfg(pair.dev, { baud: 115200, readHoldoffMs }));
    const reads: number[] = [];
    const closes: string[] = [];
    await driver.open({ onData: (d) => reads.push(d.length), onClose: (r) => closes.push(r) });
    const peer = openPeer(t, pair.peer);
    const s = stream(peer, 40, 5); // 8 KB/s, a 115200-baud line's pace (11.5 KB/s at most)
    await new Promise((r) => setTimeout(r, 1500));
    const sent = s.stop();
    await until('every byte', () => reads.reduce((a, b) => a + b, 0) >= sent);
    await driver.close();
    assert.equal(reads.reduce((a, b) => a + b, 0), sent, 'nothing lost, nothing repeated');
    assert.deepEqual(closes, ['closed']);
    return reads.length;
  }
  const held = await run(60);
  const plain = await run(0);
  // 1.5 s of reads: at most one per 60 ms (~25) plus the quiet-start reads, against one per write
  // or so (~300, fewer when timers bunch up on a loaded machine).
  assert.ok(held <= 40, `held-off line was read ${held} times in 1.5 s`);
  assert.ok(plain > 2 * held, `without hold-off ${plain} reads, with it ${held}`);
});

test('read hold-off never delays an echo after input, nor a line running faster than its baud', async (t) => {
  const pair = await startSocat(t, tmp(t));
  // An absurd hold-off, so that any wrongly applied pause shows.
  const driver = new SerialDriver(cfg(pair.dev, { baud: 115200, readHoldoffMs: 1000 }));
  const got = await openDriver(t, driver);
  const peer = openPeer(t, pair.peer);
  const s = stream(peer, 50, 10);
  await new Promise((r) => setTimeout(r, 500)); // busy and unattended: held off by now
  // The device answers input at once; the answer must not wait out the hold-off.
  const t0 = Date.now();
  await driver.write(Buffer.from('PING'));
  await until('the device to get the input', () => peer.received().includes('PING'));
  peer.write('PONG');
  await until('the echo', () => got.data().includes('PONG'), 5000);
  const echoMs = Date.now() - t0;
  s.stop();
  assert.ok(echoMs < 500, `echo took ${echoMs} ms with a 1000 ms hold-off configured`);

  // A flood from a real process (reads come 4 KiB at a time): never held off. 2 MiB through a
  // pty pair is well under a second; 1000 ms per 4 KiB read would take minutes.
  const before = got.data().length;
  await new Promise((r) => setTimeout(r, 2500)); // not interactive any more
  const src = path.join(tmp(t), 'flood');
  const flood = crypto.randomBytes(2 << 20);
  fs.writeFileSync(src, flood);
  await promisify(execFile)('dd', [`if=${src}`, `of=${pair.peer}`, 'bs=65536', 'status=none'], { timeout: 30_000 });
  await until('the flood', () => got.data().length >= before + flood.length, 20_000);
  assert.ok(got.data().subarray(got.data().length - flood.length).equals(flood), 'flood intact');
});
