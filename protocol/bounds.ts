// Bounds on the numbers a peer sends that the receiver turns into dates and counters: one rule for
// the wire messages (messages.ts), the segment format (segment.ts) and the cloud's stores.

/** The latest time a message or segment may carry, in ms since the epoch: 9999-12-31T23:59:59.999Z,
 *  the last date every formatter (ISO strings, asciicast, `--since`) can show. */
export const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
export const TIME_RULE = `a time in ms since the epoch from 0 to ${MAX_TIME_MS} (9999-12-31)`;

/** The highest offset a console's stream may reach: 2^50 bytes (1 PiB; a console at 115200 baud
 *  would take 3 million years), far below 2^53, where offsets stop being exact. An `out` starting
 *  above it, or a `welcome` saying a stream ends above it, is a bad frame: a relay that continued
 *  there would soon give its output offsets that no longer add up. */
export const MAX_STREAM_OFFSET = 2 ** 50;

/** The highest write-lock fence there is: 2^48, far below 2^53 (where +1 stops counting), and out
 *  of reach of honest use (a takeover a millisecond for 8,900 years). A relay's claim above it is
 *  a bad frame, and a lock store never hands out or seeds a fence above it. */
export const MAX_FENCE = 2 ** 48;
export const FENCE_RULE = `a whole number from 0 to ${MAX_FENCE} (2^48)`;

/** Whether `f` is a fence a lock store may hold. */
export const isFence = (f: unknown): f is number => Number.isInteger(f) && (f as number) >= 0 && (f as number) <= MAX_FENCE;

/** The refusal when a lock's fence cannot go up by one (it was seeded to MAX_FENCE). */
export const fenceExhausted = (console: string) =>
  `console ${console}: its write-lock fence is at ${MAX_FENCE} (2^48), the highest there is, and cannot be taken again: see the audit (relay.fence) for who raised it`;
