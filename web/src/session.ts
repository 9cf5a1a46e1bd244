// One attached console over the session WebSocket: the same protocol and write lock as the CLI
// (protocol/README.md, cli/attach.ts). History first (the last lines), then live output placed by
// stream offset, so the seam has no gap and no overlap; a lost connection re-attaches from what
// was shown. Output reaches the page as bytes (`onOutput`); everything else as events.
import type { Config } from './api.ts';

export type Mode = 'rw' | 'spy';
export interface BreakInfo { id: string; text: string; confirm?: boolean }
export interface SessionEvents {
  onOutput(bytes: Uint8Array): void;
  onAttached(info: { mode: Mode; writer?: string; user: string; state: 'up' | 'down'; type: string; breaks: BreakInfo[]; defaultBreak?: string; rights?: string[] }): void;
  onMode(mode: Mode, info: { bumpedBy?: string; writer?: string }): void;
  onWho(viewers: { session: string; user: string; mode: Mode; since: number; client?: string }[]): void;
  onState(state: 'up' | 'down', reason?: string): void;
  onNotice(text: string): void;
  onStatus(status: 'connecting' | 'attached' | 'reconnecting' | 'closed', detail?: string): void;
}

/** Live chunks ahead of the stream wait this long for the bytes before them (as the CLI). */
const REORDER_MS = 300;
const HEARTBEAT_MS = 10_000;

export function b64ToBytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
export function bytesToB64(b: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(bin);
}
const enc = new TextEncoder();

export class ConsoleSession {
  mode: Mode = 'spy';
  private ws?: WebSocket;
  private shown?: number;
  private early: { o: number; d: Uint8Array }[] = [];
  private ahead: { o: number; d: Uint8Array }[] = [];
  private aheadTimer?: number;
  private hist: Uint8Array[] = [];
  private everAttached = false;
  /** An attach sent on this connection and not answered yet (a refused re-attach ends the session). */
  private attaching = false;
  private quitting = false;
  private attempt = 0;
  private hb?: number;
  private pingId = 0;

  constructor(private readonly cfg: Config, private readonly token: string, readonly console: string,
    private readonly ev: SessionEvents, private readonly opts: { tail: number; mode: 'rw' | 'spy' | 'force'; cols?: number; rows?: number } = { tail: 1000, mode: 'spy' }) {}

  open(): void { this.connect(); }

  close(): void {
    this.quitting = true;
    clearInterval(this.hb);
    this.ws?.close(1000, 'viewer closed');
  }

  /** Typed text or bytes (only the lock holder's reach the console; the cloud audits both). */
  input(data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? enc.encode(data) : data;
    for (let i = 0; i < bytes.length; i += 16 * 1024) this.send({ t: 'in', d: bytesToB64(bytes.subarray(i, i + 16 * 1024)) });
  }
  lock(op: 'take' | 'force' | 'spy'): void { this.send({ t: 'lock', op }); }
  sendBreak(seq: string): void { this.send({ t: 'break', seq }); }
  who(): void { this.send({ t: 'who' }); }
  resize(cols: number, rows: number): void { if (this.mode === 'rw') this.send({ t: 'resize', cols, rows }); }

  private send(m: Record<string, unknown>): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ v: 1, ...m }));
    return true;
  }

  private connect(): void {
    this.ev.onStatus(this.everAttached ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.cfg.wsUrl, ['cloudcons.v1', `cloudcons.token.${this.token}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.ahead = [];
      clearTimeout(this.aheadTimer);
      this.aheadTimer = undefined;
      const where = this.shown !== undefined ? { from: this.shown } : { tail: this.opts.tail };
      const mode = this.everAttached ? (this.mode === 'rw' ? 'rw' : 'spy') : this.opts.mode;
      this.attaching = true;
      this.send({ t: 'attach', c: this.console, mode, ...where, ...(this.opts.cols ? { cols: this.opts.cols, rows: this.opts.rows } : {}), client: 'web' });
      this.hb = window.setInterval(() => this.send({ t: 'ping', id: ++this.pingId }), HEARTBEAT_MS);
    };
    ws.onmessage = (e) => {
      let m: Record<string, unknown> & { t: string };
      try { m = JSON.parse(String(e.data)); } catch { this.ev.onNotice('[bad message from the cloud]'); return; }
      this.onMessage(m);
    };
    ws.onclose = (e) => {
      clearInterval(this.hb);
      if (this.ws !== ws) return;
      if (this.quitting) { this.ev.onStatus('closed'); return; }
      // 4001 (token revoked or expired) and 4003 (rights taken away) end the session for good.
      if (e.code === 4001 || e.code === 4003 || (!this.everAttached && (e.code === 1006 || e.code === 1008))) {
        this.ev.onStatus('closed', e.reason || 'the cloud refused the connection (signed out or token revoked?)');
        return;
      }
      const delay = Math.min(5000, 250 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.ev.onStatus('reconnecting', `connection lost (${e.code}${e.reason ? ` ${e.reason}` : ''}); retrying in ${(delay / 1000).toFixed(1)} s`);
      window.setTimeout(() => { if (!this.quitting) this.connect(); }, delay);
    };
  }

  private onMessage(m: Record<string, unknown> & { t: string }): void {
    switch (m.t) {
      case 'attached': {
        this.attempt = 0;
        this.mode = m.mode === 'rw' ? 'rw' : 'spy';
        this.everAttached = true;
        this.attaching = false;
        this.ev.onAttached({ mode: this.mode, writer: m.writer as string | undefined, user: String(m.user), state: m.state as 'up' | 'down', type: String(m.type),
          breaks: (m.breaks as BreakInfo[] | undefined) ?? [], defaultBreak: m.defaultBreak as string | undefined, rights: m.rights as string[] | undefined });
        this.ev.onStatus('attached');
        this.who();
        return;
      }
      case 'history': {
        const d = b64ToBytes(String(m.d));
        if (m.kind === 'replay') { this.ev.onOutput(d); return; }
        this.hist.push(d);
        if (!m.last) return;
        const all = concat(this.hist);
        this.hist = [];
        const end = Number(m.end ?? 0);
        if (this.shown === undefined) { this.ev.onOutput(all); this.shown = end; } else this.show(end - all.length, all);
        const pending = this.early;
        this.early = [];
        for (const e of pending) this.show(e.o, e.d);
        return;
      }
      case 'out': this.show(Number(m.o), b64ToBytes(String(m.d))); return;
      case 'mode':
        this.mode = m.mode === 'rw' ? 'rw' : 'spy';
        this.ev.onMode(this.mode, { bumpedBy: m.bumpedBy as string | undefined, writer: m.writer as string | undefined });
        this.who();
        return;
      case 'who': this.ev.onWho(m.viewers as Parameters<SessionEvents['onWho']>[0]); return;
      case 'state': this.ev.onState(m.state as 'up' | 'down', m.reason as string | undefined); return;
      case 'missed': this.ev.onNotice(`[${m.bytes} bytes of output missed: this connection could not keep up]`); return;
      case 'notice': this.ev.onNotice(String(m.text)); if (/attached|detached|bumped|forced/.test(String(m.text))) this.who(); return;
      case 'error': this.ev.onNotice(`[error: ${m.message}]`); if (!this.everAttached || this.attaching) { this.quitting = true; this.ws?.close(); this.ev.onStatus('closed', String(m.message)); } return;
      case 'ping': this.send({ t: 'pong', id: m.id }); return;
      default: return;
    }
  }

  /** Bytes at stream offset `off`: only what lies past what was shown is written. */
  private show(off: number, d: Uint8Array): void {
    if (this.shown === undefined) { this.early.push({ o: off, d }); return; }
    if (off > this.shown) {
      this.ahead.push({ o: off, d });
      this.ahead.sort((a, b) => a.o - b.o);
      this.aheadTimer ??= window.setTimeout(() => this.giveUpWaiting(), REORDER_MS);
      return;
    }
    this.put(off, d);
    while (this.ahead.length && this.ahead[0].o <= this.shown) { const a = this.ahead.shift()!; this.put(a.o, a.d); }
    if (!this.ahead.length) { clearTimeout(this.aheadTimer); this.aheadTimer = undefined; }
  }

  private put(off: number, d: Uint8Array): void {
    const skip = Math.max(0, this.shown! - off);
    if (skip < d.length) { this.ev.onOutput(d.subarray(skip)); this.shown = off + d.length; }
  }

  private giveUpWaiting(): void {
    this.aheadTimer = undefined;
    const first = this.ahead.shift();
    if (!first) return;
    this.ev.onNotice(`[${first.o - this.shown!} bytes of output did not arrive]`);
    this.shown = first.o;
    this.show(first.o, first.d);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
