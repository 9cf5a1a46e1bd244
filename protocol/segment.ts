// Sealed log segments: the unit a relay uploads and the cloud stores. Writer and reader of the
// format documented in SEGMENT.md (next to this file); keep the two in step.
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { z } from 'zod';
import { MAX_TIME_MS } from './bounds.ts';
import { checkConsoleName, isConsoleName } from './names.ts';

export const SEGMENT_VERSION = 1;
/** First 8 bytes of every segment. */
export const SEGMENT_MAGIC = Buffer.from('CCSEG01\n', 'latin1');
/** Last 8 bytes of every segment (after the u32 footer length). */
export const SEGMENT_END_MAGIC = Buffer.from('CCSEGEND', 'latin1');
const TRAILER = 12;
/** Default raw bytes per compressed block: the unit a reader decompresses to reach a time. */
export const DEFAULT_BLOCK_BYTES = 64 * 1024;
/** Largest footer a reader accepts (a 1 MiB segment of 16 KiB blocks has a few KiB). */
const MAX_FOOTER = 4 * 1024 * 1024;


/** Bytes a console emitted: `data` starts at stream offset `offset` and was read at `ts` (ms). */
export interface Chunk { offset: number; ts: number; data: Buffer }

const nat = z.number().int().nonnegative();
const time = z.number().min(0).max(MAX_TIME_MS);
const blockInfo = z.object({ pos: nat, len: nat, offset: nat, bytes: nat, chunks: nat, t0: time, t1: time });
export type BlockInfo = z.infer<typeof blockInfo>;
const gapInfo = z.object({ offset: nat, bytes: z.number().int().positive(), t0: time, t1: time, reason: z.string().max(1024) });
export type GapInfo = z.infer<typeof gapInfo>;
const footerSchema = z.object({
  v: z.literal(SEGMENT_VERSION),
  console: z.string().min(1).max(128),
  start: nat,
  end: nat,
  t0: time,
  t1: time,
  /** Data bytes in the segment (end - start for a data segment, 0 for a gap segment). */
  bytes: nat,
  /** sha256 (hex) of the data bytes in offset order. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  blocks: z.array(blockInfo).max(1_000_000),
  /** Set on a gap segment: bytes [start, end) are lost for good, and why. */
  gap: gapInfo.optional(),
}).strict();
export type SegmentFooter = z.infer<typeof footerSchema>;

export class SegmentFormatError extends Error {}

export interface EncodeOptions {
  /** Raw bytes per block (default 64 KiB). */
  blockBytes?: number;
  /** zlib level 0-9 (default 1: logs compress well even at the fastest level). */
  level?: number;
}

/** Encodes contiguous chunks of one console into a segment. */
export async function encodeSegment(console: string, chunks: Chunk[], opts: EncodeOptions = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  await writeSegment(console, chunks, (b) => { parts.push(b); }, opts);
  return Buffer.concat(parts);
}

/** Encodes a segment piece by piece into `sink` (a file being written, say), one compressed block
 *  at a time: at no point does the whole segment sit in memory. Each block is compressed on the
 *  event-loop thread (64 KiB at level 1: well under a millisecond) and `sink` may wait, which
 *  lets other work run between blocks. Nothing outlives its block, so the garbage it makes dies
 *  young: a relay sealing 20 segments a second keeps its memory flat. Returns the segment's
 *  size. */
export async function writeSegment(
  console: string, chunks: Chunk[], sink: (b: Buffer) => void | Promise<void>, opts: EncodeOptions = {},
): Promise<number> {
  if (!chunks.length) throw new SegmentFormatError('a data segment needs at least one chunk');
  const blockBytes = opts.blockBytes ?? DEFAULT_BLOCK_BYTES;
  const level = opts.level ?? 1;
  const sha = createHash('sha256');
  await sink(SEGMENT_MAGIC);
  let pos = SEGMENT_MAGIC.length;
  const blocks: BlockInfo[] = [];
  let i = 0;
  let offset = chunks[0].offset;
  while (i < chunks.length) {
    const group: Chunk[] = [];
    let n = 0;
    while (i < chunks.length && (n === 0 || n + chunks[i].data.length <= blockBytes)) {
      const c = chunks[i++];
      if (c.offset !== offset + n) throw new SegmentFormatError(`chunks are not contiguous: expected offset ${offset + n}, got ${c.offset}`);
      if (!c.data.length) continue;
      group.push(c);
      n += c.data.length;
    }
    if (!group.length) continue;
    // The block (chunk table, then the bytes) is assembled in a buffer shared by all encodes: it
    // is used only synchronously, up to deflateRawSync, and a relay sealing many segments a second
    // would otherwise leave a 64 KiB buffer of garbage per block.
    const headLen = 4 + group.length * 12;
    const raw = blockBuffer(headLen + n);
    raw.writeUInt32LE(group.length, 0);
    let p = headLen;
    group.forEach((c, k) => {
      raw.writeUInt32LE(c.data.length, 4 + k * 4);
      raw.writeDoubleLE(c.ts, 4 + group.length * 4 + k * 8);
      sha.update(c.data);
      c.data.copy(raw, p);
      p += c.data.length;
    });
    const comp = zlib.deflateRawSync(raw, { level });
    blocks.push({ pos, len: comp.length, offset, bytes: n, chunks: group.length, t0: group[0].ts, t1: group.at(-1)!.ts });
    await sink(comp);
    pos += comp.length;
    offset += n;
  }
  const start = chunks[0].offset;
  if (offset === start) throw new SegmentFormatError('a data segment needs at least one byte');
  const tail = finish([], {
    v: SEGMENT_VERSION, console, start, end: offset, t0: blocks[0].t0, t1: blocks.at(-1)!.t1,
    bytes: offset - start, sha256: sha.digest('hex'), blocks,
  });
  await sink(tail);
  return pos + tail.length;
}

let blockScratch = Buffer.alloc(0);
/** A buffer of exactly `size` bytes for assembling one block (shared; valid until the next call). */
function blockBuffer(size: number): Buffer {
  if (blockScratch.length < size) blockScratch = Buffer.allocUnsafeSlow(Math.max(size, 80 * 1024));
  return blockScratch.subarray(0, size);
}

/** A segment that records bytes [gap.offset, gap.offset + gap.bytes) as lost. */
export function encodeGapSegment(console: string, gap: GapInfo): Buffer {
  return finish([SEGMENT_MAGIC], {
    v: SEGMENT_VERSION, console, start: gap.offset, end: gap.offset + gap.bytes, t0: gap.t0, t1: gap.t1,
    bytes: 0, sha256: createHash('sha256').digest('hex'), blocks: [], gap,
  });
}

function finish(parts: Buffer[], footer: SegmentFooter): Buffer {
  const json = Buffer.from(JSON.stringify(footer));
  const trailer = Buffer.allocUnsafe(TRAILER);
  trailer.writeUInt32LE(json.length, 0);
  SEGMENT_END_MAGIC.copy(trailer, 4);
  return Buffer.concat([...parts, json, trailer]);
}

/** Random access to the bytes of a stored segment (a file, an S3 object with range GETs). */
export interface SegmentSource {
  size: number;
  read(pos: number, len: number): Promise<Buffer>;
}

export function bufferSource(buf: Buffer): SegmentSource {
  return { size: buf.length, read: async (pos, len) => buf.subarray(pos, pos + len) };
}

/** Reads and validates a segment's footer (the index: offsets, times, block positions). */
export async function readFooter(src: SegmentSource): Promise<SegmentFooter> {
  if (src.size < SEGMENT_MAGIC.length + TRAILER) throw new SegmentFormatError(`too short for a segment (${src.size} bytes)`);
  const trailer = await src.read(src.size - TRAILER, TRAILER);
  if (!trailer.subarray(4).equals(SEGMENT_END_MAGIC)) throw new SegmentFormatError('not a cloudcons segment (no end marker)');
  const len = trailer.readUInt32LE(0);
  const footerPos = src.size - TRAILER - len;
  if (len > MAX_FOOTER || footerPos < SEGMENT_MAGIC.length) throw new SegmentFormatError(`footer length ${len} does not fit the segment`);
  let parsed: unknown;
  try { parsed = JSON.parse((await src.read(footerPos, len)).toString('utf8')); } catch { throw new SegmentFormatError('footer is not JSON'); }
  const r = footerSchema.safeParse(parsed);
  if (!r.success) throw new SegmentFormatError(`bad footer: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const f = r.data;
  // The index must describe the offset range exactly, in order, inside the data area.
  if (f.end < f.start) throw new SegmentFormatError('footer end is below start');
  if (f.gap) {
    if (f.blocks.length || f.bytes || f.gap.offset !== f.start || f.gap.offset + f.gap.bytes !== f.end) throw new SegmentFormatError('gap segment footer is inconsistent');
  } else {
    let off = f.start, pos = SEGMENT_MAGIC.length;
    for (const b of f.blocks) {
      if (b.offset !== off || b.pos !== pos || b.bytes === 0 || b.chunks === 0) throw new SegmentFormatError(`block index is inconsistent at offset ${off}`);
      off += b.bytes; pos += b.len;
    }
    if (off !== f.end || pos !== footerPos || f.bytes !== f.end - f.start) throw new SegmentFormatError('block index does not cover the segment');
  }
  return f;
}

/** Decompresses block `i` into its chunks (with their offsets). */
export async function readBlock(src: SegmentSource, f: SegmentFooter, i: number): Promise<Chunk[]> {
  const b = f.blocks[i];
  let raw: Buffer;
  // Synchronous: a block inflates in well under a millisecond, less than a thread-pool round trip.
  try { raw = zlib.inflateRawSync(await src.read(b.pos, b.len)); } catch (e) { throw new SegmentFormatError(`block ${i}: ${(e as Error).message}`); }
  const n = raw.length >= 4 ? raw.readUInt32LE(0) : -1;
  const dataPos = 4 + n * 12;
  if (n !== b.chunks || raw.length !== dataPos + b.bytes) throw new SegmentFormatError(`block ${i} does not match the index`);
  const out: Chunk[] = [];
  let p = dataPos, off = b.offset;
  for (let k = 0; k < n; k++) {
    const len = raw.readUInt32LE(4 + k * 4);
    if (p + len > raw.length) throw new SegmentFormatError(`block ${i} chunk ${k} overruns the block`);
    const ts = raw.readDoubleLE(4 + n * 4 + k * 8);
    if (!(ts >= 0 && ts <= MAX_TIME_MS)) throw new SegmentFormatError(`block ${i} chunk ${k}: time ${ts} is not a date up to 9999-12-31`);
    out.push({ offset: off, ts, data: raw.subarray(p, p + len) });
    p += len; off += len;
  }
  return out;
}

/** Fully checks a segment (index, every block, sha256); returns its footer. `onBlock` sees each
 *  block's bytes (and its chunks) as they are checked (so a caller that needs them inflates only
 *  once). */
export async function verifySegment(buf: Buffer, onBlock?: (i: number, data: Buffer, chunks: Chunk[]) => void): Promise<SegmentFooter> {
  const src = bufferSource(buf);
  const f = await readFooter(src);
  if (!buf.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) throw new SegmentFormatError('not a cloudcons segment (bad magic)');
  const sha = createHash('sha256');
  for (let i = 0; i < f.blocks.length; i++) {
    const chunks = await readBlock(src, f, i);
    for (const c of chunks) sha.update(c.data);
    onBlock?.(i, chunks.length === 1 ? chunks[0].data : Buffer.concat(chunks.map((c) => c.data)), chunks);
  }
  if (sha.digest('hex') !== f.sha256) throw new SegmentFormatError('sha256 of the data does not match the footer');
  return f;
}

/** One segment holding the blocks of contiguous data segments of one console, in order (the
 *  compressed blocks are copied, not re-encoded; each is checked against its segment's sha256).
 *  `onBlock` sees each block's data and chunks, as verifySegment's does. */
export async function concatSegments(bufs: Buffer[], onBlock?: (i: number, data: Buffer, chunks: Chunk[]) => void): Promise<Buffer> {
  if (!bufs.length) throw new SegmentFormatError('nothing to concatenate');
  const sha = createHash('sha256');
  const parts: Buffer[] = [SEGMENT_MAGIC];
  const blocks: BlockInfo[] = [];
  let pos = SEGMENT_MAGIC.length;
  let first: SegmentFooter | undefined, last: SegmentFooter | undefined;
  for (const buf of bufs) {
    const f = await verifySegment(buf, (_i, data, cs) => { sha.update(data); onBlock?.(blocks.length + _i, data, cs); });
    if (f.gap) throw new SegmentFormatError(`segment ${f.start}-${f.end} records a gap: gap segments are not concatenated`);
    if (first && f.console !== first.console) throw new SegmentFormatError(`segments of consoles ${first.console} and ${f.console}`);
    if (last && f.start !== last.end) throw new SegmentFormatError(`segments are not contiguous: ${last.end} then ${f.start}`);
    for (const b of f.blocks) {
      parts.push(buf.subarray(b.pos, b.pos + b.len));
      blocks.push({ ...b, pos });
      pos += b.len;
    }
    first ??= f;
    last = f;
  }
  return finish(parts, {
    v: SEGMENT_VERSION, console: first!.console, start: first!.start, end: last!.end, t0: first!.t0, t1: last!.t1,
    bytes: last!.end - first!.start, sha256: sha.digest('hex'), blocks,
  });
}

/** The part [from, to) of a segment (a data segment re-encoded from its chunks, each keeping its
 *  time; a gap segment recording only that part as lost): what a relay sends when the cloud
 *  already holds the rest of its range. The range is clipped to the segment's; undefined if
 *  nothing is left. */
export async function sliceSegment(buf: Buffer, from: number, to: number, opts: EncodeOptions = {}): Promise<{ body: Buffer; footer: SegmentFooter } | undefined> {
  const src = bufferSource(buf);
  const f = await readFooter(src);
  const a = Math.max(from, f.start), b = Math.min(to, f.end);
  if (a >= b) return undefined;
  if (a === f.start && b === f.end) return { body: buf, footer: f };
  let body: Buffer;
  if (f.gap) body = encodeGapSegment(f.console, { ...f.gap, offset: a, bytes: b - a });
  else {
    const chunks: Chunk[] = [];
    for (let i = 0; i < f.blocks.length; i++) {
      const blk = f.blocks[i];
      if (blk.offset + blk.bytes <= a || blk.offset >= b) continue;
      for (const c of await readBlock(src, f, i)) {
        const s = Math.max(c.offset, a), e = Math.min(c.offset + c.data.length, b);
        if (s < e) chunks.push({ offset: s, ts: c.ts, data: c.data.subarray(s - c.offset, e - c.offset) });
      }
    }
    body = await encodeSegment(f.console, chunks, opts);
  }
  return { body, footer: await readFooter(bufferSource(body)) };
}

/** Earliest and latest chunk time of each block of a segment, fed block by block (`add`, in
 *  order), and whether chunk times never went back: when they did not (nearly always), a block's
 *  and a segment's first and last times (the footer's t0/t1, the key's) are also their earliest
 *  and latest. */
export class ChunkTimes {
  ordered = true;
  readonly blocks: [number, number][] = [];
  private prev = -Infinity;
  add(chunks: readonly Chunk[]): void {
    let lo = Infinity, hi = -Infinity;
    for (const c of chunks) {
      if (c.ts < this.prev) this.ordered = false;
      this.prev = c.ts;
      if (c.ts < lo) lo = c.ts;
      if (c.ts > hi) hi = c.ts;
    }
    this.blocks.push([lo, hi]);
  }
  get min(): number { return this.blocks.reduce((m, b) => Math.min(m, b[0]), Infinity); }
  get max(): number { return this.blocks.reduce((m, b) => Math.max(m, b[1]), -Infinity); }
}

/** Rewrites a segment's footer with every offset moved by `shift` (the data is untouched). */
export async function shiftSegment(buf: Buffer, shift: number): Promise<Buffer> {
  const f = await readFooter(bufferSource(buf));
  const footerPos = buf.length - TRAILER - buf.readUInt32LE(buf.length - TRAILER);
  const g: SegmentFooter = {
    ...f, start: f.start + shift, end: f.end + shift,
    blocks: f.blocks.map((b) => ({ ...b, offset: b.offset + shift })),
    ...(f.gap ? { gap: { ...f.gap, offset: f.gap.offset + shift } } : {}),
  };
  return finish([buf.subarray(0, footerPos)], g);
}

// ----------------------------------------------------------------------------------------- keys
const KEY_RE = /^logs\/([^/]+)\/(\d{4})\/(\d{2})\/(\d{2})\/(\d{16})-(\d{16})_(\d+)-(\d+)(\.gap)?\.seg$/;

export interface SegmentKeyInfo { key: string; console: string; start: number; end: number; t0: number; t1: number; gap: boolean }

/** The store key of a segment: logs/<console>/<yyyy>/<mm>/<dd>/<start>-<end>_<t0>-<t1>[.gap].seg
 *  (UTC date of t0, offsets zero-padded to 16 digits so keys sort by offset within a day, times in
 *  ms). The same console and offset range always give the same key: re-uploads are idempotent. */
export function segmentKey(f: Pick<SegmentFooter, 'console' | 'start' | 'end' | 't0' | 't1'> & { gap?: unknown }): string {
  checkConsoleName(f.console);
  const d = new Date(Math.max(0, Math.floor(f.t0)));
  const p2 = (n: number) => String(n).padStart(2, '0');
  const p16 = (n: number) => String(n).padStart(16, '0');
  return `logs/${f.console}/${d.getUTCFullYear()}/${p2(d.getUTCMonth() + 1)}/${p2(d.getUTCDate())}/${p16(f.start)}-${p16(f.end)}_${Math.floor(f.t0)}-${Math.ceil(f.t1)}${f.gap ? '.gap' : ''}.seg`;
}

export function parseSegmentKey(key: string): SegmentKeyInfo | undefined {
  const m = KEY_RE.exec(key);
  if (!m || !isConsoleName(m[1])) return undefined;
  return { key, console: m[1], start: Number(m[5]), end: Number(m[6]), t0: Number(m[7]), t1: Number(m[8]), gap: !!m[9] };
}
