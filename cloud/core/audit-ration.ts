// The audit records one relay or one user can cause without anything being done are rationed, so
// nobody can flood the audit (each record is a chained append, and a red team wrote 3003 in a
// quarter second from a relay): for a relay, its console events, state changes and refusals of
// what it sent; for a user, refusals of what they asked (denied input, breaks, resizes, locks and
// actions, refused sessions and connections) and sign-ins. What a user or relay was allowed to do
// is always recorded in full.
// A token bucket per relay and per user: `burst` records at once (a relay with every console it may
// have restarting: each goes down and up again), refilled at `perMin` a minute. Past it records are
// counted by type, not written; the first one held back says so (`<kind>.audit.limited`, at most
// once a minute), and the count goes on the record (`<kind>.audit.suppressed`) when the relay
// disconnects or the user's connection closes, at the next sweep a minute or more after holding
// back began (flushDue), or with the first record admitted then: a sustained flood writes perMin
// records a minute and two notes. Per process, like failed sign-ins: each Lambda container keeps
// its own buckets.

export interface AuditRationLimits {
  /** Records one relay (user) may cause per minute, sustained. */
  perMin: number;
  /** Records one relay (user) may cause at once. */
  burst: number;
}

export type RationKind = 'relay' | 'user';

interface Bucket { tokens: number; at: number; held: Map<string, number>; heldSince: number; saidAt: number }

export class AuditRation {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly kind: RationKind,
    private readonly limits: AuditRationLimits,
    private readonly now: () => number,
    /** Writes a record about `key` (a relay's or a user's name) to the cloud's own stream. */
    private readonly note: (key: string, type: `${RationKind}.audit.limited` | `${RationKind}.audit.suppressed`, detail: string) => Promise<void>,
  ) {}

  /** The options that set the limits, as the records name them. */
  private get names(): string { return `${this.kind}AuditsPerMin ${this.limits.perMin}, ${this.kind}AuditBurst ${this.limits.burst}`; }

  private refill(b: Bucket, now: number): void {
    b.tokens = Math.min(this.limits.burst, b.tokens + ((now - b.at) * this.limits.perMin) / 60_000);
    b.at = now;
  }

  /** Whether a record of `type` that `key` caused may be written now. */
  async admit(key: string, type: string): Promise<boolean> {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, b = { tokens: this.limits.burst, at: now, held: new Map(), heldSince: 0, saidAt: -Infinity });
    this.refill(b, now);
    if (b.tokens >= 1) {
      b.tokens--;
      if (b.held.size && now - b.heldSince >= 60_000) await this.flush(key);
      return true;
    }
    if (!b.held.size) b.heldSince = now;
    if (now - b.saidAt >= 60_000) {
      b.saidAt = now;
      await this.note(key, `${this.kind}.audit.limited`, `${this.kind} ${key} caused more audit records than it may (${this.kind}AuditBurst ${this.limits.burst} at once, ${this.kind}AuditsPerMin ${this.limits.perMin}): from now on they are counted, not written, until it is below the limit again`);
    }
    b.held.set(type, (b.held.get(type) ?? 0) + 1);
    return false;
  }

  /** Puts what was held back of `key`'s records on the record (a count per type), if anything
   *  was; forgets the bucket when it is full again (memory stays bounded by active relays and users). */
  async flush(key: string): Promise<void> {
    const b = this.buckets.get(key);
    if (!b) return;
    if (b.held.size) {
      const n = [...b.held.values()].reduce((a, x) => a + x, 0);
      const types = [...b.held].sort((x, y) => y[1] - x[1]).map(([t, k]) => `${t} x${k}`).join(', ');
      b.held = new Map();
      await this.note(key, `${this.kind}.audit.suppressed`, `${n} audit records caused by ${this.kind} ${key} from ${new Date(b.heldSince).toISOString()} were not written (${this.names}): ${types}`);
    }
    this.refill(b, this.now());
    if (b.tokens >= this.limits.burst) this.buckets.delete(key);
  }

  /** Flushes every count held back for a minute or more, and forgets full buckets: run now and
   *  then (the embedded cloud's sweep, each Lambda invocation), so a flood that stopped is on the
   *  record even when nothing else happens. */
  async flushDue(): Promise<void> {
    const now = this.now();
    for (const [key, b] of [...this.buckets]) {
      if (b.held.size ? now - b.heldSince >= 60_000 : true) await this.flush(key);
    }
  }
}
