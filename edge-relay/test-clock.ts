// Test hook: a relay whose clock steps. With CLOUDCONS_TEST_CLOCK_FILE set, console output is
// stamped with the clock moved by the number of ms that file holds (e.g. -3600000: an hour back),
// read again whenever the file changes; without it, nothing changes. For tests of what a relay's
// clock stepping back does to stored times (test/e2e/clock-step.test.ts).
import fs from 'node:fs';

const file = process.env.CLOUDCONS_TEST_CLOCK_FILE;
let shift = 0;
if (file) {
  const read = () => { try { shift = Number(fs.readFileSync(file, 'utf8').trim()) || 0; } catch { shift = 0; } };
  read();
  fs.watchFile(file, { interval: 50 }, read).unref();
}

/** The time (ms) to stamp output read now with. */
export function outputClock(): number { return Date.now() + shift; }
