// Raw stream consoles: `tcp` (a terminal server's raw port, QEMU's `-serial tcp:`, a switch's
// console server port) and `uds` (a unix socket: QEMU/libvirt `-serial unix:`, a VM manager).
// Bytes pass unchanged both ways. A raw byte stream has no break; telnet.ts is the driver for
// ports that speak telnet (and RFC 2217).
//
// Dead peers: a close or error from the peer ends the session at once. A peer that vanishes
// without a FIN (a cable pulled, a host powered off) is found by TCP keepalive (KEEPALIVE_MS).
import net from 'node:net';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import type { TcpConsoleConfig, UdsConsoleConfig } from '../config.ts';

/** How long to wait for a connection (ms). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** TCP keepalive idle time (ms): a silently dead peer is noticed within about this plus 9 probes. */
export const KEEPALIVE_MS = 15_000;

/** Connects and resolves with the socket once connected; rejects with "connect HOST:PORT: why". */
export function connectSocket(opts: net.NetConnectOpts, label: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(opts);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect ${label}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.removeAllListeners('error'); resolve(sock); });
    sock.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); reject(new Error(`connect ${label}: ${errnoText(e)}`)); });
  });
}

export function errnoText(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOENT': return 'no such socket';
    case 'EACCES': return 'permission denied';
    case 'ECONNRESET': return 'connection reset by peer';
    case 'ETIMEDOUT': return 'timed out';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ENOTFOUND': return 'host not found';
    case 'EPIPE': return 'connection closed by peer';
    default: return e.message;
  }
}

/** One connected socket feeding a DriverEvents; shared by the tcp, uds and telnet drivers. */
export class SocketSession {
  ended = false;
  closing = false;
  private readonly closed: Promise<void>;

  constructor(readonly sock: net.Socket, private readonly events: DriverEvents, onData?: (d: Buffer) => void) {
    let done!: () => void;
    this.closed = new Promise((r) => (done = r));
    let why: string | undefined;
    sock.on('data', onData ?? ((d: Buffer) => { if (!this.ended) events.onData(d); }));
    sock.on('error', (e: NodeJS.ErrnoException) => { why ??= errnoText(e); });
    sock.on('end', () => { why ??= 'connection closed by peer'; sock.end(); });
    sock.on('close', () => {
      done();
      this.end(this.closing ? 'closed' : (why ?? 'connection closed'));
    });
  }

  /** Reports the end once (e.g. a protocol error found by the telnet layer). */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.sock.destroy();
    this.events.onClose(reason);
  }

  write(data: Buffer): Promise<void> {
    if (this.ended) return Promise.reject(new Error('console connection is closed'));
    return new Promise((resolve, reject) => {
      this.sock.write(data, (e) => (e ? reject(new Error(`write: ${errnoText(e as NodeJS.ErrnoException)}`)) : resolve()));
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.sock.destroy();
    await this.closed;
  }
}

abstract class StreamDriver implements ConsoleDriver {
  abstract readonly type: string;
  readonly resizable = false;
  protected cur?: SocketSession;

  protected abstract connect(): Promise<net.Socket>;

  async open(events: DriverEvents): Promise<void> {
    if (this.cur && !this.cur.ended) throw new Error(`open ${this.type}: already open`);
    const sock = await this.connect();
    this.cur = new SocketSession(sock, events);
  }

  write(data: Buffer): Promise<void> {
    return this.cur ? this.cur.write(data) : Promise.reject(new Error('console connection is closed'));
  }

  sendBreak(): Promise<void> {
    return Promise.reject(new Error(`${this.type} consoles carry no serial break (a terminal server's telnet port with RFC 2217 does: type telnet)`));
  }

  resize(): void { /* a raw byte stream has no terminal size */ }

  async close(): Promise<void> {
    const s = this.cur;
    this.cur = undefined;
    await s?.close();
  }
}

export class TcpDriver extends StreamDriver {
  readonly type = 'tcp';
  constructor(private readonly cfg: Pick<TcpConsoleConfig, 'host' | 'port'>) { super(); }
  protected async connect(): Promise<net.Socket> {
    const sock = await connectSocket({ host: this.cfg.host, port: this.cfg.port }, `${this.cfg.host}:${this.cfg.port}`);
    sock.setNoDelay(true); // keystrokes go out at once
    sock.setKeepAlive(true, KEEPALIVE_MS);
    return sock;
  }
}

export class UdsDriver extends StreamDriver {
  readonly type = 'uds';
  constructor(private readonly cfg: Pick<UdsConsoleConfig, 'path'>) { super(); }
  protected connect(): Promise<net.Socket> {
    return connectSocket({ path: this.cfg.path }, this.cfg.path);
  }
}
