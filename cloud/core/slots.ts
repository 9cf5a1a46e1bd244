// Work that holds memory or time while it runs, counted per holder and in the whole process, each
// bounded: a request takes a slot before it does the work and gives it back when the work ends
// (done, failed, or its requester left). Per process: embedded that is the whole cloud; on Lambda
// each invocation is its own process with its own time limit, and the account's concurrency and
// the stage throttle bound the rest.
//   QuerySlots   replay, export, grep and history requests, per user over all their WebSocket
//                sessions and HTTP requests (a slot is taken once the request's rights are known)
//   UploadSlots  segment uploads through the cloud, per relay: each may hold up to maxSegmentBytes
//                of body in memory while it is verified, so their number bounds what uploads take
//                (http-app.ts takes a slot before it reads a byte of the body)
import { RateLimited } from '../../protocol/errors.ts';

export class Slots {
  private readonly byHolder = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perHolder: number,
    private readonly max: number,
    /** The refusal when `holder` has `n` slots (its limit), or when the process has `n` (`holder` undefined). */
    private readonly refusal: (n: number, holder?: string) => string,
  ) {}

  /** A slot for one piece of work of `holder`, or RateLimited naming the limit that was reached.
   *  The returned function gives the slot back; calling it again does nothing. */
  take(holder: string): () => void {
    const mine = this.byHolder.get(holder) ?? 0;
    if (mine >= this.perHolder) throw new RateLimited(this.refusal(mine, holder));
    if (this.total >= this.max) throw new RateLimited(this.refusal(this.total));
    this.byHolder.set(holder, mine + 1);
    this.total++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.total--;
      const n = (this.byHolder.get(holder) ?? 1) - 1;
      if (n > 0) this.byHolder.set(holder, n); else this.byHolder.delete(holder);
    };
  }

  /** Slots taken now, by one holder or in all. */
  running(holder?: string): number { return holder === undefined ? this.total : this.byHolder.get(holder) ?? 0; }
}

export class QuerySlots extends Slots {
  constructor(perUser: number, max: number) {
    super(perUser, max, (n, user) => (user !== undefined
      ? `user ${user} has ${n} replay, export, grep or history requests running, the limit (maxQueriesPerUser ${perUser}): wait for one to end`
      : `this cloud has ${n} replay, export, grep or history requests running, its limit (maxQueries ${max}): try again in a moment`));
  }
}

export class UploadSlots extends Slots {
  constructor(perRelay: number, max: number) {
    super(perRelay, max, (n, relay) => (relay !== undefined
      ? `relay ${relay} has ${n} segment uploads in progress, its limit (maxUploadsPerRelay ${perRelay}): retry when one is done`
      : `${n} segment uploads are in progress, this cloud's limit (maxUploads ${max}): retry later`));
  }
}
