// ConnectionSender over local WebSocket connections, with the slow-viewer policy: live output to a
// connection whose send buffer is above `highWaterBytes` is dropped and counted; when the buffer
// drains the viewer first gets a `missed` message with the count. A connection that is behind and
// reads nothing for `stallMs`, or whose buffer passes `hardLimitBytes`, is closed with a reason. So a stalled
// viewer never slows the console, the relay or other viewers, and memory stays bounded.
import type { WebSocket } from 'ws';
import { encode } from '../../protocol/codec.ts';
import type { ConnectionSender, SendOptions } from '../core/ports.ts';

export interface SenderLimits {
  /** Send-buffer level above which live output to a viewer is dropped. Default 8 MiB. */
  highWaterBytes: number;
  /** Send-buffer level at which a connection is closed as too slow. Default 32 MiB. */
  hardLimitBytes: number;
  /** A viewer that is behind and reads nothing at all for this long is disconnected. Default 60 s. */
  stallMs: number;
}
export const SENDER_DEFAULTS: SenderLimits = { highWaterBytes: 8 * 1024 * 1024, hardLimitBytes: 32 * 1024 * 1024, stallMs: 60_000 };

/** A viewer that is behind: output missed since `since`, and when its send buffer last shrank. */
interface Behind { missed: number; since: number; buffered: number; progress: number }

export class WsSender implements ConnectionSender {
  private readonly behind = new Map<string, Behind>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly sockets: Map<string, WebSocket>, private readonly limits: SenderLimits, private readonly log: (l: string) => void) {
    // Viewers that are behind are checked on a timer too, not only when output arrives: a stalled
    // one is found on a quiet console, and a recovered one hears what it missed at once.
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, Math.max(50, limits.stallMs / 4)));
    this.sweeper.unref();
  }

  async send(conn: string, frame: string, opts?: SendOptions): Promise<boolean> {
    const ws = this.sockets.get(conn);
    if (!ws || ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount > this.limits.hardLimitBytes) {
      this.drop(conn, ws, 1008, `connection too slow: ${ws.bufferedAmount} bytes waiting`);
      return true;
    }
    if (opts?.droppable) {
      const b = this.behind.get(conn);
      if (ws.bufferedAmount > this.limits.highWaterBytes) {
        if (b) b.missed += opts.droppable.bytes;
        else this.behind.set(conn, { missed: opts.droppable.bytes, since: Date.now(), buffered: ws.bufferedAmount, progress: Date.now() });
        return true;
      }
      if (b) this.caughtUp(conn, ws, b);
    }
    ws.send(frame);
    return true;
  }

  private caughtUp(conn: string, ws: WebSocket, b: Behind): void {
    this.behind.delete(conn);
    ws.send(encode({ t: 'missed', bytes: b.missed }));
  }

  private sweep(): void {
    const now = Date.now();
    for (const [conn, b] of this.behind) {
      const ws = this.sockets.get(conn);
      if (!ws || ws.readyState !== ws.OPEN) { this.behind.delete(conn); continue; }
      if (ws.bufferedAmount <= this.limits.highWaterBytes) { this.caughtUp(conn, ws, b); continue; }
      if (ws.bufferedAmount < b.buffered) b.progress = now;
      b.buffered = ws.bufferedAmount;
      if (now - b.progress > this.limits.stallMs) {
        this.log(`${conn}: viewer stalled, ${b.missed} bytes missed; disconnecting`);
        this.behind.delete(conn);
        this.drop(conn, ws, 4001, `too slow: read nothing for ${this.limits.stallMs} ms and missed ${b.missed} bytes of output`);
      }
    }
  }

  private drop(conn: string, ws: WebSocket, code: number, reason: string): void {
    ws.close(code, reason.slice(0, 120));
    // The close frame queues behind what the viewer does not read: do not wait for it.
    setTimeout(() => { if (this.sockets.get(conn) === ws) ws.terminate(); }, 1000).unref();
  }

  async close(conn: string, code: number, reason: string): Promise<void> {
    this.sockets.get(conn)?.close(code, reason);
  }

  forget(conn: string): void { this.behind.delete(conn); }

  stop(): void { clearInterval(this.sweeper); }
}
