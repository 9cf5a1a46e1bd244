// Telnet consoles: a terminal server's telnet port (ser2net, Opengear, Cyclades, Digi...) or QEMU's
// `-serial telnet:`. Speaks just enough telnet to carry a serial line byte-exact, and RFC 2217
// (COM-PORT-OPTION, 44) when the server offers it, to set the line and send BREAK.
//
// Negotiation follows RFC 1143's Q method (simplified: no queue bit): a request is answered only
// when it changes the option's state, so two peers can never bounce WILL/DO at each other forever
// (ConMan's telnet loop burned 15 % CPU: dun/conman#9). As a second fence, an option that has been
// negotiated more than NEGOTIATION_LIMIT times on one connection is left alone from then on.
//
// What we ask for: BINARY both ways (8-bit clean: 0xFF is escaped as IAC IAC, a CR stays a CR),
// SGA both ways (character at a time), the server's ECHO (the device echoes, not us), and, if the
// config sets any line setting or asks for a break, COM-PORT. Everything else is refused.
// If the server will not do BINARY, we fall back to NVT rules for that direction (CR is sent as
// CR NUL; a received CR NUL is a CR).
//
// BREAK: with COM-PORT, SET-CONTROL BREAK-ON, hold breakDelayMs, BREAK-OFF (the server toggles the
// UART's break state). Without it, telnet's own IAC BRK, which QEMU's telnet serial and most
// terminal servers turn into a serial break.
import type net from 'node:net';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import type { TelnetConsoleConfig } from '../config.ts';
import { connectSocket, KEEPALIVE_MS, SocketSession } from './socket.ts';

export const IAC = 255, DONT = 254, DO = 253, WONT = 252, WILL = 251, SB = 250, SE = 240;
const BRK = 243, NOP = 241;
export const OPT = { BINARY: 0, ECHO: 1, SGA: 3, COM_PORT: 44 } as const;
/** RFC 2217 client-to-server command codes (server replies add 100). */
export const CPC = {
  SIGNATURE: 0, SET_BAUDRATE: 1, SET_DATASIZE: 2, SET_PARITY: 3, SET_STOPSIZE: 4, SET_CONTROL: 5,
  NOTIFY_LINESTATE: 6, NOTIFY_MODEMSTATE: 7, FLOWCONTROL_SUSPEND: 8, FLOWCONTROL_RESUME: 9,
  SET_LINESTATE_MASK: 10, SET_MODEMSTATE_MASK: 11, PURGE_DATA: 12,
} as const;
const CONTROL = { FLOW_NONE: 1, FLOW_XONXOFF: 2, FLOW_HARDWARE: 3, BREAK_ON: 5, BREAK_OFF: 6, DTR_ON: 8, DTR_OFF: 9, RTS_ON: 11, RTS_OFF: 12 } as const;
const PARITY = { none: 1, odd: 2, even: 3, mark: 4, space: 5 } as const;
const STOPBITS = { 1: 1, 2: 2, 1.5: 3 } as const;

/** Negotiation commands per option per connection before we stop answering for that option. */
export const NEGOTIATION_LIMIT = 50;
/** How long open() waits for the server's answer to COM-PORT before going on without it (ms). */
export const COM_PORT_WAIT_MS = 1500;
/** Largest subnegotiation we buffer (bytes); longer ones are dropped. */
const MAX_SB = 1024;

type Q = 'no' | 'yes' | 'wantyes' | 'wantno';

/** What the server told us about its serial port through RFC 2217 (for `cloudcons ls -l`, tests). */
export interface ComPortState {
  /** The server agreed to COM-PORT-OPTION. */
  active: boolean;
  signature?: string;
  baud?: number;
  dataBits?: number;
  parity?: number;
  stopBits?: number;
  /** Replies to SET-CONTROL, in order (e.g. 5 then 6 after a break). */
  control: number[];
}

type Want = ((opt: number) => boolean);

/** The telnet protocol state of one connection: parses what the server sends, answers option
 *  requests, and escapes what we send. Transport-free so it can be unit-tested byte by byte. */
export class TelnetCodec {
  private readonly us = new Map<number, Q>(); // options we perform (WILL/WONT from us)
  private readonly him = new Map<number, Q>(); // options the server performs (DO/DONT from us)
  private readonly counts = new Map<number, number>();
  private state: 'data' | 'iac' | 'cmd' | 'sb' | 'sbiac' | 'cr' = 'data';
  private cmd = 0;
  private sb: number[] = [];
  readonly com: ComPortState = { active: false, control: [] };
  /** Called when COM-PORT becomes usable. */
  onComPort?: () => void;

  constructor(
    private readonly send: (b: Buffer) => void,
    private readonly weWill: Want = (o) => o === OPT.BINARY || o === OPT.SGA,
    private readonly heMay: Want = (o) => o === OPT.BINARY || o === OPT.SGA || o === OPT.ECHO,
  ) {}

  /** The opening requests. */
  start(comPort: boolean): void {
    this.request(WILL, OPT.BINARY);
    this.request(DO, OPT.BINARY);
    this.request(WILL, OPT.SGA);
    this.request(DO, OPT.SGA);
    if (comPort) this.request(WILL, OPT.COM_PORT);
  }

  /** True if bytes we send pass 8-bit clean (the server agreed to receive BINARY). */
  get binaryOut(): boolean { return this.us.get(OPT.BINARY) === 'yes'; }
  get binaryIn(): boolean { return this.him.get(OPT.BINARY) === 'yes'; }
  /** How many negotiation commands the server sent for an option (tests watch for loops). */
  negotiations(opt: number): number { return this.counts.get(opt) ?? 0; }

  /** Escapes data for the wire: IAC doubled; CR NUL for a lone CR when not in binary mode. */
  encode(data: Buffer): Buffer {
    const binary = this.binaryOut;
    let extra = 0;
    for (let i = 0; i < data.length; i++) {
      if (data[i] === IAC) extra++;
      else if (!binary && data[i] === 13 && data[i + 1] !== 10) extra++;
    }
    if (extra === 0) return data;
    const out = Buffer.allocUnsafe(data.length + extra);
    let j = 0;
    for (let i = 0; i < data.length; i++) {
      out[j++] = data[i];
      if (data[i] === IAC) out[j++] = IAC;
      else if (!binary && data[i] === 13 && data[i + 1] !== 10) out[j++] = 0;
    }
    return out;
  }

  /** Parses bytes from the server; returns the console data in them. */
  decode(chunk: Buffer): Buffer {
    // Fast path: plain data with no IAC (and no CR to undo outside binary mode).
    if (this.state === 'data' && chunk.indexOf(IAC) < 0 && (this.binaryIn || chunk.indexOf(13) < 0)) return chunk;
    const out = Buffer.allocUnsafe(chunk.length);
    let n = 0;
    for (const b of chunk) {
      switch (this.state) {
        case 'data':
          if (b === IAC) this.state = 'iac';
          else { out[n++] = b; if (b === 13 && !this.binaryIn) this.state = 'cr'; }
          break;
        case 'cr': // NVT: CR NUL is a bare CR, CR LF stays
          this.state = 'data';
          if (b === 0) break;
          if (b === IAC) { this.state = 'iac'; break; }
          out[n++] = b;
          if (b === 13 && !this.binaryIn) this.state = 'cr';
          break;
        case 'iac':
          if (b === IAC) { out[n++] = IAC; this.state = 'data'; }
          else if (b === WILL || b === WONT || b === DO || b === DONT) { this.cmd = b; this.state = 'cmd'; }
          else if (b === SB) { this.sb = []; this.state = 'sb'; }
          else this.state = 'data'; // NOP, GA, DM, AYT...: nothing to do
          break;
        case 'cmd':
          this.state = 'data';
          this.negotiate(this.cmd, b);
          break;
        case 'sb':
          if (b === IAC) this.state = 'sbiac';
          else if (this.sb.length < MAX_SB) this.sb.push(b);
          break;
        case 'sbiac':
          if (b === IAC) { if (this.sb.length < MAX_SB) this.sb.push(IAC); this.state = 'sb'; }
          else if (b === SE) { this.state = 'data'; this.subnegotiation(this.sb); }
          else { this.state = 'data'; } // malformed: drop the subnegotiation
          break;
      }
    }
    return out.subarray(0, n);
  }

  /** Sends an RFC 2217 command (value bytes are IAC-escaped here). */
  comPort(cmd: number, value: number[] = []): void {
    const body: number[] = [IAC, SB, OPT.COM_PORT, cmd];
    for (const v of value) { body.push(v); if (v === IAC) body.push(IAC); }
    body.push(IAC, SE);
    this.send(Buffer.from(body));
  }

  /** Telnet's own BREAK. */
  brk(): void { this.send(Buffer.from([IAC, BRK])); }
  nop(): void { this.send(Buffer.from([IAC, NOP])); }

  private request(verb: typeof WILL | typeof DO, opt: number): void {
    const map = verb === WILL ? this.us : this.him;
    if ((map.get(opt) ?? 'no') !== 'no') return;
    map.set(opt, 'wantyes');
    this.send(Buffer.from([IAC, verb, opt]));
  }

  private negotiate(verb: number, opt: number): void {
    const c = (this.counts.get(opt) ?? 0) + 1;
    this.counts.set(opt, c);
    if (c > NEGOTIATION_LIMIT) return; // a peer that will not settle: stop answering
    const reply = (v: number) => this.send(Buffer.from([IAC, v, opt]));
    const his = verb === WILL || verb === WONT;
    const map = his ? this.him : this.us;
    const agree = his ? this.heMay(opt) : this.weWill(opt) || (opt === OPT.COM_PORT && map.get(opt) === 'wantyes');
    const yes = his ? DO : WILL;
    const no = his ? DONT : WONT;
    const st = map.get(opt) ?? 'no';
    if (verb === WILL || verb === DO) {
      if (st === 'no') {
        if (agree) { map.set(opt, 'yes'); reply(yes); this.changed(opt, his, true); } else reply(no);
      } else if (st === 'wantyes') { map.set(opt, 'yes'); this.changed(opt, his, true); }
      else if (st === 'wantno') { map.set(opt, 'no'); } // RFC 1143: answer to our DONT/WONT was yes; treat as no
    } else {
      if (st === 'yes') { map.set(opt, 'no'); reply(no); this.changed(opt, his, false); }
      else if (st === 'wantyes' || st === 'wantno') { map.set(opt, 'no'); this.changed(opt, his, false); }
    }
  }

  private changed(opt: number, his: boolean, on: boolean): void {
    if (opt === OPT.COM_PORT && !his) {
      this.com.active = on;
      if (on) this.onComPort?.();
    }
  }

  private subnegotiation(sb: number[]): void {
    if (sb[0] !== OPT.COM_PORT || sb.length < 2) return;
    const code = sb[1] - 100;
    const v = sb.slice(2);
    switch (code) {
      case CPC.SIGNATURE: this.com.signature = Buffer.from(v).toString('latin1'); break;
      case CPC.SET_BAUDRATE: if (v.length >= 4) this.com.baud = ((v[0] << 24) | (v[1] << 16) | (v[2] << 8) | v[3]) >>> 0; break;
      case CPC.SET_DATASIZE: this.com.dataBits = v[0]; break;
      case CPC.SET_PARITY: this.com.parity = v[0]; break;
      case CPC.SET_STOPSIZE: this.com.stopBits = v[0]; break;
      case CPC.SET_CONTROL: this.com.control.push(v[0]); break;
      default: break; // line/modem state notifications, flow control suspend/resume: nothing to do
    }
  }
}

export interface TelnetDriverOptions {
  /** Override COM_PORT_WAIT_MS (tests). */
  comPortWaitMs?: number;
}

export class TelnetDriver implements ConsoleDriver {
  readonly type = 'telnet';
  readonly resizable = false;
  private cur?: { session: SocketSession; codec: TelnetCodec };
  private readonly wantComPort: boolean;

  constructor(private readonly cfg: TelnetConsoleConfig, private readonly opts: TelnetDriverOptions = {}) {
    const c = cfg;
    this.wantComPort = [c.baud, c.dataBits, c.parity, c.stopBits, c.flowControl, c.dtr, c.rts].some((v) => v !== undefined);
  }

  /** What the server said about its serial port on the current connection. */
  get comPort(): ComPortState | undefined { return this.cur?.codec.com; }
  /** The current connection's codec (tests check negotiation counts). */
  get codec(): TelnetCodec | undefined { return this.cur?.codec; }

  async open(events: DriverEvents): Promise<void> {
    if (this.cur && !this.cur.session.ended) throw new Error('open telnet: already open');
    const label = `${this.cfg.host}:${this.cfg.port}`;
    const sock: net.Socket = await connectSocket({ host: this.cfg.host, port: this.cfg.port }, label);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, KEEPALIVE_MS);
    const codec = new TelnetCodec(
      (b) => { if (!sock.destroyed) sock.write(b); },
      (o) => o === OPT.BINARY || o === OPT.SGA,
    );
    const session = new SocketSession(sock, events, (d) => {
      if (session.ended) return;
      const data = codec.decode(d);
      if (data.length) events.onData(data);
    });
    this.cur = { session, codec };
    // Always offer COM-PORT: a break then works as a real serial break on servers that have it.
    let comReady: (() => void) | undefined;
    const comSettled = new Promise<void>((r) => (comReady = r));
    codec.onComPort = () => { this.applyLine(codec); comReady?.(); };
    codec.start(true);
    if (this.wantComPort) {
      // Line settings first, then output flows: wait for the server's DO COM-PORT (or give up).
      const wait = this.opts.comPortWaitMs ?? COM_PORT_WAIT_MS;
      let t: NodeJS.Timeout | undefined;
      await Promise.race([comSettled, new Promise<void>((r) => (t = setTimeout(r, wait)))]);
      clearTimeout(t);
      if (session.ended) throw new Error(`telnet ${label}: connection closed during negotiation`);
      if (!codec.com.active) {
        events.onData(Buffer.from(`\r\n[cloudcons: ${label} does not offer RFC 2217; line settings not applied]\r\n`));
      }
    }
  }

  private applyLine(codec: TelnetCodec): void {
    const c = this.cfg;
    codec.comPort(CPC.SIGNATURE, []);
    if (c.baud !== undefined) codec.comPort(CPC.SET_BAUDRATE, [(c.baud >>> 24) & 255, (c.baud >>> 16) & 255, (c.baud >>> 8) & 255, c.baud & 255]);
    if (c.dataBits !== undefined) codec.comPort(CPC.SET_DATASIZE, [c.dataBits]);
    if (c.parity !== undefined) codec.comPort(CPC.SET_PARITY, [PARITY[c.parity]]);
    if (c.stopBits !== undefined) codec.comPort(CPC.SET_STOPSIZE, [STOPBITS[c.stopBits]]);
    if (c.flowControl !== undefined) {
      codec.comPort(CPC.SET_CONTROL, [{ none: CONTROL.FLOW_NONE, xonxoff: CONTROL.FLOW_XONXOFF, rtscts: CONTROL.FLOW_HARDWARE }[c.flowControl]]);
    }
    if (c.dtr !== undefined) codec.comPort(CPC.SET_CONTROL, [c.dtr ? CONTROL.DTR_ON : CONTROL.DTR_OFF]);
    if (c.rts !== undefined) codec.comPort(CPC.SET_CONTROL, [c.rts ? CONTROL.RTS_ON : CONTROL.RTS_OFF]);
  }

  write(data: Buffer): Promise<void> {
    const cur = this.cur;
    if (!cur) return Promise.reject(new Error('console connection is closed'));
    return cur.session.write(cur.codec.encode(data));
  }

  async sendBreak(): Promise<void> {
    const cur = this.cur;
    if (!cur || cur.session.ended) throw new Error('console connection is closed');
    if (cur.codec.com.active) {
      cur.codec.comPort(CPC.SET_CONTROL, [CONTROL.BREAK_ON]);
      await new Promise((r) => setTimeout(r, this.cfg.breakDelayMs));
      cur.codec.comPort(CPC.SET_CONTROL, [CONTROL.BREAK_OFF]);
    } else {
      cur.codec.brk();
    }
  }

  resize(): void { /* NAWS would size the terminal server's own shell, not the device behind it */ }

  async close(): Promise<void> {
    const cur = this.cur;
    this.cur = undefined;
    await cur?.session.close();
  }
}
