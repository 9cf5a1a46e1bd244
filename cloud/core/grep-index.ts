// Trigram Bloom filters per segment block, so grep can skip blocks that cannot match.
//
// For each block of a data segment, the cloud stores (object `<segment key>.tri`, written at
// upload) a BITS-bit set of the ASCII-lowercased byte trigrams of the block's bytes plus the first
// two bytes of the next block (so a trigram across a block boundary is indexed too). A grep pattern
// yields literals every match must contain (grep-pattern.ts requiredLiterals); a block can hold a
// match only if all their trigrams are in its set. Literals may straddle two blocks, so grep also reads the block
// before and after any candidate and the first and last block of every segment (neighbouring
// segments are indexed separately). No false negatives; false positives just cost a read.
export const BITS = 32 * 1024;
const BYTES = BITS / 8;

const lower = (b: number) => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);
const slot = (a: number, b: number, c: number) => (Math.imul((lower(a) << 16) | (lower(b) << 8) | lower(c), 0x9e3779b1) >>> 17) & (BITS - 1);

const LOWER = Uint8Array.from({ length: 256 }, (_, b) => lower(b));

/** The filters of consecutive blocks, concatenated (BYTES each). One rolling pass over all bytes:
 *  the trigram ending at each byte is added to the filter of the block it starts in. */
export function buildIndex(blocks: Buffer[]): Buffer {
  const out = Buffer.alloc(blocks.length * BYTES);
  let t = 0, seen = 0;
  // Trigram start positions: a trigram that starts in block i goes to filter i (also when it ends
  // in block i + 1), so track which block each of the last three bytes came from.
  let b1 = 0, b2 = 0; // blocks of the bytes one and two positions back
  for (let i = 0; i < blocks.length; i++) {
    const d = blocks[i];
    for (let p = 0; p < d.length; p++) {
      t = ((t << 8) | LOWER[d[p]]) & 0xffffff;
      if (++seen >= 3) {
        const s = (Math.imul(t, 0x9e3779b1) >>> 17) & (BITS - 1);
        const base = b2 * BYTES;
        out[base + (s >>> 3)] |= 1 << (s & 7);
      }
      b2 = b1; b1 = i;
    }
  }
  return out;
}

export function blockMayContain(index: Buffer, block: number, slots: number[]): boolean {
  const base = block * BYTES;
  if (base + BYTES > index.length) return true;
  return slots.every((s) => (index[base + (s >>> 3)] & (1 << (s & 7))) !== 0);
}

export function slotsOf(literals: Buffer[]): number[] {
  const out = new Set<number>();
  for (const l of literals) for (let p = 0; p + 2 < l.length; p++) out.add(slot(l[p], l[p + 1], l[p + 2]));
  return [...out];
}
