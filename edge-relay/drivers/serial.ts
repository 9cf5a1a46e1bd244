// Serial console driver. The `serialport` package's binding (@serialport/bindings-cpp) opens and
// configures the port (termios: baud, parity, data/stop bits, flow control; flock, so a second
// opener is locked out), sends BREAK, answers the watchdog's TIOCMGET and closes the port. The
// data path is ours and stays on the event-loop thread: serialport reads and writes with fs.read/
// fs.write on the libuv thread pool (two pool hops per incoming chunk: a read that fails with
// EAGAIN, then another once the poller says readable), which delays every keystroke echo and costs
// CPU under a flood. Here the binding's poller (a uv_poll on the O_NONBLOCK fd) says when the fd is
// readable or writable, and fs.readSync/fs.writeSync move the bytes; neither can block.
//
// The poller (bindings-cpp 13, src/poller.cpp) needs care:
// - poll(flags) replaces what is watched (uv_poll_start), so `arm` always asks for everything
//   wanted at once: readable always, writable while writes wait. (poller.once('writable'), as
//   serialport's own write does, stops reading from the device until it accepts output again:
//   output held by XOFF or a full buffer would freeze the console's input.)
// - After an event it re-arms every flag ever asked for minus the ones that fired, so each event
//   handler ends by setting the flags again.
// (tty.ReadStream on the fd is no way out: for a pty slave libuv reopens the tty and dup2()s the
// new fd over ours, which drops the flock; for a UART it falls back to blocking writes.)
//
// Read coalescing ("hold-off"): a console printing steadily (a boot log, a chatty daemon) would
// otherwise cost one poller event, one read, one spool record and one WebSocket message per few
// hundred bytes, for every console of the relay. When a read follows the previous one closely
// (within the hold-off plus BULK_GAP_MS), its bytes came no faster than the line's baud allows
// (PACED_FACTOR) and they did not fill the tty's buffer (SATURATED_BYTES), reading pauses for
// about `readHoldoffMs`, so the next read takes what arrived meanwhile in one go. The pause is sized so that what arrives meanwhile at the line's baud
// (~2 KiB) fits in half of the line discipline's 4 KiB read buffer, behind which the tty layer
// holds up to 64 KiB more before anything is dropped on a UART without flow control. A watcher
// sees such a line in pieces up to `readHoldoffMs` apart (177 ms at 115200 baud). The pause never
// applies to a console someone typed on in the last INTERACTIVE_MS (keystroke echo stays
// immediate), to the first output after a quiet spell, or to data coming faster than the baud (a
// flood through a pty, which the pause would throttle to a few KiB per interval).
//
// How a vanished device is noticed (found by experiment on Linux 6.x, socat ptys):
// - A hung-up tty (pty master gone, USB adapter unplugged) polls as POLLERR|POLLHUP, which the
//   poller reports as an error ("bad file descriptor"); a read then returns 0 (EIO, a tty's other
//   way of saying it, counts the same). That, and any other read or write error, ends the session
//   within milliseconds. Reading is always armed, so this works on idle and busy lines alike.
// - As a backstop, and for a device path that is re-pointed, a watchdog checks every
//   `watchIntervalMs` in which no data arrived: TIOCMGET (port.get()) fails with EIO only on a hung-up tty (a pty answers
//   ENOTTY, a UART answers), and the device path must still lead to the same device node (a
//   /dev/serial/by-id link vanishes on unplug; a pty's /dev/pts node goes with its master).
import fs from 'node:fs';
import nodePath from 'node:path';
import { SerialPort } from 'serialport';
import type { LinuxBindingInterface, LinuxPortBinding } from '@serialport/bindings-cpp';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import type { SerialConsoleConfig } from '../config.ts';

export interface SerialDriverOptions {
  /** How often the watchdog checks for a hang-up and for the device path going away or being
   *  replaced (ms). Default 1000. */
  watchIntervalMs?: number;
}

/** A read within the hold-off plus this of the previous one means the line is busy (ms). */
const BULK_GAP_MS = 100;
/** Data arriving faster than this multiple of the line's rate (baud / 10 bytes a second) is not a
 *  UART at that baud (a pty, a network console): never held off. */
const PACED_FACTOR = 1.5;
/** A read this large found the line discipline's 4 KiB buffer (nearly) full: the line outran the
 *  reading, whatever the rate looks like, so no pause. */
const SATURATED_BYTES = 3584;
/** Input written within this long marks the console interactive: no pause (ms). */
const INTERACTIVE_MS = 2000;

/** Default hold-off for a baud rate: the time ~2 KiB take on the line (10 bits a byte), at most
 *  200 ms (115200 baud: 177 ms; 921600: 22 ms; 9600: 200 ms). */
export function defaultReadHoldoffMs(baud: number): number {
  return Math.min(200, Math.floor((2048 * 10 * 1000) / baud));
}

/** The binding `serialport` picked for this platform (the same one bindings-cpp's autoDetect()
 *  returns). The Linux and macOS bindings have the poller this driver needs; Windows' has none. */
const Binding = SerialPort.binding as LinuxBindingInterface;
const READABLE = 0b01; // poller flags (bindings-cpp poller.js EVENTS)
const WRITABLE = 0b10;
/** Bytes moved per direction in one event-loop turn before yielding (the poller is level-triggered,
 *  so whatever is left fires again at once): a flood cannot starve the relay's other I/O. */
const TURN_BYTES = 1 << 20;
/** Scratch for reads; each chunk is copied out, so it is shared by all sessions. */
const readBuf = Buffer.allocUnsafe(64 * 1024);

interface PendingWrite { data: Buffer; off: number; resolve(): void; reject(e: Error): void }

/** One open of the device; events from an older open can never touch a newer one. */
interface Session {
  port?: LinuxPortBinding; // set once the binding has opened it
  fd: number;
  up: boolean; // open() finished: reading and writing are allowed
  events: DriverEvents;
  ended: boolean;
  writes: PendingWrite[]; // in order; the first may be partly written
  armed: number; // poller flags last asked for; -1 after an event (the poller changed them itself)
  timer?: NodeJS.Timeout;
  watching?: boolean; // a check is in flight (the thread pool may be slow)
  readSinceWatch?: boolean; // data arrived since the last check: the device is evidently there
  lastReadAt: number; // Date.now() of the last read that brought data
  lastWriteAt: number; // Date.now() of the last write() (input from a user)
  held: boolean; // reading paused (hold-off) until the next tick of its HoldTicker, input or end
  resume(): void; // re-arms after a hold-off
  opened: Promise<void>; // settles when the binding's open has finished, either way
  closed?: Promise<void>;
}

export class SerialDriver implements ConsoleDriver {
  /** Watches the device's directory (inotify): a node or link of that name appearing, as udev
   *  makes on replug or socat on restart, is the hint to retry now. */
  watchReady(hint: () => void): () => void {
    const dir = nodePath.dirname(this.cfg.device);
    const base = nodePath.basename(this.cfg.device);
    let w: fs.FSWatcher | undefined;
    try {
      w = fs.watch(dir, { persistent: false }, (_ev, f) => { if (!f || f.toString() === base) hint(); });
      w.on('error', () => w?.close());
    } catch { return () => {}; } // the directory itself is gone: the backoff retries
    return () => w?.close();
  }

  readonly type = 'serial';
  readonly resizable = false;
  private cur?: Session;
  private readonly watchIntervalMs: number;
  private readonly holdoffMs: number;

  constructor(private readonly cfg: SerialConsoleConfig, opts: SerialDriverOptions = {}) {
    this.watchIntervalMs = opts.watchIntervalMs ?? 1000;
    this.holdoffMs = cfg.readHoldoffMs ?? defaultReadHoldoffMs(cfg.baud);
  }

  async open(events: DriverEvents): Promise<void> {
    const path = this.cfg.device;
    if (this.cur) throw new Error(`open ${path}: already open`);
    const c = this.cfg;
    const s: Session = {
      fd: -1, up: false, events, ended: false, writes: [], armed: 0, opened: Promise.resolve(), lastReadAt: 0, lastWriteAt: 0,
      held: false, resume: () => { s.held = false; if (!s.ended) this.arm(s); },
    };
    let identity = '';
    const opened = (async () => {
      identity = await deviceIdentity(path).catch((e: NodeJS.ErrnoException) => {
        throw new Error(e.code === 'ENOENT' ? 'no such file' : e.message);
      });
      if (s.ended) throw new Error('closed while opening');
      const port = await Binding.open({
        path, baudRate: c.baud, dataBits: c.dataBits, stopBits: c.stopBits,
        parity: c.parity as 'none' | 'even' | 'odd', // config.ts refuses mark and space off Windows
        rtscts: c.flowControl === 'rtscts', xon: c.flowControl === 'xonxoff', xoff: c.flowControl === 'xonxoff',
      });
      if (!port.poller) { // Windows
        await port.close();
        throw new Error(`serial consoles need a binding with a poller (Linux, macOS), not ${process.platform}`);
      }
      s.port = port;
    })();
    s.opened = opened.catch(() => {});
    this.cur = s; // claims the driver while opening, so a second open() fails fast
    try {
      await opened;
    } catch (e) {
      if (this.cur === s) this.cur = undefined;
      throw new Error(`open ${path}: ${(e as Error).message}`);
    }
    if (s.ended) throw new Error(`open ${path}: closed while opening`); // end() releases the port
    const port = s.port!;
    s.fd = port.fd!;
    port.poller.on('readable', (e: Error | null) => this.onReadable(s, e));
    port.poller.on('writable', (e: Error | null) => this.onWritable(s, e));
    s.up = true;
    this.arm(s);
    s.timer = setInterval(() => void this.watch(s, identity), this.watchIntervalMs).unref();
  }

  /** Writes go out in call order; each resolves once all its bytes were handed to the OS. */
  write(data: Buffer): Promise<void> {
    const s = this.cur;
    if (!s || !s.up || s.ended) return Promise.reject(new Error(`${this.cfg.device} is not open`));
    if (data.length === 0) return Promise.resolve();
    s.lastWriteAt = Date.now();
    if (s.held) { // someone is typing: read the answer as soon as it comes
      holdTicker(this.holdoffMs).release(s);
      s.held = false;
      this.arm(s);
    }
    return new Promise((resolve, reject) => {
      s.writes.push({ data, off: 0, resolve, reject });
      if (s.writes.length === 1) this.flush(s); // otherwise it waits for the poller
    });
  }

  async sendBreak(): Promise<void> {
    const s = this.cur;
    if (!s || !s.up || s.ended) throw new Error(`${this.cfg.device} is not open`);
    await this.setBreak(s.port!, true);
    await new Promise((r) => setTimeout(r, this.cfg.breakDelayMs));
    await this.setBreak(s.port!, false);
  }

  resize(): void { /* a serial line has no terminal size */ }

  async close(): Promise<void> {
    if (this.cur) await this.end(this.cur, 'closed');
  }

  /** Asks the poller for what is wanted now: readable unless held off, writable while writes
   *  wait. poll(0) stops the poller. */
  private arm(s: Session): void {
    const want = (s.held ? 0 : READABLE) | (s.writes.length ? WRITABLE : 0);
    if (want === s.armed) return;
    s.armed = want;
    s.port!.poller.poll(want);
  }

  /** Reads what the device has sent, up to TURN_BYTES per turn. */
  private onReadable(s: Session, err: Error | null): void {
    if (s.ended) return; // includes the "Canceled" the poller emits when the port is closed
    s.armed = -1;
    let budget = TURN_BYTES;
    let got = 0;
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(s.fd, readBuf, 0, readBuf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EINTR') continue;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') return this.failed(s, 'read', e as NodeJS.ErrnoException);
        break;
      }
      if (n === 0) return void this.end(s, `device ${this.cfg.device} hung up`);
      s.readSinceWatch = true;
      s.events.onData(Buffer.from(readBuf.subarray(0, n)));
      if (s.ended) return; // onData closed the driver
      budget -= n;
      got += n;
      // A tty hands over at most its line discipline's 4 KiB buffer per read. A read that found
      // it (nearly) full means more is queued behind it, which the kernel moves in at once: read
      // again now rather than after another trip through the event loop and the poller (that
      // trip capped a 50 MB flood at 5-10 MB/s; reading on, 17.7). A smaller read emptied it.
      // After a poller error keep reading: the hang-up shows as 0 or EIO.
      if (budget <= 0 || (n < SATURATED_BYTES && !err)) break;
    }
    // The poller stopped itself after the error, and reading found no hang-up: give up the port.
    if (err) return void this.end(s, `device disconnected: ${err.message}`);
    if (got > 0) {
      const now = Date.now();
      const since = now - s.lastReadAt;
      const busy = since < this.holdoffMs + BULK_GAP_MS;
      const paced = got * 1000 <= PACED_FACTOR * (this.cfg.baud / 10) * Math.max(since, 1);
      if (this.holdoffMs > 0 && busy && paced && got < SATURATED_BYTES && now - s.lastWriteAt > INTERACTIVE_MS) {
        s.held = true;
        holdTicker(this.holdoffMs).hold(s);
      }
      s.lastReadAt = now;
    }
    this.arm(s);
  }

  private onWritable(s: Session, err: Error | null): void {
    if (s.ended || err) return; // an error was emitted as 'readable' first, and handled there
    s.armed = -1;
    this.flush(s);
  }

  /** Hands queued writes to the OS in order until they are done, the OS takes no more, or the
   *  turn's budget is spent; then waits for writable if anything is left. */
  private flush(s: Session): void {
    let budget = TURN_BYTES;
    while (s.writes.length && budget > 0) {
      const w = s.writes[0]!;
      let n: number;
      try {
        n = fs.writeSync(s.fd, w.data, w.off, w.data.length - w.off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EINTR') continue;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') return this.failed(s, 'write', e as NodeJS.ErrnoException);
        break;
      }
      w.off += n;
      budget -= n;
      if (w.off < w.data.length) break; // short write: the tty's buffer is full
      s.writes.shift();
      w.resolve();
    }
    this.arm(s);
  }

  /** A read or write failed for good: EIO is how a hung-up tty answers; anything else (ENXIO,
   *  EBADF, ...) means the device is gone or unusable too. */
  private failed(s: Session, op: string, e: NodeJS.ErrnoException): void {
    void this.end(s, e.code === 'EIO' ? `device ${this.cfg.device} hung up` : `device disconnected: ${op}: ${e.message}`);
  }

  /** Ends a session once: stops reading, fails waiting writes, releases the fd (so a reopen can
   *  take the lock), then reports. Concurrent callers share the same wait. */
  private end(s: Session, reason: string): Promise<void> {
    if (s.closed) return s.closed;
    s.ended = true;
    clearInterval(s.timer);
    if (s.held) holdTicker(this.holdoffMs).release(s);
    for (const w of s.writes.splice(0)) w.reject(new Error(`${this.cfg.device} closed before the write completed: ${reason}`));
    s.closed = s.opened.then(() => releasePort(s.port)).then(() => {
      if (this.cur === s) this.cur = undefined;
      s.events.onClose(reason);
    });
    return s.closed;
  }

  private async watch(s: Session, identity: string): Promise<void> {
    if (s.ended || s.watching) return;
    // A line that delivered data since the last check is alive; checking costs a stat and an
    // ioctl per console per interval (with 1000 busy consoles, 2000 syscalls a second for nothing).
    // A hang-up still ends the session at once through the poller.
    if (s.readSinceWatch) { s.readSinceWatch = false; return; }
    s.watching = true;
    try {
      const hungUp = await s.port!.get().then(() => false, (e: Error) => /Input\/output error/.test(e.message));
      if (s.ended) return;
      if (hungUp) return void this.end(s, `device ${this.cfg.device} hung up`);
      const now = await deviceIdentity(this.cfg.device).catch(() => undefined);
      if (s.ended) return;
      if (now === undefined) return void this.end(s, `device ${this.cfg.device} disappeared`);
      if (now !== identity) return void this.end(s, `device ${this.cfg.device} was replaced by another device`);
    } finally {
      s.watching = false;
    }
  }

  private async setBreak(port: LinuxPortBinding, brk: boolean): Promise<void> {
    // set() writes all modem lines; these are serialport's defaults (DTR and RTS up).
    await port.set({ brk, dtr: true, rts: true, cts: false, dsr: false }).catch((e: Error) => {
      // The binding issues TIOCSBRK/TIOCCBRK first, then TIOCMSET for DTR/RTS. A pty has no modem
      // lines, so TIOCMSET fails with ENOTTY after the break ioctl already succeeded; ignore that.
      if (!/Inappropriate ioctl/.test(e.message)) throw new Error(`break on ${this.cfg.device}: ${e.message}`);
    });
  }
}

/** Resumes every console held off for the same time at once, on one timer: their reads then land
 *  in the same event-loop turn, so the relay sends their output in one socket write, and a relay
 *  with 1000 busy lines runs one timer instead of 1000. A line held just after a tick waits a full
 *  interval, one held just before it less; each busy line is read about once an interval. */
class HoldTicker {
  private readonly held = new Set<{ resume(): void }>();
  private timer?: NodeJS.Timeout;
  constructor(private readonly ms: number) {}
  hold(s: { resume(): void }): void {
    this.held.add(s);
    this.timer ??= setInterval(() => this.tick(), this.ms);
  }
  release(s: { resume(): void }): void { this.held.delete(s); }
  private tick(): void {
    if (this.held.size === 0) { clearInterval(this.timer); this.timer = undefined; return; }
    const now = [...this.held];
    this.held.clear();
    for (const s of now) s.resume();
  }
}
const tickers = new Map<number, HoldTicker>();
function holdTicker(ms: number): HoldTicker {
  let t = tickers.get(ms);
  if (!t) tickers.set(ms, t = new HoldTicker(ms));
  return t;
}

/** What the path points at now (follows symlinks): changes when the device is swapped. */
async function deviceIdentity(path: string): Promise<string> {
  const st = await fs.promises.stat(path);
  return `${st.dev}:${st.ino}:${st.rdev}`;
}

/** Closes the port if open: stops the poller (it then emits "Canceled", ignored once ended) and
 *  closes the fd. */
async function releasePort(port: LinuxPortBinding | undefined): Promise<void> {
  if (port?.isOpen) await port.close().catch(() => { /* the fd is gone either way */ });
}
