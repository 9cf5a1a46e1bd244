// How many replay, export, grep and history requests run at once: per user (over all their
// WebSocket sessions and HTTP requests) and in the whole process. A request takes a slot when its
// rights are known and gives it back when its work ends: done, failed, or its requester left.
// Per process: embedded that is the whole cloud; on Lambda each invocation is its own process with
// its own time limit, and the account's concurrency and the stage throttle bound the rest.
import { RateLimited } from '../../protocol/errors.ts';

export class QuerySlots {
  private readonly byUser = new Map<string, number>();
  private total = 0;

  constructor(private readonly perUser: number, private readonly max: number) {}

  /** A slot for one request of `user`, or RateLimited naming the limit that was reached. The
   *  returned function gives the slot back; calling it again does nothing. */
  take(user: string): () => void {
    const mine = this.byUser.get(user) ?? 0;
    if (mine >= this.perUser) throw new RateLimited(`user ${user} has ${mine} replay, export, grep or history requests running, the limit (maxQueriesPerUser ${this.perUser}): wait for one to end`);
    if (this.total >= this.max) throw new RateLimited(`this cloud has ${this.total} replay, export, grep or history requests running, its limit (maxQueries ${this.max}): try again in a moment`);
    this.byUser.set(user, mine + 1);
    this.total++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.total--;
      const n = (this.byUser.get(user) ?? 1) - 1;
      if (n > 0) this.byUser.set(user, n); else this.byUser.delete(user);
    };
  }

  /** Requests running now, of one user or all. */
  running(user?: string): number { return user === undefined ? this.total : this.byUser.get(user) ?? 0; }
}
