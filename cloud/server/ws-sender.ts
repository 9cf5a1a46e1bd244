// ConnectionSender over local WebSocket connections, with the slow-viewer policy.
//
// Every viewer has a cursor: the output offset it has been sent up to. Live output goes straight
// out while the viewer keeps up. When its send buffer passes `highWaterBytes`, live messages are
// no longer queued for it (memory stays bounded); once the buffer drains, the bytes it did not get
// are read back from the OutputStore and sent in offset order, then live output resumes where the
// catch-up ended. So a slow viewer gets every byte, later, never twice, and it never slows the
// console, the relay or other viewers. Only bytes that are not in the store (a recorded gap) are
// reported to it as `missed`. A viewer that is behind and reads nothing at all for `stallMs`, or
// whose buffer passes `hardLimitBytes`, is disconnected with a reason.
import type { WebSocket } from 'ws';
import { chunks, closeReason, encode } from '../../protocol/codec.ts';
import type { ConnectionSender, OutputStore, SendOptions } from '../core/ports.ts';
import type { Log } from '../../protocol/log.ts';

export interface SenderLimits {
  /** Send-buffer level above which a viewer stops getting live output and catches up from the store later. Default 8 MiB. */
  highWaterBytes: number;
  /** Send-buffer level at which a connection is closed as too slow. Default 32 MiB. */
  hardLimitBytes: number;
  /** A viewer that is behind and reads nothing at all for this long is disconnected. Default 60 s. */
  stallMs: number;
  /** History (attach, replay) is sent while a connection's send buffer is below this; above it the
   *  sending waits for the buffer to drain, so a history never piles up in memory. Default 256 KiB. */
  historyBufferBytes: number;
}
export const SENDER_DEFAULTS: SenderLimits = { highWaterBytes: 8 * 1024 * 1024, hardLimitBytes: 32 * 1024 * 1024, stallMs: 60_000, historyBufferBytes: 256 * 1024 };

/** Bytes read from the store per catch-up step. */
const CATCH_UP_STEP = 256 * 1024;
/** While a viewer catches up, how often its send buffer is checked for room. */
const CATCH_UP_POLL_MS = 5;
/** Close code for a connection that reads too slowly: a client reconnects after it (4001, a token
 *  that stopped counting, and 4003, rights taken away, end its session for good). */
const TOO_SLOW = 4008;

interface Cursor {
  console: string;
  /** Offset up to which this viewer has been sent output. */
  next: number;
  behind: boolean;
  /** Set when live output was held back during a catch-up step (so the step must run again). */
  dirty: boolean;
  running: boolean;
  /** A catch-up waiting for the viewer's buffer to drain. */
  retry?: NodeJS.Timeout;
  buffered: number;
  progress: number;
}

export class WsSender implements ConnectionSender {
  private readonly cursors = new Map<string, Cursor>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly sockets: Map<string, WebSocket>,
    private readonly limits: SenderLimits,
    private readonly log: Log,
    private output?: Pick<OutputStore, 'readAt'>,
  ) {
    // Viewers that are behind are checked on a timer, not only when output arrives: a drained one
    // catches up at once, and a stalled one is found on a quiet console.
    this.sweeper = setInterval(() => this.sweep(), Math.min(250, Math.max(20, limits.stallMs / 4)));
    this.sweeper.unref();
  }

  /** Wires the store catch-up reads from (the store is created after the sender). */
  setOutput(output: Pick<OutputStore, 'readAt'>): void { this.output = output; }

  async send(conn: string, frame: string, opts?: SendOptions): Promise<boolean> {
    const ws = this.sockets.get(conn);
    if (!ws || ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount > this.limits.hardLimitBytes) {
      this.drop(conn, ws, 1008, `connection too slow: ${ws.bufferedAmount} bytes waiting`);
      return true;
    }
    const live = opts?.live;
    if (live && this.output) {
      let c = this.cursors.get(conn);
      if (!c || c.console !== live.console) {
        c = { console: live.console, next: live.offset, behind: false, dirty: false, running: false, buffered: 0, progress: Date.now() };
        this.cursors.set(conn, c);
      }
      if (live.offset + live.bytes <= c.next) return true; // already delivered by a catch-up
      if (c.behind) { c.dirty = true; return true; }
      if (live.offset !== c.next || ws.bufferedAmount > this.limits.highWaterBytes) {
        // Not contiguous with what this viewer has, or it cannot take more now: catch up later.
        c.behind = true;
        c.dirty = true;
        c.buffered = ws.bufferedAmount;
        c.progress = Date.now();
        return true;
      }
      c.next = live.offset + live.bytes;
    }
    ws.send(frame);
    return true;
  }

  /** Sends held-back output from the store while the viewer's buffer has room. */
  private async catchUp(conn: string, c: Cursor): Promise<void> {
    if (c.running || !this.output) return;
    c.running = true;
    try {
      for (;;) {
        const ws = this.sockets.get(conn);
        if (!ws || ws.readyState !== ws.OPEN || this.cursors.get(conn) !== c) return;
        if (ws.bufferedAmount > this.limits.highWaterBytes / 2) {
          // Look again soon, not at the next sweep (250 ms): a viewer draining at 30 MB/s empties
          // half the high-water mark in ~130 ms, and waiting for the sweep idled it (a 50 MB flood
          // reached the terminal at 5-12 MB/s instead of ~20).
          if (!c.retry) c.retry = setTimeout(() => { c.retry = undefined; void this.catchUp(conn, c); }, CATCH_UP_POLL_MS).unref();
          return;
        }
        c.dirty = false;
        const r = await this.output.readAt(c.console, c.next, CATCH_UP_STEP);
        if (r.offset > c.next) ws.send(encode({ t: 'missed', bytes: r.offset - c.next }));
        let o = r.offset;
        for (const part of chunks(r.data)) {
          ws.send(encode({ t: 'out', o, d: part.toString('base64') }));
          o += part.length;
        }
        c.next = o;
        if (!r.data.length && r.offset === c.next && !c.dirty) { c.behind = false; return; }
      }
    } catch (e) {
      this.log(`${conn}: catch-up from the store failed: ${(e as Error).message}`, { level: 'error' });
    } finally {
      c.running = false;
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [conn, c] of this.cursors) {
      if (!c.behind) continue;
      const ws = this.sockets.get(conn);
      if (!ws || ws.readyState !== ws.OPEN) { this.cursors.delete(conn); continue; }
      if (ws.bufferedAmount < c.buffered || ws.bufferedAmount <= this.limits.highWaterBytes / 2) c.progress = now;
      c.buffered = ws.bufferedAmount;
      if (now - c.progress > this.limits.stallMs) {
        this.log(`${conn}: viewer stalled; disconnecting`, { level: 'warn' });
        this.cursors.delete(conn);
        this.drop(conn, ws, TOO_SLOW, `too slow: read nothing for ${this.limits.stallMs} ms`);
        continue;
      }
      void this.catchUp(conn, c);
    }
  }

  private drop(conn: string, ws: WebSocket, code: number, reason: string): void {
    ws.close(code, closeReason(reason));
    // The close frame queues behind what the viewer does not read: do not wait for it.
    setTimeout(() => { if (this.sockets.get(conn) === ws) ws.terminate(); }, 1000).unref();
  }

  async drained(conn: string): Promise<boolean> {
    let last = -1, progress = Date.now();
    for (;;) {
      const ws = this.sockets.get(conn);
      if (!ws || ws.readyState !== ws.OPEN) return false;
      const buffered = ws.bufferedAmount;
      if (buffered <= this.limits.historyBufferBytes) return true;
      const now = Date.now();
      if (last < 0 || buffered < last) progress = now;
      last = buffered;
      if (now - progress > this.limits.stallMs) {
        this.log(`${conn}: history reader stalled; disconnecting`, { level: 'warn' });
        this.drop(conn, ws, TOO_SLOW, `too slow: read nothing for ${this.limits.stallMs} ms`);
        return false;
      }
      await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
    }
  }

  /** Connections the cloud closed (a token that stopped counting, a session ended): what they
   *  still send is not handled (closing(conn)). */
  private readonly closed = new Set<string>();

  async close(conn: string, code: number, reason: string): Promise<void> {
    const ws = this.sockets.get(conn);
    if (!ws) return;
    this.closed.add(conn);
    // Within a second, whether or not the peer answers the close handshake.
    this.drop(conn, ws, code, reason);
  }

  /** Whether the cloud closed `conn` (its messages still in flight are dropped). */
  closing(conn: string): boolean { return this.closed.has(conn); }

  forget(conn: string): void { this.cursors.delete(conn); this.closed.delete(conn); }

  stop(): void { clearInterval(this.sweeper); }
}
