// The audit records a relay's messages cause (its console events, state changes, refusals of what
// it sent, forged or mistaken notices) are rationed per relay: a relay that floods must not flood
// the audit (each record is a chained append, and a red team wrote 3003 in a quarter second).
// A token bucket per relay: `burst` records at once (a relay with every console it may have
// restarting: each goes down and up again), refilled at `perMin` a minute. Past it records are
// counted by type, not written; the first one held back says so (`relay.audit.limited`, at most
// once a minute), and the count goes on the record (`relay.audit.suppressed`) when the relay
// disconnects, or with its first record admitted a minute or more after holding back began: a
// sustained flood writes perMin records a minute and two notes. Per process, like failed sign-ins:
// each Lambda container keeps its own buckets.

export interface RelayAuditLimits {
  /** Records a relay may cause per minute, sustained. */
  perMin: number;
  /** Records a relay may cause at once. */
  burst: number;
}

interface Bucket { tokens: number; at: number; held: Map<string, number>; heldSince: number; saidAt: number }

export class RelayAuditBudget {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limits: RelayAuditLimits,
    private readonly now: () => number,
    /** Writes a record about relay `relay` to the cloud's own stream. */
    private readonly note: (relay: string, type: 'relay.audit.limited' | 'relay.audit.suppressed', detail: string) => Promise<void>,
  ) {}

  /** Whether a record of `type` that `relay` caused may be written now. */
  async admit(relay: string, type: string): Promise<boolean> {
    const now = this.now();
    let b = this.buckets.get(relay);
    if (!b) this.buckets.set(relay, b = { tokens: this.limits.burst, at: now, held: new Map(), heldSince: 0, saidAt: -Infinity });
    b.tokens = Math.min(this.limits.burst, b.tokens + ((now - b.at) * this.limits.perMin) / 60_000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens--;
      if (b.held.size && now - b.heldSince >= 60_000) await this.flush(relay);
      return true;
    }
    if (!b.held.size) b.heldSince = now;
    if (now - b.saidAt >= 60_000) {
      b.saidAt = now;
      await this.note(relay, 'relay.audit.limited', `relay ${relay} caused more audit records than it may (relayAuditBurst ${this.limits.burst} at once, relayAuditsPerMin ${this.limits.perMin}): from now on they are counted, not written, until it is below the limit again`);
    }
    b.held.set(type, (b.held.get(type) ?? 0) + 1);
    return false;
  }

  /** Puts what was held back of `relay`'s records on the record (a count per type), if anything
   *  was; forgets the relay's bucket when it is full again (memory stays bounded by active relays). */
  async flush(relay: string): Promise<void> {
    const b = this.buckets.get(relay);
    if (!b) return;
    if (b.held.size) {
      const n = [...b.held.values()].reduce((a, x) => a + x, 0);
      const types = [...b.held].sort((x, y) => y[1] - x[1]).map(([t, k]) => `${t} x${k}`).join(', ');
      b.held = new Map();
      await this.note(relay, 'relay.audit.suppressed', `${n} audit records caused by relay ${relay} from ${new Date(b.heldSince).toISOString()} were not written (relayAuditsPerMin ${this.limits.perMin}, relayAuditBurst ${this.limits.burst}): ${types}`);
    }
    if (b.tokens >= this.limits.burst) this.buckets.delete(relay);
  }
}
