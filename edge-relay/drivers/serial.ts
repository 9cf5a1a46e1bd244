// Serial console driver on the `serialport` package.
//
// How a vanished device is noticed (found by experiment on Linux 6.x, serialport 13, socat ptys):
// - If the hang-up (pty master gone, USB adapter unplugged) finds serialport's read parked on its
//   poller, POLLHUP wakes it, the read fails, and serialport closes the port itself, emitting
//   'close' with a DisconnectedError ("bad file descriptor") within milliseconds. That needs the
//   stream to be reading, so the driver always keeps a 'data' listener attached.
// - But if a read() is in flight at that moment (likely on a busy console), read() on the hung-up
//   tty returns 0, and serialport's unixRead retries 0-byte reads in a loop forever (tens of
//   thousands per second) without ever reporting anything.
// So a watchdog checks every `watchIntervalMs`: TIOCMGET (port.get()) fails with EIO only on a
// hung-up tty (a pty answers ENOTTY, a UART answers), and the device path must still lead to
// the same device node (a /dev/serial/by-id link vanishes on unplug; a pty's /dev/pts node goes
// with its master). Either change is treated as a close, which also ends the 0-byte read loop.
import fs from 'node:fs';
import { SerialPort } from 'serialport';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import type { SerialConsoleConfig } from '../config.ts';

export interface SerialDriverOptions {
  /** How often the watchdog checks for a hang-up and for the device path going away or being
   *  replaced (ms). Default 1000. */
  watchIntervalMs?: number;
}

/** One open of the device; events from an older open can never touch a newer one. */
interface Session {
  port: SerialPort;
  events: DriverEvents;
  ended: boolean;
  timer?: NodeJS.Timeout;
  watching?: boolean; // a check is in flight (the thread pool may be slow)
  opened: Promise<void>; // settles when port.open() has finished, either way
  closed?: Promise<void>;
}

export class SerialDriver implements ConsoleDriver {
  readonly type = 'serial';
  readonly resizable = false;
  private cur?: Session;
  private readonly watchIntervalMs: number;

  constructor(private readonly cfg: SerialConsoleConfig, opts: SerialDriverOptions = {}) {
    this.watchIntervalMs = opts.watchIntervalMs ?? 1000;
  }

  async open(events: DriverEvents): Promise<void> {
    const path = this.cfg.device;
    if (this.cur) throw new Error(`open ${path}: already open`);
    const c = this.cfg;
    // A fresh SerialPort per open: after a disconnect the old stream may be errored for good.
    const port = new SerialPort({
      path, autoOpen: false, baudRate: c.baud, dataBits: c.dataBits, parity: c.parity, stopBits: c.stopBits,
      rtscts: c.flowControl === 'rtscts', xon: c.flowControl === 'xonxoff', xoff: c.flowControl === 'xonxoff',
    });
    const s: Session = { port, events, ended: false, opened: Promise.resolve() };
    let identity = '';
    const opened = (async () => {
      identity = await deviceIdentity(path).catch((e: NodeJS.ErrnoException) => {
        throw new Error(e.code === 'ENOENT' ? 'no such file' : e.message);
      });
      if (s.ended) throw new Error('closed while opening');
      await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
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
    port.on('data', (buf: Buffer) => { if (!s.ended) s.events.onData(buf); });
    port.on('close', (e?: Error | null) => void this.end(s, e ? `device disconnected: ${e.message}` : 'closed'));
    // Write failures and the like: the stream is unusable afterwards, so treat as a close.
    port.on('error', (e: Error) => void this.end(s, `device error: ${e.message}`));
    s.timer = setInterval(() => void this.watch(s, identity), this.watchIntervalMs).unref();
  }

  write(data: Buffer): Promise<void> {
    const s = this.cur;
    // Checked here because SerialPort queues writes on a closed port until it is opened again.
    if (!s || s.ended || !s.port.isOpen) return Promise.reject(new Error(`${this.cfg.device} is not open`));
    return new Promise((res, rej) => s.port.write(data, (e) => (e ? rej(e) : res())));
  }

  async sendBreak(): Promise<void> {
    const s = this.cur;
    if (!s || s.ended || !s.port.isOpen) throw new Error(`${this.cfg.device} is not open`);
    await setBreak(s.port, true);
    await new Promise((r) => setTimeout(r, this.cfg.breakDelayMs));
    await setBreak(s.port, false);
  }

  resize(): void { /* a serial line has no terminal size */ }

  async close(): Promise<void> {
    if (this.cur) await this.end(this.cur, 'closed');
  }

  /** Ends a session once: stops reading, releases the fd (so a reopen can take the lock), then
   *  reports. Concurrent callers share the same wait. */
  private end(s: Session, reason: string): Promise<void> {
    if (s.closed) return s.closed;
    s.ended = true;
    clearInterval(s.timer);
    s.closed = s.opened.then(() => releasePort(s.port)).then(() => {
      if (this.cur === s) this.cur = undefined;
      s.events.onClose(reason);
    });
    return s.closed;
  }

  private async watch(s: Session, identity: string): Promise<void> {
    if (s.ended || s.watching) return;
    s.watching = true;
    try {
      const hungUp = await new Promise<boolean>((res) => s.port.get((e) => res(/Input\/output error/.test(e?.message ?? ''))));
      if (hungUp) return void this.end(s, `device ${this.cfg.device} hung up`);
      const now = await deviceIdentity(this.cfg.device).catch(() => undefined);
      if (now === undefined) return void this.end(s, `device ${this.cfg.device} disappeared`);
      if (now !== identity) return void this.end(s, `device ${this.cfg.device} was replaced by another device`);
    } finally {
      s.watching = false;
    }
  }
}

/** What the path points at now (follows symlinks): changes when the device is swapped. */
async function deviceIdentity(path: string): Promise<string> {
  const st = await fs.promises.stat(path);
  return `${st.dev}:${st.ino}:${st.rdev}`;
}

function releasePort(port: SerialPort): Promise<void> {
  if (port.isOpen) return new Promise((res) => port.close(() => res()));
  // Already closing (serialport's own disconnect handling): wait until the fd is closed.
  if (port.closing) return new Promise((res) => port.once('close', () => res()));
  return Promise.resolve();
}

function setBreak(port: SerialPort, brk: boolean): Promise<void> {
  return new Promise((res, rej) => port.set({ brk }, (e) => {
    // The binding issues TIOCSBRK/TIOCCBRK first, then TIOCMSET for DTR/RTS. A pty has no modem
    // lines, so TIOCMSET fails with ENOTTY after the break ioctl already succeeded; ignore that.
    if (e && !/Inappropriate ioctl/.test(e.message)) rej(new Error(`break on ${port.path}: ${e.message}`));
    else res();
  }));
}
