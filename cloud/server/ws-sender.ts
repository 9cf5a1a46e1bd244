// ConnectionSender over local WebSocket connections, with the slow-viewer policy: live output to a
// connection whose send buffer is above `highWaterBytes` is dropped and counted; when the buffer
// drains the viewer first gets a `missed` message with the count. A connection that stays behind
// for `stallMs`, or whose buffer passes `hardLimitBytes`, is closed with a reason. So a stalled
// viewer never slows the console, the relay or other viewers, and memory stays bounded.
import type { WebSocket } from 'ws';
import { encode } from '../../protocol/codec.ts';
import type { ConnectionSender, SendOptions } from '../core/ports.ts';

export interface SenderLimits {
  /** Send-buffer level above which live output to a viewer is dropped. Default 8 MiB. */
  highWaterBytes: number;
  /** Send-buffer level at which a connection is closed as too slow. Default 32 MiB. */
  hardLimitBytes: number;
  /** A viewer that keeps missing output for this long is disconnected. Default 60 s. */
  stallMs: number;
}
export const SENDER_DEFAULTS: SenderLimits = { highWaterBytes: 8 * 1024 * 1024, hardLimitBytes: 32 * 1024 * 1024, stallMs: 60_000 };

interface Behind { missed: number; since: number }

export class WsSender implements ConnectionSender {
  private readonly behind = new Map<string, Behind>();
  constructor(private readonly sockets: Map<string, WebSocket>, private readonly limits: SenderLimits, private readonly log: (l: string) => void) {}

  async send(conn: string, frame: string, opts?: SendOptions): Promise<boolean> {
    const ws = this.sockets.get(conn);
    if (!ws || ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount > this.limits.hardLimitBytes) {
      ws.close(1008, `connection too slow: ${ws.bufferedAmount} bytes waiting`);
      setTimeout(() => ws.terminate(), 1000).unref();
      return true;
    }
    if (opts?.droppable) {
      const b = this.behind.get(conn);
      if (ws.bufferedAmount > this.limits.highWaterBytes) {
        if (b) {
          b.missed += opts.droppable.bytes;
          if (Date.now() - b.since > this.limits.stallMs) {
            this.log(`${conn}: viewer stalled, ${b.missed} bytes missed; disconnecting`);
            ws.close(4001, `too slow: missed ${b.missed} bytes of output over ${this.limits.stallMs} ms`);
            // The close frame queues behind what the viewer does not read: do not wait for it.
            setTimeout(() => ws.terminate(), 1000).unref();
          }
        } else this.behind.set(conn, { missed: opts.droppable.bytes, since: Date.now() });
        return true;
      }
      if (b) {
        this.behind.delete(conn);
        ws.send(encode({ t: 'missed', bytes: b.missed }));
      }
    }
    ws.send(frame);
    return true;
  }

  async close(conn: string, code: number, reason: string): Promise<void> {
    this.sockets.get(conn)?.close(code, reason);
  }

  forget(conn: string): void { this.behind.delete(conn); }
}
