// The edge relay: keeps every configured console open (one Supervisor each), buffers its output
// with offsets until the cloud has stored it, and holds ONE outbound WebSocket to the cloud that
// multiplexes all consoles. Input from the cloud is written to a device only if its fence is not
// older than the newest fence this relay has seen for that console.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { decode, encode, PROTOCOL_LIMITS } from '../protocol/codec.ts';
import { cloudToRelay, type CloudToRelay, type ConsoleInfo, type Out, type RelayToCloud } from '../protocol/messages.ts';
import type { RelayConfig } from './config.ts';
import { createDriver } from './drivers/index.ts';
import { OutputBuffer } from './output-buffer.ts';
import { Supervisor } from './supervisor.ts';

export interface RelayOptions {
  cloudUrl: string;
  token: string;
  /** Output held per console while the cloud has not stored it. Default 64 MiB. */
  maxBufferBytes: number;
  /** Pause sending output while the socket has more than this queued. Default 1 MiB. */
  sendHighWaterBytes: number;
  /** Under continuous output, gather reads this long into one message. Default 1 ms. */
  batchMs: number;
  /** Application heartbeat interval; the link is dropped after 3 silent intervals. Default 20 s. */
  heartbeatMs: number;
  /** Reconnect backoff bounds (full jitter). Defaults 250 ms and 30 s. */
  minBackoffMs: number;
  maxBackoffMs: number;
  log: (line: string) => void;
}
/** Output waiting below this size is sent at once, never held for batching. */
const BATCH_MIN_BYTES = 2048;

export const RELAY_DEFAULTS = {
  maxBufferBytes: 64 * 1024 * 1024, sendHighWaterBytes: 1024 * 1024, batchMs: 1, heartbeatMs: 20_000, minBackoffMs: 250, maxBackoffMs: 30_000,
};

interface Con {
  name: string;
  sup: Supervisor;
  buf: OutputBuffer;
  info: ConsoleInfo;
  /** Newest fence seen; input with an older fence is stale. */
  fence: number;
  /** Absolute offset up to which output has been sent on the current link. */
  sent: number;
  pumpSoon: boolean;
  lastSend: number;
}

export class Relay {
  readonly opts: RelayOptions;
  readonly name: string;
  private readonly boot = randomBytes(8).toString('hex');
  private readonly cons = new Map<string, Con>();
  private ws?: WebSocket;
  private welcomed = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private pumpTimer?: NodeJS.Timeout;
  private lastHeard = 0;
  private pingId = 0;

  constructor(cfg: RelayConfig, opts: Partial<RelayOptions> & { cloudUrl: string; token: string }) {
    this.opts = { ...RELAY_DEFAULTS, log: (l) => console.error(l), ...opts };
    this.name = cfg.relay?.name ?? os.hostname();
    for (const [name, cc] of Object.entries(cfg.consoles)) {
      const driver = createDriver(cc);
      const sup = new Supervisor(name, cc, driver);
      const con: Con = {
        name, sup, buf: new OutputBuffer(this.opts.maxBufferBytes), fence: 0, sent: 0, pumpSoon: false, lastSend: 0,
        info: { name, type: cc.type, state: 'down', since: Date.now(), reason: 'starting', resizable: driver.resizable },
      };
      // Reads that arrive in the same turn of the event loop go out as one message (a pty hands
      // over at most 4 KiB per read); an idle console's keystroke echo is not delayed by it.
      // Under bulk output (at least BATCH_MIN_BYTES waiting and the last message went out less
      // than `batchMs` ago) reads are gathered for up to `batchMs` into messages of up to 22 KiB:
      // fewer, larger messages.
      sup.on('data', (data: Buffer, ts: number) => {
        con.buf.push(data, ts);
        if (con.pumpSoon) return;
        con.pumpSoon = true;
        const pending = con.buf.endAbs - con.sent;
        // Only bulk output waits: keystroke echoes are small and go at once even back to back.
        const busy = pending >= BATCH_MIN_BYTES && pending < PROTOCOL_LIMITS.maxRawChunk && Date.now() - con.lastSend < this.opts.batchMs;
        const go = () => { con.pumpSoon = false; this.pump(con); };
        if (busy) setTimeout(go, this.opts.batchMs); else setImmediate(go);
      });
      sup.on('state', (st: { state: 'up' | 'down'; since: number; reason?: string }) => {
        con.info = { ...con.info, state: st.state, since: st.since, reason: st.reason };
        this.opts.log(`console ${name} ${st.state}${st.reason ? `: ${st.reason}` : ''}`);
        // Sent whenever the link is open (not only once welcomed): a change between our hello and
        // the cloud's welcome would otherwise be lost. The cloud handles messages in order.
        this.send({ t: 'console', info: this.infoOf(con) });
      });
      this.cons.set(name, con);
    }
  }

  start(): void {
    for (const c of this.cons.values()) c.sup.start();
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    clearTimeout(this.pumpTimer);
    this.ws?.close(1000, 'relay stopping');
    await Promise.all([...this.cons.values()].map((c) => c.sup.stop()));
  }

  /** Console names and states, for status output. */
  consoles(): ConsoleInfo[] { return [...this.cons.values()].map((c) => this.infoOf(c)); }

  private infoOf(c: Con): ConsoleInfo { return { ...c.info, fence: c.fence || undefined }; }

  // ----------------------------------------------------------------------------------- the link
  private connect(): void {
    if (this.stopped) return;
    const url = this.opts.cloudUrl.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/relay';
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.opts.token}` }, perMessageDeflate: false, handshakeTimeout: 10_000 });
    this.ws = ws;
    this.welcomed = false;
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => this.opts.log(`cloud refused the relay connection: ${res.statusCode} ${body.trim()}`));
    });
    ws.on('open', () => {
      this.opts.log(`connected to ${this.opts.cloudUrl}`);
      this.lastHeard = Date.now();
      this.send({ t: 'hello', relay: this.name, boot: this.boot, consoles: this.consoles() });
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => {
        if (Date.now() - this.lastHeard > 3 * this.opts.heartbeatMs) { ws.terminate(); return; }
        this.send({ t: 'ping', id: ++this.pingId });
      }, this.opts.heartbeatMs);
    });
    ws.on('message', (data, isBinary) => {
      this.lastHeard = Date.now();
      const r = decode(cloudToRelay, isBinary ? data : data.toString(), Number.MAX_SAFE_INTEGER);
      if (!r.ok) { this.opts.log(`bad message from cloud: ${r.message}`); return; }
      this.onMessage(r.msg);
    });
    ws.on('close', (code, reason) => {
      clearInterval(this.heartbeat);
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.welcomed = false;
      if (this.stopped) return;
      const delay = Math.random() * Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** this.attempt++);
      this.opts.log(`disconnected from cloud (${code}${reason.length ? ` ${reason}` : ''}); reconnecting in ${Math.round(delay)} ms`);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    ws.on('error', (e) => this.opts.log(`cloud link error: ${e.message}`));
  }

  private send(msg: Out<RelayToCloud>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  private onMessage(m: CloudToRelay): void {
    switch (m.t) {
      case 'welcome': {
        this.attempt = 0;
        for (const c of this.cons.values()) {
          const end = m.ends[c.name] ?? 0;
          if (c.buf.base === null) c.buf.base = end; // first contact of this process: continue the stream
          c.sent = Math.min(Math.max(end, 0), c.buf.endAbs);
          c.buf.ack(c.sent);
        }
        this.welcomed = true;
        for (const c of this.cons.values()) this.pump(c);
        return;
      }
      case 'ack': { const c = this.cons.get(m.c); c?.buf.ack(m.o); return; }
      case 'fence': { const c = this.cons.get(m.c); if (c && m.fence > c.fence) c.fence = m.fence; return; }
      case 'in': case 'break': case 'resize': return this.deviceOp(m);
      case 'ping': this.send({ t: 'pong', id: m.id }); return;
      case 'pong': return;
      case 'error': this.opts.log(`cloud: ${m.code}: ${m.message}`); return;
    }
  }

  private deviceOp(m: Extract<CloudToRelay, { t: 'in' | 'break' | 'resize' }>): void {
    const c = this.cons.get(m.c);
    const reject = (reason: string) => this.send({ t: 'rejected', c: m.c, fence: m.fence, session: m.session, what: m.t, reason });
    if (!c) return reject(`console ${m.c} is not on relay ${this.name}`);
    if (m.fence < c.fence) return reject(`stale fence ${m.fence} (newest is ${c.fence})`);
    c.fence = m.fence;
    if (m.t === 'resize') { c.sup.resize(m.cols, m.rows); return; }
    if (c.info.state !== 'up') return reject(`console ${m.c} is down${c.info.reason ? `: ${c.info.reason}` : ''}`);
    if (m.t === 'in') {
      c.sup.write(Buffer.from(m.d, 'base64')).catch((e: Error) => reject(e.message));
    } else {
      c.sup.sendBreak().then(() => this.send({ t: 'break-sent', c: m.c, fence: m.fence, session: m.session, seq: m.seq }), (e: Error) => reject(e.message));
    }
  }

  /** Sends what the cloud has not got yet, as far as the socket's buffer allows. */
  private pump(c: Con): void {
    const ws = this.ws;
    if (!ws || !this.welcomed || ws.readyState !== WebSocket.OPEN) return;
    if (c.sent < c.buf.startAbs) {
      const n = c.buf.startAbs - c.sent;
      this.send({ t: 'gap', c: c.name, o: c.sent, n, ts: Date.now(), reason: `relay buffer full (${this.opts.maxBufferBytes} bytes) while the cloud was unreachable` });
      c.sent = c.buf.startAbs;
    }
    while (c.sent < c.buf.endAbs) {
      if (ws.bufferedAmount > this.opts.sendHighWaterBytes) {
        if (!this.pumpTimer) this.pumpTimer = setTimeout(() => { this.pumpTimer = undefined; for (const x of this.cons.values()) this.pump(x); }, 5);
        return;
      }
      const part = c.buf.read(c.sent, PROTOCOL_LIMITS.maxRawChunk)!;
      this.send({ t: 'out', c: c.name, o: c.sent, ts: part.ts, d: part.data.toString('base64') });
      c.sent += part.data.length;
      c.lastSend = Date.now();
    }
  }
}
