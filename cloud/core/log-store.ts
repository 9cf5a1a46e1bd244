// A console's log as one byte stream: sealed segments (SegmentStore, uploaded by relays from their
// spools: the durable record) plus the hot tail (HotTail: live output not sealed yet, so replay is
// never minutes behind). Offsets are the relay's; any offset is in one of four states:
//   data     in a segment or in the hot tail (segments win where both have it: the same bytes, as
//            a segment is stored only if it has, byte for byte, what the hot tail held first)
//   gap      lost for good, recorded by a gap segment (a relay's spool overflowed)
//   pending  not here yet: sealed on the relay but not uploaded (after an outage), or beyond the end
// Stateless apart from caches, so it runs the same in the embedded server and in Lambda: a
// console's segment listing is cached, and listed again when the hot tail's index version (if it
// keeps one: DynamoDB) says another process changed the console's segments.
import { BadParameter, Conflict, NotFound } from '../../protocol/errors.ts';
import {
  bufferSource, concatSegments, parseSegmentKey, readBlock, readFooter, segmentKey, verifySegment, SegmentFormatError,
  type Chunk, type SegmentFooter, type SegmentKeyInfo, type SegmentSource,
} from '../../protocol/segment.ts';
import { blockMayContain, buildIndex, slotsOf } from './grep-index.ts';
import type { HotTail, OutputStore, SegmentStore } from './ports.ts';

interface SegIdx extends SegmentKeyInfo { size: number }

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
}
export const LOG_DEFAULTS: LogStoreOptions = { footerCache: 512, maxTailScan: 64 * 1024 * 1024, indexMinBlocks: 2 };

const HOT_STEP = 256 * 1024;

/** A segment that does not have the bytes stored first at its offsets (a live copy, a segment
 *  stored before): refused, and the stored output kept (the core audits it as output.conflict). */
export class OutputConflict extends Conflict {
  constructor(readonly console: string, readonly start: number, readonly end: number, what: string) {
    super(`segment ${start}-${end} of ${console} ${what}: the output stored first is kept`);
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
    for (const o of await this.segs.list(`logs/${console}/`)) {
      const k = parseSegmentKey(o.key);
      if (k && k.console === console) list.push({ ...k, size: o.size });
    }
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

  /** Offset of the first output that arrived at or after `time` (a gap's start if the time falls
   *  in a loss); the stored end if nothing did. */
  async offsetAt(console: string, time: number): Promise<number> {
    const segs = await this.segments(console);
    let lo = 0, hi = segs.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (segs[mid].t1 < time) lo = mid + 1; else hi = mid; }
    for (let i = lo; i < segs.length; i++) {
      const s = segs[i];
      const f = await this.footer(s);
      if (f.gap) return s.start;
      const bi = f.blocks.findIndex((b) => b.t1 >= time);
      if (bi < 0) continue;
      const c = (await readBlock(this.source(s), f, bi)).find((x) => x.ts >= time);
      if (c) return c.offset;
    }
    const hotAt = await this.hot.offsetAt(console, time);
    const segEnd = segs.at(-1)?.end ?? 0;
    if (hotAt !== undefined && hotAt >= segEnd) return hotAt;
    return this.end(console);
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

  /** Checks an upload before a relay is given a URL for it: a key of this console, not
   *  overlapping another stored segment. */
  async checkUpload(console: string, key: string): Promise<void> {
    const info = parseSegmentKey(key);
    if (!info || info.console !== console) throw new BadParameter(`${JSON.stringify(key)} is not a segment key of console ${console}`);
    const clash = (await this.segments(console)).find((s) => s.key !== key && s.start < info.end && info.start < s.end);
    if (clash) throw new Conflict(`segment ${info.start}-${info.end} of ${console} overlaps the stored segment ${clash.start}-${clash.end}`);
  }

  /** Stores a segment a relay uploaded (fully verified first). Idempotent: the same segment again
   *  is accepted as stored. `storedAs`: the body is already in the store under that key
   *  (commitSegment). A segment that would change output stored before throws OutputConflict. The comparison covers what the hot
   *  tail holds when it runs, and live output this process stores while the segment is written;
   *  on Lambda, a live message another container stores in those milliseconds is not compared
   *  (it is the relay's own fresh output, never output stored before). */
  async putSegment(console: string, body: Buffer, storedAs?: string): Promise<{
    key: string; footer: SegmentFooter; created: boolean;
    /** Bytes a gap segment really loses (not in the hot tail), from offset lostAt. */ lost: number; lostAt: number;
    /** Output this segment brought that was in no hot-tail run (it never arrived live, or not yet):
     *  what viewers have not been sent. */ fresh: { offset: number; data: Buffer }[] }> {
    let f: SegmentFooter;
    const blocks: Buffer[] = [];
    try { f = await verifySegment(body, (i, data) => { blocks[i] = data; }); } catch (e) {
      if (e instanceof SegmentFormatError) throw new BadParameter(`segment rejected: ${e.message}`);
      throw e;
    }
    if (f.console !== console) throw new BadParameter(`segment is for console ${f.console}, uploaded to ${console}`);
    const key = segmentKey(f);
    if (storedAs !== undefined && storedAs !== key) throw new BadParameter(`the object stored as ${storedAs} is segment ${key}`);
    const list = await this.segments(console);
    // Already part of a bigger segment (compaction merged it; the relay sends it again, having
    // missed the answer): stored, if it has the same bytes. A copy just PUT under its own key
    // (presigned) is left to the next compaction, which deletes segments others cover.
    const cover = list.find((s) => !s.gap && s.key !== key && s.start <= f.start && f.end <= s.end);
    if (cover && !f.gap) {
      const at = firstDifference(await this.read(console, f.start, f.end), sliceBlocks(f, blocks, f.start, f.end));
      if (at !== undefined) throw new OutputConflict(console, f.start, f.end, `differs from the stored segment ${cover.start}-${cover.end} (first at offset ${f.start + at})`);
      return { key, footer: f, created: false, lost: 0, lostAt: f.start, fresh: [] };
    }
    const clash = list.find((s) => s.key !== key && s.start < f.end && f.start < s.end);
    if (clash) throw new OutputConflict(console, f.start, f.end, `overlaps the stored segment ${clash.start}-${clash.end}`);
    const known = list.some((s) => s.key === key);
    // Output stored live first is what the segment must have: a segment never replaces it.
    const writes = this.hotWrites.get(console);
    let runs = await this.hot.runs(console);
    if (!f.gap) await this.sameAsHot(console, f, blocks, runs);
    const r = storedAs !== undefined ? (known ? 'exists' : 'created') : await this.segs.put(key, body);
    if (r === 'exists' && storedAs === undefined) {
      const stored = await readFooter({ size: (await this.segs.list(key))[0]?.size ?? 0, read: (pos, len) => this.segs.get(key, { start: pos, end: pos + len }) });
      if (stored.sha256 !== f.sha256) throw new OutputConflict(console, f.start, f.end, `is not the segment already stored under ${key} (sha256 ${stored.sha256.slice(0, 12)}..., this one ${f.sha256.slice(0, 12)}...)`);
    }
    if (!f.gap && blocks.length >= this.opts.indexMinBlocks) await this.segs.put(`${key}.tri`, buildIndex(blocks));
    if (!known) {
      const info = { ...parseSegmentKey(key)!, size: body.length };
      let i = list.length;
      while (i > 0 && list[i - 1].start > info.start) i--;
      list.splice(i, 0, info);
    }
    // Live output this process stored while the segment was written (from now on it is dropped
    // as a resend): compared too, and the segment taken back if it differs.
    if (!f.gap && this.hotWrites.get(console) !== writes) {
      runs = await this.hot.runs(console);
      try { await this.sameAsHot(console, f, blocks, runs); } catch (e) {
        if (!known) await this.unlist(console, list, key);
        throw e;
      }
    }
    if (r === 'created') await this.indexChanged(console);
    const fresh = r === 'created' && !f.gap ? uncovered(f, blocks, runs) : [];
    await this.trimHot(console, list, runs);
    let lost = 0, lostAt = f.start;
    if (f.gap) for await (const it of this.items(console, f.start, f.end)) if (it.kind === 'gap') { if (!lost) lostAt = it.offset; lost += it.bytes; }
    return { key, footer: f, created: r === 'created', lost, lostAt, fresh };
  }

  /** OutputConflict unless segment `f` (its decoded `blocks`) has the bytes the hot tail holds
   *  wherever both have some. */
  private async sameAsHot(console: string, f: SegmentFooter, blocks: Buffer[], runs: readonly { start: number; end: number }[]): Promise<void> {
    for (const run of runs) {
      const a = Math.max(run.start, f.start), b = Math.min(run.end, f.end);
      if (a >= b) continue;
      for (const c of await this.hot.read(console, a, b)) {
        const at = firstDifference(c.data, sliceBlocks(f, blocks, c.offset, c.offset + c.data.length));
        if (at !== undefined) throw new OutputConflict(console, f.start, f.end, `differs from the output stored live at ${a}-${b} (first at offset ${c.offset + at})`);
      }
    }
  }

  /** Takes a segment just stored back out (it turned out to conflict): object, index and listing. */
  private async unlist(console: string, list: SegIdx[], key: string): Promise<void> {
    const i = list.findIndex((x) => x.key === key);
    if (i >= 0) list.splice(i, 1);
    await this.segs.delete(key);
    await this.segs.delete(`${key}.tri`);
    this.footers.delete(key);
    await this.indexChanged(console);
  }

  /** Drops hot-tail files that segments now cover. */
  private async trimHot(console: string, segs: SegIdx[], runs: { start: number; end: number }[]): Promise<void> {
    if (!runs.length) return;
    let covered = runs[0].start;
    for (const s of segs) {
      if (s.gap) break; // hot bytes under a gap segment are the only copy left
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
      await this.segs.delete(s.key); await this.segs.delete(`${s.key}.tri`); this.footers.delete(s.key); deleted++;
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
      const body = await concatSegments(await Promise.all(r.map((s) => this.segs.get(s.key))), (i, d) => { data[i] = d; });
      const f = await readFooter(bufferSource(body));
      const key = segmentKey(f);
      await this.segs.put(key, body);
      if (data.length >= this.opts.indexMinBlocks) await this.segs.put(`${key}.tri`, buildIndex(data));
      await this.indexChanged(console);
      for (const s of r) { await this.segs.delete(s.key); await this.segs.delete(`${s.key}.tri`); this.footers.delete(s.key); deleted++; }
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
      await this.segs.delete(s.key);
      await this.segs.delete(`${s.key}.tri`);
      this.footers.delete(s.key);
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
