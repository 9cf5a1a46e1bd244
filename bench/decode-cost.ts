// Microbenchmark: cost of decoding (JSON + zod validation) and encoding one wire message.
// Run: node --import tsx bench/decode-cost.ts
import { decode, encode } from '../protocol/codec.ts';
import { clientToCloud, relayToCloud } from '../protocol/messages.ts';

function time(label: string, n: number, fn: () => unknown) {
  for (let i = 0; i < 1000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  console.log(`${label.padEnd(36)} ${(Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(2)} µs`);
}
const keystroke = encode({ t: 'in', d: Buffer.from('x').toString('base64') });
const out1 = encode({ t: 'out', c: 'web01', o: 123456, ts: Date.now(), d: Buffer.from('x').toString('base64') });
const out22k = encode({ t: 'out', c: 'web01', o: 123456, ts: Date.now(), d: Buffer.alloc(22 * 1024, 7).toString('base64') });
time('decode in (1 byte)', 100_000, () => decode(clientToCloud, keystroke));
time('decode out (1 byte)', 100_000, () => decode(relayToCloud, out1));
time('decode out (22 KiB)', 5_000, () => decode(relayToCloud, out22k));
time('JSON.parse out (22 KiB) alone', 5_000, () => JSON.parse(out22k));
time('encode out (1 byte)', 100_000, () => encode({ t: 'out', o: 1, d: 'eA==' }));
const big = Buffer.alloc(22 * 1024, 7).toString('base64');
time('encode out (22 KiB)', 5_000, () => encode({ t: 'out', c: 'web01', o: 1, ts: 2, d: big }));
time('JSON.stringify out (22 KiB)', 5_000, () => JSON.stringify({ v: 1, t: 'out', c: 'web01', o: 1, ts: 2, d: big }));
