// A console's log as one byte stream: sealed segments (SegmentStore, uploaded by relays from their
// spools: the durable record) plus the hot tail (HotTail: live output not sealed yet, so replay is
// never minutes behind). Offsets are the relay's; any offset is in one of four states:
//   data     in a segment or in the hot tail (segments win where both have it: the same bytes, as
//            a segment is stored only if it has, byte for byte, what the hot tail held first)
//   gap      lost for good, recorded by a gap segment (a relay's spool overflowed or was full);
//            data wins over a gap claim: a gap segment is stored only where nothing is, and live
//            bytes under it are sealed into data segments by the cloud (putGap)
//   pending  not here yet: sealed on the relay but not uploaded (after an outage), or beyond the end
// Segments never overlap. One that overlaps stored ones is refused (409) with the facts the relay
// needs to send only the rest (StoredOverlap): what is stored in its range, and whether the bytes
// are the same (else: two writers; the bytes stored first are kept).
// Times are the relay's and may step backwards (a clock set back): a time lookup never assumes
// they grow (offsetAt, offsetBefore). A data segment whose chunk times do go back gets a
// `<key>.times` sidecar with each block's earliest and latest time; the listing shows which
// segments have one, and for the others the key's and the footer's first and last times are
// also the earliest and latest.
// Stateless apart from caches, so it runs the same in the embedded server and in Lambda: a
// console's segment listing is cached, and listed again when the hot tail's index version (if it
// keeps one: DynamoDB) says another process changed the console's segments.
import { BadParameter, Conflict, NotFound } from '../../protocol/errors.ts';
import {
  bufferSource, ChunkTimes, concatSegments, encodeGapSegment, encodeSegment, parseSegmentKey, readBlock, readFooter, segmentKey, verifySegment,
  SegmentFormatError, type Chunk, type SegmentFooter, type SegmentKeyInfo, type SegmentSource,
} from '../../protocol/segment.ts';
import { blockMayContain, buildIndex, slotsOf } from './grep-index.ts';
import type { HotTail, OutputStore, SegmentStore } from './ports.ts';

interface SegIdx extends SegmentKeyInfo {
  size: number;
  /** Has a `.times` sidecar: its chunk times go back somewhere (see TIMES). */
  times?: boolean;
}

/** Suffix of a data segment's time sidecar: JSON {min, max, blocks: [[min, max], ...]}. */
const TIMES = '.times';
interface SegTimes { min: number; max: number; blocks?: [number, number][] }

/** What a 409 for an overlapping segment says (JSON `overlap` beside `error`): the relay sends only
 *  the parts of [start, end) outside `stored`. */
export interface StoredOverlap {
  /** The refused segment's range. */
  start: number; end: number;
  /** Where the console's stored output (segments and live) ends. */
  storedEnd: number;
  /** Stored segments within [start, end), clipped to it, in offset order; `gap`: recorded lost. */
  stored: { start: number; end: number; gap?: true }[];
  /** The segment has the stored bytes wherever both have some. False: two writers (or a gap
   *  recorded where the segment has data): the stored output is kept; `at` is the first offset
   *  where they differ. */
  same: boolean;
  at?: number;
}

export type LogItem =
  | { kind: 'data'; offset: number; ts: number; data: Buffer }
  | { kind: 'gap'; offset: number; bytes: number; t0: number; t1: number; reason: string }
  | { kind: 'pending'; offset: number; bytes: number };

type Piece =
  | { kind: 'seg'; seg: SegIdx; a: number; b: number }
  | { kind: 'hot'; a: number; b: number }
  | { kind: 'pending'; a: number; b: number };

export interface LogStoreOptions {
  /** Segment footers kept in memory. Default 512. */
  footerCache: number;
  /** Most bytes `tail` looks back through for its lines. Default 64 MiB. */
  maxTailScan: number;
  /** Segments of fewer blocks (64 KiB of output each) get no grep index: grep reads a one-block
   *  segment in one request either way, and on S3 the index would be a second PUT per segment
   *  (most of a quiet console's cost). Default 2. */
  indexMinBlocks: number;
  /** Largest segment the cloud seals from live output itself (a relay's gap segment, or its
   *  conflicting segment, over output that arrived live: putGap, sealHot). Default 4 MiB. */
  hotSealBytes: number;
}
export const LOG_DEFAULTS: LogStoreOptions = { footerCache: 512, maxTailScan: 64 * 1024 * 1024, indexMinBlocks: 2, hotSealBytes: 4 * 1024 * 1024 };

const HOT_STEP = 256 * 1024;

/** A segment that does not have the bytes stored first at its offsets (a live copy, a segment
 *  stored before): refused, and the stored output kept (the core audits it as output.conflict). */
export class OutputConflict extends Conflict {
  constructor(readonly console: string, readonly start: number, readonly end: number, what: string, readonly overlap?: StoredOverlap) {
    super(overlap?.same
      ? `segment ${start}-${end} of ${console} ${what}: send only the parts of it outside ${overlap.stored.map((r) => `${r.start}-${r.end}`).join(', ')}`
      : `segment ${start}-${end} of ${console} ${what}: the output stored first is kept`);
  }
}

export class LogStore implements OutputStore {
  readonly opts: LogStoreOptions;
  private readonly index = new Map<string, { list: SegIdx[]; version?: number }>();
  private readonly footers = new Map<string, SegmentFooter>();
  /** Per console, how many times this process wrote to its hot tail: an ingest that saw it move
   *  while it stored a segment compares again what arrived meanwhile. */
  private readonly hotWrites = new Map<string, number>();

  constructor(private readonly segs: SegmentStore, private readonly hot: HotTail, opts: Partial<LogStoreOptions> = {}) {
    this.opts = { ...LOG_DEFAULTS, ...opts };
  }

  // ------------------------------------------------------------------------------------- index
  private async segments(console: string): Promise<SegIdx[]> {
    // The version first, then the listing: a change made in between is listed now and, its
    // version being newer than the one kept, listed again next time (never missed).
    const version = this.hot.indexVersion ? await this.hot.indexVersion(console) : undefined;
    const cached = this.index.get(console);
    if (cached && cached.version === version) return cached.list;
    const list = dropCovered(await this.listAll(console));
    this.index.set(console, { list, version });
    return list;
  }

  /** Every segment object of a console, covered ones included. */
  private async listAll(console: string): Promise<SegIdx[]> {
    const list: SegIdx[] = [];
    const timed = new Set<string>();
    for (const o of await this.segs.list(`logs/${console}/`)) {
      if (o.key.endsWith(TIMES)) { timed.add(o.key.slice(0, -TIMES.length)); continue; }
      const k = parseSegmentKey(o.key);
      if (k && k.console === console) list.push({ ...k, size: o.size });
    }
    for (const s of list) if (timed.has(s.key)) s.times = true;
    return list;
  }

  /** After this process changed a console's segments (and its cached listing to match): tells
   *  the others (index version). When the version moved by exactly this change, nobody else
   *  changed them since the listing was made, and it stays cached under the new version (a
   *  relay's next commit then costs no listing); otherwise it is listed again next time. */
  private async indexChanged(console: string): Promise<void> {
    if (!this.hot.indexChanged) return;
    const v = await this.hot.indexChanged(console);
    const cached = this.index.get(console);
    if (cached && cached.version !== undefined && v === cached.version + 1) cached.version = v;
    else this.index.delete(console);
  }

  /** Forgets cached listings (another process may have stored segments). */
  refresh(console?: string): void { if (console) this.index.delete(console); else this.index.clear(); }

  private async footer(s: SegIdx): Promise<SegmentFooter> {
    let f = this.footers.get(s.key);
    if (f) { this.footers.delete(s.key); this.footers.set(s.key, f); return f; }
    f = await readFooter(this.source(s));
    this.footers.set(s.key, f);
    if (this.footers.size > this.opts.footerCache) this.footers.delete(this.footers.keys().next().value!);
    return f;
  }

  private source(s: SegIdx): SegmentSource {
    return { size: s.size, read: (pos, len) => this.segs.get(s.key, { start: pos, end: pos + len }) };
  }

  /** Segments of a console (offset order), for listing and retention. */
  async segmentList(console: string): Promise<readonly SegIdx[]> { return this.segments(console); }

  // ---------------------------------------------------------------------------- OutputStore API
  async end(console: string): Promise<number> {
    const segs = await this.segments(console);
    return Math.max(segs.at(-1)?.end ?? 0, await this.hot.end(console));
  }

  /** Stores live output; returns the stored end and the parts that were new (what viewers have
   *  not been sent yet). Bytes below the end are a resend, unless the hot tail can `fill` holes
   *  above the sealed segments (a chunk overtaken by later ones). */
  async append(console: string, offset: number, ts: number, data: Buffer): Promise<{ end: number; fresh: { offset: number; data: Buffer }[] }> {
    const segEnd = (await this.segments(console)).at(-1)?.end ?? 0;
    const end = Math.max(segEnd, await this.hot.end(console));
    const fresh: { offset: number; data: Buffer }[] = [];
    if (offset < end && this.hot.fill && offset + data.length > segEnd) {
      const from = Math.max(offset, segEnd);
      this.wroteHot(console);
      fresh.push(...await this.hot.fill(console, from, ts, data.subarray(from - offset, Math.min(data.length, end - offset))));
    }
    if (offset + data.length <= end) return { end, fresh };
    if (offset < end) { data = data.subarray(end - offset); offset = end; }
    this.wroteHot(console);
    await this.hot.append(console, offset, ts, data, end);
    fresh.push({ offset, data });
    return { end: offset + data.length, fresh };
  }

  private wroteHot(console: string): void { this.hotWrites.set(console, (this.hotWrites.get(console) ?? 0) + 1); }

  async consoles(): Promise<string[]> {
    return [...new Set([...(await this.segs.children('logs/')), ...(await this.hot.consoles())])].sort();
  }

  async read(console: string, from: number, to: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const it of this.items(console, from, to)) if (it.kind === 'data') parts.push(it.data);
    return Buffer.concat(parts);
  }

  async readAt(console: string, from: number, max: number): Promise<{ offset: number; data: Buffer }> {
    const end = await this.end(console);
    let start = from;
    for (const p of await this.plan(console, from, end)) {
      if (p.kind === 'pending' || (p.kind === 'seg' && p.seg.gap)) { start = p.b; continue; }
      break;
    }
    const parts: Buffer[] = [];
    for await (const it of this.items(console, start, Math.min(end, start + max))) {
      if (it.kind !== 'data') break;
      parts.push(it.data);
    }
    return { offset: start, data: Buffer.concat(parts) };
  }

  async tail(console: string, lines: number): Promise<Buffer> {
    const end = await this.end(console);
    return this.read(console, await this.lineStart(console, lines, end), end);
  }

  // ------------------------------------------------------------------------------------ reading
  private async plan(console: string, from: number, to: number): Promise<Piece[]> {
    const out = await this.planOnce(console, from, to);
    // Bytes neither listed nor in the hot tail: on the way in a segment upload, or (several
    // processes) committed and trimmed from the hot tail between our listing and our reading of
    // the runs. A second look tells them apart; only then are they reported pending.
    if (this.hot.indexVersion && out.some((p) => p.kind === 'pending')) return this.planOnce(console, from, to);
    return out;
  }

  private async planOnce(console: string, from: number, to: number): Promise<Piece[]> {
    const segs = await this.segments(console);
    const runs = await this.hot.runs(console);
    const out: Piece[] = [];
    let cur = from;
    let si = firstEndingAfter(segs, cur), ri = firstEndingAfter(runs, cur);
    while (cur < to) {
      while (si < segs.length && segs[si].end <= cur) si++;
      while (ri < runs.length && runs[ri].end <= cur) ri++;
      const s = segs[si], r = runs[ri];
      // A gap segment loses only what the hot tail does not have (the relay dropped segments
      // whose bytes had already gone live).
      if (s && s.start <= cur && s.gap && r && r.start <= cur) { const b = Math.min(r.end, s.end, to); out.push({ kind: 'hot', a: cur, b }); cur = b; continue; }
      if (s && s.start <= cur) {
        const b = Math.min(s.end, to, s.gap && r && r.start > cur ? r.start : Infinity);
        out.push({ kind: 'seg', seg: s, a: cur, b });
        cur = b;
        continue;
      }
      if (r && r.start <= cur) { const b = Math.min(r.end, s?.start ?? Infinity, to); out.push({ kind: 'hot', a: cur, b }); cur = b; continue; }
      const b = Math.min(s?.start ?? Infinity, r?.start ?? Infinity, to);
      out.push({ kind: 'pending', a: cur, b });
      cur = b;
    }
    return out;
  }

  /** Everything in [from, to) in offset order: data chunks (with arrival times), gaps, pending.
   *  With `literals` (grep), segment blocks whose trigram index rules out containing all of them
   *  are skipped (reported as pending, so a reader treats them as a break between lines). */
  async *items(console: string, from: number, to: number, opts: { literals?: Buffer[] } = {}): AsyncGenerator<LogItem> {
    const slots = opts.literals?.length ? slotsOf(opts.literals) : undefined;
    for (const p of await this.plan(console, from, to)) {
      if (p.kind === 'pending') { yield { kind: 'pending', offset: p.a, bytes: p.b - p.a }; continue; }
      if (p.kind === 'hot') {
        for (let a = p.a; a < p.b; a += HOT_STEP) for (const c of await this.hot.read(console, a, Math.min(p.b, a + HOT_STEP))) yield { kind: 'data', ...c };
        continue;
      }
      const f = await this.footer(p.seg);
      if (f.gap) { yield { kind: 'gap', offset: p.a, bytes: p.b - p.a, t0: f.gap.t0, t1: f.gap.t1, reason: f.gap.reason }; continue; }
      const want = slots ? await this.candidateBlocks(p.seg, f, slots) : undefined;
      // Reading most of a segment: one GET of the whole object beats a range GET per block.
      const most = want ? want.size * 2 > f.blocks.length : (p.b - p.a) * 2 > p.seg.end - p.seg.start;
      const src = most ? bufferSource(await this.segs.get(p.seg.key)) : this.source(p.seg);
      for (let i = firstEndingAfter(f.blocks.map((b) => ({ end: b.offset + b.bytes })), p.a); i < f.blocks.length && f.blocks[i].offset < p.b; i++) {
        if (want && !want.has(i)) { yield { kind: 'pending', offset: f.blocks[i].offset, bytes: f.blocks[i].bytes }; continue; }
        for (const c of await readBlock(src, f, i)) {
          const clipped = clip(c, p.a, p.b);
          if (clipped) yield { kind: 'data', ...clipped };
        }
      }
    }
  }

  /** Blocks of a segment that may hold all the literals (and their neighbours, for literals and
   *  lines across a block boundary); undefined when the segment has no index. */
  private async candidateBlocks(seg: SegIdx, f: SegmentFooter, slots: number[]): Promise<Set<number> | undefined> {
    let index: Buffer;
    try { index = await this.segs.get(`${seg.key}.tri`); } catch { return undefined; }
    const n = f.blocks.length;
    const has = (i: number) => blockMayContain(index, i, slots);
    const pair = (i: number) => slots.every((x) => blockMayContain(index, i, [x]) || blockMayContain(index, i + 1, [x]));
    const want = new Set<number>([0, n - 1]);
    for (let i = 0; i < n; i++) {
      if (has(i) || (i + 1 < n && pair(i))) for (const j of [i - 1, i, i + 1, i + 2]) if (j >= 0 && j < n) want.add(j);
    }
    return want;
  }

  /** Data chunks of [from, to) from the last backwards (gaps and pending ranges skipped). */
  private async *backwards(console: string, from: number, to: number): AsyncGenerator<Chunk> {
    const plan = await this.plan(console, from, to);
    for (let k = plan.length - 1; k >= 0; k--) {
      const p = plan[k];
      if (p.kind === 'pending') continue;
      if (p.kind === 'hot') {
        for (let b = p.b; b > p.a; b -= HOT_STEP) {
          const cs = await this.hot.read(console, Math.max(p.a, b - HOT_STEP), b);
          for (let i = cs.length - 1; i >= 0; i--) yield cs[i];
        }
        continue;
      }
      const f = await this.footer(p.seg);
      if (f.gap) continue;
      for (let i = f.blocks.length - 1; i >= 0; i--) {
        const blk = f.blocks[i];
        if (blk.offset >= p.b || blk.offset + blk.bytes <= p.a) continue;
        const cs = await readBlock(this.source(p.seg), f, i);
        for (let j = cs.length - 1; j >= 0; j--) { const c = clip(cs[j], p.a, p.b); if (c) yield c; }
      }
    }
  }

  /** Offset where the last `lines` lines before `to` start. Output that ends with a newline: that
   *  newline closes the last line, it does not start one. Looks back at most `maxTailScan` bytes. */
  async lineStart(console: string, lines: number, to: number, floor = 0): Promise<number> {
    if (lines <= 0) return to;
    let found = 0, scanned = 0, first = true, start = to;
    for await (const c of this.backwards(console, floor, to)) {
      for (let i = c.data.length - 1; i >= 0; i--) {
        const off = c.offset + i;
        if (c.data[i] === 0x0a && !(first && off === to - 1)) { if (++found === lines) return off + 1; }
        first = false;
      }
      start = c.offset;
      scanned += c.data.length;
      if (scanned >= this.opts.maxTailScan) return start;
    }
    return floor;
  }

  // ------------------------------------------------------------------------------ time lookups
  // A relay's clock may step back (NTP, an operator), so times need not grow with offsets. A range
  // by time is the smallest offset range that holds everything stamped in it: from the first
  // chunk (in offset order) stamped at or after `since` (offsetAt) to the end of the last one
  // stamped before `until` (offsetBefore). With times that grow this is exactly the output of
  // [since, until); after a step back it also holds what lies between in offset order (the
  // console printed it in between), and it never misses output stamped inside.

  /** Earliest and latest chunk time of a data segment (and of each of its blocks, when they are
   *  not the footer's first and last). A segment stored before sidecars existed whose key says
   *  its times went back (t0 > t1) is searched block by block. */
  private async segTimes(s: SegIdx): Promise<SegTimes> {
    if (!s.times) return s.t0 <= s.t1 ? { min: s.t0, max: s.t1 } : { min: -Infinity, max: Infinity };
    const t = JSON.parse((await this.segs.get(s.key + TIMES)).toString('utf8')) as SegTimes;
    return { min: Math.floor(t.min), max: Math.ceil(t.max), blocks: t.blocks };
  }

  /** [min, max] chunk time of block `i` of a segment with times `tm`. */
  private static blockTimes(s: SegIdx, tm: SegTimes, f: SegmentFooter, i: number): [number, number] {
    if (tm.blocks?.[i]) return tm.blocks[i];
    if (!s.times && s.t0 > s.t1) return [-Infinity, Infinity];
    return [f.blocks[i].t0, f.blocks[i].t1];
  }

  /** Offset of the first output (in offset order) stamped at or after `time`: a chunk, or a gap's
   *  start if the loss was recorded then; the stored end if there is none. */
  async offsetAt(console: string, time: number): Promise<number> {
    const segs = await this.segments(console);
    let at: number | undefined;
    for (const s of segs) {
      if (s.gap) { if (Math.max(s.t0, s.t1) >= time) { at = s.start; break; } continue; }
      const tm = await this.segTimes(s);
      if (tm.max < time) continue;
      const f = await this.footer(s);
      for (let i = 0; i < f.blocks.length && at === undefined; i++) {
        if (LogStore.blockTimes(s, tm, f, i)[1] < time) continue;
        at = (await readBlock(this.source(s), f, i)).find((x) => x.ts >= time)?.offset;
      }
      if (at !== undefined) break;
    }
    // Live output not sealed yet: where it comes first (a hole below the segments' end, still on
    // its way in an upload, or what follows them).
    const hotAt = await this.hot.offsetAt(console, time);
    if (hotAt !== undefined && (at === undefined || hotAt < at)) at = hotAt;
    return at ?? this.end(console);
  }

  /** Offset just after the last output (in offset order) stamped before `time` (a chunk's end, or
   *  a gap's end if the loss began before it); 0 if there is none. */
  async offsetBefore(console: string, time: number): Promise<number> {
    const segs = await this.segments(console);
    let at = 0;
    for (let k = segs.length - 1; k >= 0 && !at; k--) {
      const s = segs[k];
      if (s.gap) { if (Math.min(s.t0, s.t1) < time) at = s.end; continue; }
      const tm = await this.segTimes(s);
      if (tm.min >= time) continue;
      const f = await this.footer(s);
      for (let i = f.blocks.length - 1; i >= 0 && !at; i--) {
        if (LogStore.blockTimes(s, tm, f, i)[0] >= time) continue;
        const cs = await readBlock(this.source(s), f, i);
        for (let j = cs.length - 1; j >= 0; j--) if (cs[j].ts < time) { at = cs[j].offset + cs[j].data.length; break; }
      }
    }
    // Live output past that (the hot tail has no time index: read back from its end, usually the
    // last minute or so, down to what the segments found).
    const runs = await this.hot.runs(console);
    for (let k = runs.length - 1; k >= 0; k--) {
      const r = runs[k];
      if (r.end <= at) break;
      for (let b = r.end; b > Math.max(r.start, at); b -= HOT_STEP) {
        const cs = await this.hot.read(console, Math.max(r.start, at, b - HOT_STEP), b);
        for (let j = cs.length - 1; j >= 0; j--) if (cs[j].ts < time) return cs[j].offset + cs[j].data.length;
      }
    }
    return at;
  }

  // ---------------------------------------------------------------------------------- ingest
  /** Takes in a segment a relay uploaded straight to the segment store (presigned PUT) under
   *  `key`: verified and indexed like an upload through the cloud. An object that is not a valid
   *  segment, not the one its key names, or one that would change output stored before is deleted
   *  and refused. */
  async commitSegment(console: string, key: string) {
    const info = parseSegmentKey(key);
    if (!info || info.console !== console) throw new BadParameter(`${JSON.stringify(key)} is not a segment key of console ${console}`);
    const body = await this.segs.get(key).catch((e: Error) => {
      if (e instanceof NotFound) throw new Conflict(`segment ${key} is not in the store: upload it first`);
      throw e;
    });
    try {
      return await this.putSegment(console, body, key);
    } catch (e) {
      // Not what the key says, or not what is stored: never leave it to be read. (A key already
      // part of the log is the stored record itself, never deleted here.)
      if ((e instanceof BadParameter || e instanceof OutputConflict) && !(await this.segments(console)).some((x) => x.key === key)) await this.segs.delete(key);
      throw e;
    }
  }

  /** Checks an upload before a relay is given a URL for it: a key of this console. (One that
   *  overlaps stored segments is answered at its commit, when its bytes can be compared: the 409
   *  then says what is stored and whether it is the same.) */
  async checkUpload(console: string, key: string): Promise<void> {
    const info = parseSegmentKey(key);
    if (!info || info.console !== console) throw new BadParameter(`${JSON.stringify(key)} is not a segment key of console ${console}`);
  }

  /** Stores a segment a relay uploaded (fully verified first). Idempotent: the same segment again
   *  is accepted as stored. `storedAs`: the body is already in the store under that key
   *  (commitSegment). A data segment that overlaps stored segments throws OutputConflict with the
   *  facts (`overlap`: what is stored, and whether the bytes are the same) so that the relay sends
   *  only the rest; one that would change output stored before is refused so too, and output that
   *  was stored only live is then sealed into segments, kept as the first-stored. The comparison
   *  covers what the hot tail holds when it runs, and live output this process stores while the
   *  segment is written; on Lambda, a live message another container stores in those
   *  milliseconds is not compared (it is the relay's own fresh output, never output stored
   *  before). A gap segment is never refused: see putGap. */
  async putSegment(console: string, body: Buffer, storedAs?: string): Promise<{
    key: string; footer: SegmentFooter; created: boolean;
    /** Bytes a gap segment really loses (not stored otherwise), from offset lostAt. */ lost: number; lostAt: number;
    /** A gap segment sent again: its loss as recorded the first time (gap pieces already stored
     *  in its range), so the caller can make sure that loss was audited (the first try may have
     *  stored the gap and then failed to audit it: a full disk). */ recorded?: { lost: number; lostAt: number };
    /** Output this segment brought that was in no hot-tail run (it never arrived live, or not yet):
     *  what viewers have not been sent. */ fresh: { offset: number; data: Buffer }[] }> {
    let f: SegmentFooter;
    const blocks: Buffer[] = [];
    const times = new ChunkTimes();
    try { f = await verifySegment(body, (i, data, cs) => { blocks[i] = data; times.add(cs); }); } catch (e) {
      if (e instanceof SegmentFormatError) throw new BadParameter(`segment rejected: ${e.message}`);
      throw e;
    }
    if (f.console !== console) throw new BadParameter(`segment is for console ${f.console}, uploaded to ${console}`);
    const key = segmentKey(f);
    if (storedAs !== undefined && storedAs !== key) throw new BadParameter(`the object stored as ${storedAs} is segment ${key}`);
    if (f.gap) return this.putGap(console, f, body, key, storedAs);
    const list = await this.segments(console);
    // Already part of a bigger segment (compaction merged it; the relay sends it again, having
    // missed the answer): stored, if it has the same bytes. A copy just PUT under its own key
    // (presigned) is left to the next compaction, which deletes segments others cover.
    const cover = list.find((s) => !s.gap && s.key !== key && s.start <= f.start && f.end <= s.end);
    if (cover) {
      const o = await this.overlapFacts(console, f, blocks);
      if (!o.same) throw new OutputConflict(console, f.start, f.end, `differs from the stored segment ${cover.start}-${cover.end} (first at offset ${o.at})`, o);
      return { key, footer: f, created: false, lost: 0, lostAt: f.start, fresh: [] };
    }
    if (list.some((s) => s.key !== key && s.start < f.end && f.start < s.end)) {
      const o = await this.overlapFacts(console, f, blocks);
      const where = o.stored.map((r) => `${r.start}-${r.end}${r.gap ? ' (recorded lost)' : ''}`).join(', ');
      throw new OutputConflict(console, f.start, f.end, o.same ? `overlaps stored output with the same bytes at ${where}` : `differs from the output stored at ${where} (first at offset ${o.at})`, o);
    }
    const known = list.some((s) => s.key === key);
    // Output stored live first is what the segment must have: a segment never replaces it.
    const writes = this.hotWrites.get(console);
    let runs = await this.hot.runs(console);
    const diff = await this.hotDifference(console, f, blocks, runs);
    if (diff) {
      // The live output is kept, and sealed into segments now: no relay segment will ever cover
      // it, and the hot tail is trimmed only below what segments cover. (A presigned copy of the
      // refused segment goes first: a sealed piece may have its very key.)
      if (storedAs !== undefined && !known) await this.segs.delete(key);
      let sealed = false;
      for (const [a, b] of minus(overlapping([f.start, f.end], runs), list)) { await this.sealHot(console, list, a, b); sealed = true; }
      if (sealed) await this.indexChanged(console);
      throw new OutputConflict(console, f.start, f.end, `differs from the output stored live at ${diff.a}-${diff.b} (first at offset ${diff.at})`, await this.overlapFacts(console, f, blocks));
    }
    const r = storedAs !== undefined ? (known ? 'exists' : 'created') : await this.segs.put(key, body);
    if (r === 'exists' && storedAs === undefined) {
      const stored = await readFooter({ size: (await this.segs.list(key))[0]?.size ?? 0, read: (pos, len) => this.segs.get(key, { start: pos, end: pos + len }) });
      if (stored.sha256 !== f.sha256) throw new OutputConflict(console, f.start, f.end, `is not the segment already stored under ${key} (sha256 ${stored.sha256.slice(0, 12)}..., this one ${f.sha256.slice(0, 12)}...)`);
    }
    await this.sidecars(key, blocks, times);
    if (!known) this.listed(list, key, body.length, times);
    // Live output this process stored while the segment was written (from now on it is dropped
    // as a resend): compared too, and the segment taken back if it differs.
    if (this.hotWrites.get(console) !== writes) {
      runs = await this.hot.runs(console);
      const late = await this.hotDifference(console, f, blocks, runs);
      if (late) {
        if (!known) await this.unlist(console, list, key);
        throw new OutputConflict(console, f.start, f.end, `differs from the output stored live at ${late.a}-${late.b} (first at offset ${late.at})`);
      }
    }
    if (r === 'created') await this.indexChanged(console);
    const fresh = r === 'created' ? uncovered(f, blocks, runs) : [];
    await this.trimHot(console, list, runs);
    return { key, footer: f, created: r === 'created', lost: 0, lostAt: f.start, fresh };
  }

  /** A gap segment says its bytes are lost; output the cloud has in its range wins over that claim.
   *  It is recorded only where nothing is stored: parts stored in segments are left alone, parts
   *  that arrived live (the relay could not keep them, but sent them) are sealed into data
   *  segments here, and the rest is stored as gap segments (the whole segment as sent when
   *  nothing of it is stored). Idempotent: sent again, it finds its range stored. */
  private async putGap(console: string, f: SegmentFooter, body: Buffer, key: string, storedAs?: string) {
    const list = await this.segments(console);
    const known = list.some((s) => s.key === key);
    const runs = await this.hot.runs(console);
    const had = list.filter((s) => s.gap && s.start < f.end && f.start < s.end).map((s) => [Math.max(s.start, f.start), Math.min(s.end, f.end)] as const);
    const free = minus([[f.start, f.end]], list);
    const live = free.flatMap((r) => overlapping(r, runs));
    const lost = minus(free, runs);
    const whole = !live.length && lost.length === 1 && lost[0][0] === f.start && lost[0][1] === f.end;
    if (storedAs !== undefined && !known && !whole) await this.segs.delete(key); // stored in pieces instead
    let created = false;
    for (const [a, b] of live) { await this.sealHot(console, list, a, b); created = true; }
    for (const [a, b] of lost) {
      const piece = whole ? body : encodeGapSegment(console, { ...f.gap!, offset: a, bytes: b - a });
      if (await this.storeOwn(console, list, piece, whole ? storedAs : undefined)) created = true;
    }
    if (created) await this.indexChanged(console);
    await this.trimHot(console, list, await this.hot.runs(console));
    const recorded = had.length ? { lost: had.reduce((n, [a, b]) => n + b - a, 0), lostAt: had[0][0] } : undefined;
    return { key, footer: f, created, lost: lost.reduce((n, [a, b]) => n + b - a, 0), lostAt: lost[0]?.[0] ?? f.start, fresh: [], recorded };
  }

  /** Seals live output [a, b) (inside one hot-tail run) into data segments of at most
   *  hotSealBytes, with its chunk times: output the cloud keeps that no relay segment brings. */
  private async sealHot(console: string, list: SegIdx[], a: number, b: number): Promise<void> {
    for (let p = a; p < b; p += this.opts.hotSealBytes) {
      const cs = await this.hot.read(console, p, Math.min(b, p + this.opts.hotSealBytes));
      if (cs.length) await this.storeOwn(console, list, await encodeSegment(console, cs));
    }
  }

  /** Stores a segment the cloud made (or one a relay PUT under `storedAs`), with its grep index and
   *  time sidecar, and lists it. True if it was not stored before. */
  private async storeOwn(console: string, list: SegIdx[], body: Buffer, storedAs?: string): Promise<boolean> {
    const blocks: Buffer[] = [];
    const times = new ChunkTimes();
    const f = await verifySegment(body, (i, data, cs) => { blocks[i] = data; times.add(cs); });
    const key = segmentKey(f);
    if (list.some((s) => s.key === key)) return false;
    const r = storedAs !== undefined ? 'created' : await this.segs.put(key, body);
    if (r === 'exists') {
      const stored = await readFooter(bufferSource(await this.segs.get(key)));
      if (stored.sha256 !== f.sha256) throw new Conflict(`segment ${key} of ${console} is in the store with other bytes than the cloud would store there`);
    }
    await this.sidecars(key, blocks, times);
    this.listed(list, key, body.length, times);
    return true;
  }

  /** Derived objects of a data segment: its grep index (from indexMinBlocks blocks), and its time
   *  sidecar when its chunk times go back somewhere. */
  private async sidecars(key: string, blocks: Buffer[], times: ChunkTimes): Promise<void> {
    if (!blocks.length) return;
    if (blocks.length >= this.opts.indexMinBlocks) await this.segs.put(`${key}.tri`, buildIndex(blocks));
    if (!times.ordered) await this.segs.put(key + TIMES, Buffer.from(JSON.stringify({ min: times.min, max: times.max, blocks: times.blocks })));
  }

  /** Adds a stored segment to the cached listing (offset order). */
  private listed(list: SegIdx[], key: string, size: number, times?: ChunkTimes): void {
    const info: SegIdx = { ...parseSegmentKey(key)!, size, ...(times && !times.ordered ? { times: true } : {}) };
    let i = list.length;
    while (i > 0 && list[i - 1].start > info.start) i--;
    list.splice(i, 0, info);
  }

  /** Where the bytes stored in segments in `f`'s range lie, and whether `f` (its decoded `blocks`)
   *  has the same bytes there: what a 409 tells the relay. */
  private async overlapFacts(console: string, f: SegmentFooter, blocks: Buffer[]): Promise<StoredOverlap> {
    const stored: StoredOverlap['stored'] = [];
    let at: number | undefined;
    for (const s of await this.segments(console)) {
      const a = Math.max(s.start, f.start), b = Math.min(s.end, f.end);
      if (a >= b) continue;
      const last = stored.at(-1);
      if (last && last.end === a && !!last.gap === s.gap) last.end = b;
      else stored.push({ start: a, end: b, ...(s.gap ? { gap: true as const } : {}) });
      if (at !== undefined) continue;
      if (s.gap) { at = a; continue; }
      const d = firstDifference(await this.read(console, a, b), sliceBlocks(f, blocks, a, b));
      if (d !== undefined) at = a + d;
    }
    return { start: f.start, end: f.end, storedEnd: await this.end(console), stored, same: at === undefined, ...(at === undefined ? {} : { at }) };
  }

  /** Where segment `f` (its decoded `blocks`) differs from what the hot tail holds, if it does
   *  anywhere both have bytes. */
  private async hotDifference(console: string, f: SegmentFooter, blocks: Buffer[], runs: readonly { start: number; end: number }[]): Promise<{ a: number; b: number; at: number } | undefined> {
    for (const run of runs) {
      const a = Math.max(run.start, f.start), b = Math.min(run.end, f.end);
      if (a >= b) continue;
      for (const c of await this.hot.read(console, a, b)) {
        const at = firstDifference(c.data, sliceBlocks(f, blocks, c.offset, c.offset + c.data.length));
        if (at !== undefined) return { a, b, at: c.offset + at };
      }
    }
    return undefined;
  }

  /** Takes a segment just stored back out (it turned out to conflict): object, index and listing. */
  private async unlist(console: string, list: SegIdx[], key: string): Promise<void> {
    const i = list.findIndex((x) => x.key === key);
    if (i >= 0) list.splice(i, 1);
    await this.deleteSegment(key);
    await this.indexChanged(console);
  }

  /** Deletes a segment object and what is derived from it. */
  private async deleteSegment(key: string): Promise<void> {
    await this.segs.delete(key);
    await this.segs.delete(`${key}.tri`);
    await this.segs.delete(key + TIMES);
    this.footers.delete(key);
  }

  /** Drops hot-tail files that segments now cover. */
  private async trimHot(console: string, segs: SegIdx[], runs: { start: number; end: number }[]): Promise<void> {
    if (!runs.length) return;
    let covered = runs[0].start;
    for (const s of segs) {
      // Hot bytes under a gap segment (one stored before putGap sealed them) are the only copy left.
      if (s.gap && runs.some((r) => r.start < s.end && s.start < r.end)) break;
      if (s.end <= covered) continue;
      if (s.start > covered) break;
      covered = s.end;
    }
    if (covered > runs[0].start) await this.hot.trim(console, covered);
  }

  /** Merges each run of contiguous data segments that began on the same UTC day and ended
   *  before `before` (ms) into one segment (blocks copied, not re-encoded; a new grep index), so a
   *  quiet console's day is one object rather than hundreds: small objects must never reach an
   *  archive storage class. The merged segment is stored before the small ones are deleted, and
   *  readers meanwhile prefer it (dropCovered); segments it covers that are still listed (a crash
   *  in between, a late re-upload) are deleted by the next run. A run stops at a gap segment, at
   *  `maxBytes` or at `maxBlocks`. Returns what it did. */
  async compact(console: string, before: number, opts: { maxBytes?: number; maxBlocks?: number } = {}): Promise<{ merged: number; into: number; deleted: number }> {
    const maxBytes = opts.maxBytes ?? 256 * 1024 * 1024, maxBlocks = opts.maxBlocks ?? 20_000;
    // One listing (run hourly for every console: a LIST each, and footers only of what merges).
    const all = await this.listAll(console);
    const list = dropCovered([...all]);
    const kept = new Set(list.map((s) => s.key));
    let deleted = 0;
    // Leftovers of an earlier run: listed, but inside a bigger segment.
    for (const s of all) {
      if (kept.has(s.key) || s.gap) continue;
      await this.deleteSegment(s.key); deleted++;
    }
    const day = (t: number) => new Date(t).toISOString().slice(0, 10);
    const candidates: SegIdx[][] = [];
    let run: SegIdx[] = [], bytes = 0;
    const close = () => { if (run.length > 1) candidates.push(run); run = []; bytes = 0; };
    for (const s of list) {
      if (s.gap || s.t1 >= before) { close(); continue; }
      const prev = run.at(-1);
      if (prev && (prev.end !== s.start || day(prev.t0) !== day(s.t0) || bytes + s.size > maxBytes)) close();
      run.push(s); bytes += s.size;
    }
    close();
    // The footer limit: split runs at maxBlocks (footers read only for segments that merge).
    const runs: SegIdx[][] = [];
    for (const c of candidates) {
      let part: SegIdx[] = [], blocks = 0;
      for (const s of c) {
        const nb = (await this.footer(s)).blocks.length;
        if (part.length && blocks + nb > maxBlocks) { if (part.length > 1) runs.push(part); part = []; blocks = 0; }
        part.push(s); blocks += nb;
      }
      if (part.length > 1) runs.push(part);
    }
    let merged = 0;
    for (const r of runs) {
      const data: Buffer[] = [];
      const times = new ChunkTimes();
      const body = await concatSegments(await Promise.all(r.map((s) => this.segs.get(s.key))), (i, d, cs) => { data[i] = d; times.add(cs); });
      const f = await readFooter(bufferSource(body));
      const key = segmentKey(f);
      await this.segs.put(key, body);
      await this.sidecars(key, data, times);
      await this.indexChanged(console);
      for (const s of r) { await this.deleteSegment(s.key); deleted++; }
      merged += r.length;
    }
    if (deleted) await this.indexChanged(console);
    this.index.delete(console);
    return { merged, into: runs.length, deleted };
  }

  /** Deletes segments whose newest output is older than `before` (ms). Returns how many. */
  async expire(console: string, before: number): Promise<number> {
    const list = await this.segments(console);
    let n = 0;
    while (list.length && list[0].t1 < before) {
      const s = list.shift()!;
      await this.deleteSegment(s.key);
      n++;
    }
    if (n) await this.indexChanged(console);
    return n;
  }
}

function firstEndingAfter(xs: readonly { end: number }[], off: number): number {
  let lo = 0, hi = xs.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid].end <= off) lo = mid + 1; else hi = mid; }
  return lo;
}

function clip(c: Chunk, a: number, b: number): Chunk | undefined {
  const s = Math.max(c.offset, a), e = Math.min(c.offset + c.data.length, b);
  if (s >= e) return undefined;
  return s === c.offset && e === c.offset + c.data.length ? c : { offset: s, ts: c.ts, data: c.data.subarray(s - c.offset, e - c.offset) };
}

/** Bytes [a, b) of segment `f` from its decoded `blocks`. */
function sliceBlocks(f: SegmentFooter, blocks: Buffer[], a: number, b: number): Buffer {
  const parts: Buffer[] = [];
  f.blocks.forEach((blk, i) => {
    const lo = Math.max(a, blk.offset), hi = Math.min(b, blk.offset + blk.bytes);
    if (lo < hi) parts.push(blocks[i].subarray(lo - blk.offset, hi - blk.offset));
  });
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Index of the first byte where `x` and `y` differ (a shorter one differs where it ends), or undefined. */
function firstDifference(x: Buffer, y: Buffer): number | undefined {
  if (x.equals(y)) return undefined;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return i;
  return n;
}

/** The parts of ranges `xs` (in order, apart) outside every range of `ys` (in offset order). */
function minus(xs: readonly [number, number][], ys: readonly { start: number; end: number }[]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of xs) {
    let at = a;
    for (const y of ys) {
      if (y.end <= at) continue;
      if (y.start >= b) break;
      if (y.start > at) out.push([at, y.start]);
      at = Math.max(at, y.end);
    }
    if (at < b) out.push([at, b]);
  }
  return out;
}

/** The parts of range [a, b) inside ranges `ys` (in offset order). */
function overlapping([a, b]: [number, number], ys: readonly { start: number; end: number }[]): [number, number][] {
  const out: [number, number][] = [];
  for (const y of ys) { const s = Math.max(a, y.start), e = Math.min(b, y.end); if (s < e) out.push([s, e]); }
  return out;
}

/** The parts of segment `f` (its decoded `blocks`) that no hot-tail run holds. */
function uncovered(f: SegmentFooter, blocks: Buffer[], runs: readonly { start: number; end: number }[]): { offset: number; data: Buffer }[] {
  const holes: [number, number][] = [];
  let at = f.start;
  for (const r of [...runs].sort((a, b) => a.start - b.start)) {
    if (r.end <= at) continue;
    if (r.start >= f.end) break;
    if (r.start > at) holes.push([at, r.start]);
    at = Math.max(at, r.end);
  }
  if (at < f.end) holes.push([at, f.end]);
  return holes.map(([a, b]) => ({ offset: a, data: sliceBlocks(f, blocks, a, b) }));
}

/** The listing in offset order without segments inside another data segment (the small ones a
 *  compaction merged, until it deletes them). */
function dropCovered(list: SegIdx[]): SegIdx[] {
  list.sort((a, b) => a.start - b.start || b.end - a.end || Number(a.gap) - Number(b.gap));
  const out: SegIdx[] = [];
  let reach = -1, reachIsData = false;
  for (const s of list) {
    if (s.end <= reach && reachIsData && !s.gap) continue;
    out.push(s);
    if (s.end > reach) { reach = s.end; reachIsData = !s.gap; }
  }
  return out;
}
