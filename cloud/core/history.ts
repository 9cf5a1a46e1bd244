// History: stored output sent over a session's connection (an attach's last lines, a re-attach
// from where it left off, a replay), read a block at a time and sent as the connection drains,
// within the user's query slots (slots.ts); and, in `watched` mode, the catch-up that makes a
// replay of an unwatched console current first.
import { PROTOCOL_LIMITS } from '../../protocol/codec.ts';
import { RateLimited } from '../../protocol/errors.ts';
import type { CloudToClient, Out } from '../../protocol/messages.ts';
import type { CoreContext } from './core-context.ts';
import type { Principal } from './ports.ts';

export class History {
  constructor(private readonly c: CoreContext) {}

  /** History from output offset `from` to the end (at most maxHistoryBytes; the rest is reported
   *  as missed), for a client that re-attaches after losing its connection. */
  async sendSince(conn: string, who: Principal, console: string, from: number): Promise<void> {
    const end = await this.c.log.end(console);
    const start = Math.min(end, Math.max(from, end - this.c.opts.maxHistoryBytes));
    await this.sendRange(conn, who, console, start, end, 'attach', from);
  }

  /** The last `lines` lines of output as history, at most maxHistoryBytes of them: the search for
   *  their start looks back no further than that, so what is scanned is bounded by what is sent. */
  async sendHistory(conn: string, who: Principal, console: string, lines: number, kind: 'attach' | 'replay'): Promise<void> {
    const end = await this.c.log.end(console);
    const start = lines > 0 ? await this.c.log.lineStart(console, lines, end, Math.max(0, end - this.c.opts.maxHistoryBytes)) : end;
    await this.sendRange(conn, who, console, start, end, kind);
  }

  /** Output [start, end) as history frames, read a block at a time and sent as the connection
   *  drains (the sender's `drained`), so a history never piles up in memory; it stops as soon as
   *  the connection is gone. Holds one of the user's query slots meanwhile: with none free, none of
   *  it is sent and the client is told (an attach still gets the last frame, whose `end` places
   *  the live output after it). `askedFrom`: where a re-attach asked to start (what it will not
   *  get is reported as missed, never silently). */
  private async sendRange(conn: string, who: Principal, console: string, start: number, end: number, kind: 'attach' | 'replay', askedFrom?: number): Promise<void> {
    let release = (): void => {};
    if (start < end) {
      try { release = this.c.queries.take(who.name); } catch (e) {
        if (!(e instanceof RateLimited)) throw e;
        await this.c.sendClient(conn, { t: 'notice', text: `[cloudcons: history not sent: ${e.message}]` });
        start = end;
      }
    }
    try {
      if (askedFrom !== undefined && start > askedFrom) await this.c.sendClient(conn, { t: 'missed', bytes: start - askedFrom });
      const frame = PROTOCOL_LIMITS.maxRawChunk;
      let acc: Buffer[] = [], size = 0;
      for await (const it of this.c.log.items(console, start, end)) {
        if (it.kind !== 'data') continue;
        acc.push(it.data);
        size += it.data.length;
        // Full frames go out as they fill; the rest waits for more (the last one carries `last`).
        while (size > frame) {
          const all = acc.length === 1 ? acc[0] : Buffer.concat(acc, size);
          if (!(await this.sendHistoryFrame(conn, { t: 'history', kind, d: all.subarray(0, frame).toString('base64'), last: false }))) return;
          acc = [all.subarray(frame)];
          size -= frame;
        }
      }
      const rest = acc.length === 1 ? acc[0] : Buffer.concat(acc, size);
      await this.c.sendClient(conn, { t: 'history', kind, d: rest.toString('base64'), last: true, end });
    } finally {
      release();
    }
  }

  /** Sends a history frame, then waits until the connection can take more; false once it is gone. */
  private async sendHistoryFrame(conn: string, msg: Out<CloudToClient>): Promise<boolean> {
    if (!(await this.c.sendClient(conn, msg))) return false;
    return this.c.p.sender.drained ? this.c.p.sender.drained(conn) : true;
  }

  /** In `watched` mode, before a replay up to now of a console nobody watches: asks its relay for
   *  the output it has not sealed yet (sent once, live) and waits until the stored end stops
   *  moving, so replay is current although nothing streams. Returns at once otherwise. */
  async catchUp(console: string): Promise<void> {
    if (this.c.opts.live !== 'watched') return;
    const rec = await this.c.p.consoles.get(console);
    if (!rec?.relayConn || (await this.c.p.sessions.byConsole(console)).length) return;
    let last = await this.c.log.end(console);
    if (!(await this.c.toRelay(console, rec.relayConn, { t: 'watch', c: console, on: true, once: true, from: last }))) return;
    const deadline = Date.now() + this.c.opts.catchUpMs;
    for (let still = 0; still < 3 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 50));
      const end = await this.c.log.end(console);
      still = end === last ? still + 1 : 0;
      last = end;
    }
  }
}
