// In-memory LockStore: the embedded cloud's write lock. Same semantics as the DynamoDB adapter
// (one item per console, conditional updates); single-threaded JS makes each call atomic.
import { BadParameter, Conflict } from '../../../protocol/errors.ts';
import { fenceExhausted, FENCE_RULE, isFence, MAX_FENCE } from '../../../protocol/bounds.ts';
import type { AcquireResult, LapsedHolder, Lock, LockStore } from '../../core/ports.ts';

/** The holder of `lock` if its lease has lapsed by `now` (what AcquireResult.lapsed reports). */
export function lapsedHolder(lock: Lock, now: number): LapsedHolder | undefined {
  return lock.session !== undefined && lock.expiresAt <= now ? { session: lock.session, user: lock.user!, fence: lock.fence, expiresAt: lock.expiresAt } : undefined;
}

export class MemoryLockStore implements LockStore {
  private readonly locks = new Map<string, Lock>();

  async get(console: string): Promise<Lock> {
    return { ...(this.locks.get(console) ?? { console, fence: 0, expiresAt: 0 }) };
  }

  async acquire(console: string, holder: { session: string; user: string }, opts: { force: boolean; leaseMs: number; now: number }): Promise<AcquireResult> {
    const cur = this.locks.get(console) ?? { console, fence: 0, expiresAt: 0 };
    const held = cur.session !== undefined && cur.expiresAt > opts.now;
    if (cur.session === holder.session && held && !opts.force) {
      cur.expiresAt = opts.now + opts.leaseMs;
      return { ok: true, lock: { ...cur } };
    }
    if (held && !opts.force) return { ok: false, lock: { ...cur } };
    if (cur.fence >= MAX_FENCE) throw new Conflict(fenceExhausted(console));
    const bumped = held && cur.session !== holder.session ? { session: cur.session!, user: cur.user! } : undefined;
    const lapsed = lapsedHolder(cur, opts.now);
    const next: Lock = { console, session: holder.session, user: holder.user, fence: cur.fence + 1, expiresAt: opts.now + opts.leaseMs };
    this.locks.set(console, next);
    return { ok: true, lock: { ...next }, ...(bumped ? { bumped } : {}), ...(lapsed ? { lapsed } : {}) };
  }

  async renew(console: string, session: string, fence: number, leaseMs: number, now: number): Promise<boolean> {
    const cur = this.locks.get(console);
    if (!cur || cur.session !== session || cur.fence !== fence || cur.expiresAt <= now) return false;
    cur.expiresAt = now + leaseMs;
    return true;
  }

  async release(console: string, session: string, fence: number): Promise<boolean> {
    const cur = this.locks.get(console);
    if (!cur || cur.session !== session || cur.fence !== fence) return false;
    this.locks.set(console, { console, fence: cur.fence, expiresAt: 0 });
    return true;
  }

  async seedFence(console: string, fence: number): Promise<void> {
    if (!isFence(fence)) throw new BadParameter(`seedFence ${console}: fence must be ${FENCE_RULE}, got ${fence}`);
    const cur = this.locks.get(console) ?? { console, fence: 0, expiresAt: 0 };
    if (fence > cur.fence) this.locks.set(console, { ...cur, fence });
  }
}
