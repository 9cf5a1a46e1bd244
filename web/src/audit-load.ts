// Loading the audit of many consoles for the audit page: a few requests at a time (a browser
// refuses thousands at once: with 2000 consoles the page once failed to load at all), and at most
// a budget of records over all of them, each console its share of the newest. What was cut short
// is named, so the page can say so and load one console in full when it is picked.

export interface AuditLoadOptions {
  /** Requests in flight at once. Default 6 (a browser's connections per host). */
  concurrency: number;
  /** Records over all consoles. Default 20000. */
  budget: number;
  /** Records of one console, at most (and when it is loaded alone). Default 5000. */
  perConsole: number;
  /** Records of one console, at least, however many consoles there are. Default 20. */
  minPerConsole: number;
}
export const AUDIT_LOAD_DEFAULTS: AuditLoadOptions = { concurrency: 6, budget: 20_000, perConsole: 5000, minPerConsole: 20 };

/** How many of each console's newest records to load when `n` consoles are loaded together. */
export function shareOf(n: number, o: AuditLoadOptions = AUDIT_LOAD_DEFAULTS): number {
  return Math.max(o.minPerConsole, Math.min(o.perConsole, Math.floor(o.budget / Math.max(1, n))));
}

/** Calls `fetchOne(name, limit)` for every console, `concurrency` at a time, and gathers the
 *  records. A console that fails is named in `failed` (the others still load); one that returned
 *  its whole share may have more (`cut`). `progress` is told as consoles finish; `stopped()` true
 *  ends the loading early (the page was left). */
export async function loadAudits<T>(names: readonly string[], fetchOne: (name: string, limit: number) => Promise<T[]>, opts: Partial<AuditLoadOptions> & {
  progress?: (done: number, total: number) => void; stopped?: () => boolean;
} = {}): Promise<{ records: T[]; limit: number; cut: string[]; failed: { name: string; error: string }[] }> {
  const o = { ...AUDIT_LOAD_DEFAULTS, ...opts };
  const limit = shareOf(names.length, o);
  const lists: T[][] = [];
  const cut: string[] = [];
  const failed: { name: string; error: string }[] = [];
  let next = 0, done = 0;
  const worker = async () => {
    while (next < names.length && !opts.stopped?.()) {
      const i = next++;
      try {
        const got = await fetchOne(names[i], limit);
        lists[i] = got;
        if (got.length >= limit) cut.push(names[i]);
      } catch (e) {
        failed.push({ name: names[i], error: (e as Error).message });
      }
      opts.progress?.(++done, names.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, names.length) }, worker));
  return { records: lists.flat(), limit, cut: names.filter((n) => cut.includes(n)), failed };
}
