// Replay: a time range of a console's stored output played back in a terminal, with play/pause,
// speed (1x-64x), idle skipping, a timeline showing output density and events (attach, force,
// break, console up/down), seeking by clicking the timeline or typing a time, and search across
// the whole range (jump to each match, highlighted).
//
// The output comes from the replay API as `format=chunks` (NDJSON: offset, arrival time, bytes);
// events from the console's audit trail. Seeking resets the terminal and writes everything up to
// the target at once, so the screen is exactly what a terminal showed at that moment.
import type { Terminal } from '@xterm/xterm';
import type { SearchAddon } from '@xterm/addon-search';
import { apiJson, token, type Config } from './api.ts';
import { b64ToBytes } from './session.ts';

export interface Chunk { o: number; ts: number; d: Uint8Array }
export interface Mark { ts: number; type: string; label: string }

/** Idle gaps are cut to this when "skip idle" is on (ms). */
export const IDLE_CAP_MS = 1000;
/** Largest range the player loads (bytes of output). */
export const MAX_REPLAY_BYTES = 64 * 1024 * 1024;

const MARK_TYPES: Record<string, string> = {
  'session.attach': 'attach', 'session.detach': 'detach', 'lock.force': 'force', 'lock.take': 'lock', 'break': 'break',
  'console.up': 'up', 'console.down': 'down',
};

/** `until` undefined: up to now (what the console printed until the request). */
export async function loadRange(cfg: Config, name: string, since: number, until?: number): Promise<{ chunks: Chunk[]; marks: Mark[]; truncated: boolean }> {
  const q = new URLSearchParams({ format: 'chunks', since: String(since), ...(until !== undefined ? { until: String(until) } : {}) });
  const r = await fetch(`${cfg.apiUrl}/v1/consoles/${encodeURIComponent(name)}/replay?${q}`, { headers: { authorization: `Bearer ${token.get()}` } });
  if (!r.ok) throw new Error(`replay: ${r.status} ${(await r.text()).slice(0, 200)}`);
  const chunks: Chunk[] = [];
  let bytes = 0;
  let truncated = false;
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += value;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const it = JSON.parse(line) as { o?: number; ts?: number; d?: string; gap?: { bytes: number; t0: number } };
      if (it.d !== undefined && it.o !== undefined && it.ts !== undefined) {
        const d = b64ToBytes(it.d);
        bytes += d.length;
        if (bytes > MAX_REPLAY_BYTES) { truncated = true; break; }
        chunks.push({ o: it.o, ts: it.ts, d });
      } else if (it.gap) {
        chunks.push({ o: -1, ts: it.gap.t0, d: new TextEncoder().encode(`\r\n[-- ${it.gap.bytes} bytes lost --]\r\n`) });
      }
    }
    if (done || truncated) { if (truncated) void reader.cancel(); break; }
  }
  const audit = await apiJson<{ records: { time: number; type: string; user?: string; detail?: string }[] }>(cfg, `/v1/consoles/${encodeURIComponent(name)}/audit`);
  const marks = audit.records.filter((r) => r.time >= since && r.time <= (until ?? Infinity) && MARK_TYPES[r.type])
    .map((r) => ({ ts: r.time, type: MARK_TYPES[r.type]!, label: `${MARK_TYPES[r.type]}${r.user ? ` ${r.user}` : ''}${r.detail ? `: ${r.detail}` : ''}` }));
  return { chunks, marks, truncated };
}

/** Plays chunks into a terminal. Time is "range time": ms since the first chunk (idle skipped
 *  gaps count as IDLE_CAP_MS when skipIdle is on). */
export class Player {
  speed = 1;
  playing = false;
  private i = 0; // next chunk to write
  private clock = 0; // range time of the next chunk boundary reached
  private timer?: number;
  private readonly times: number[] = []; // range time of each chunk
  onTick?: (t: number) => void;
  onEnd?: () => void;

  constructor(private readonly term: Terminal, readonly chunks: Chunk[], private skipIdle = false) { this.retime(); }

  get duration(): number { return this.times.at(-1) ?? 0; }
  get position(): number { return this.clock; }
  /** Wall-clock time (ms) of a range time, for labels. */
  wallTime(t: number): number {
    const i = this.indexAt(t);
    return this.chunks.length ? this.chunks[Math.min(i, this.chunks.length - 1)].ts : 0;
  }
  /** Range time of a wall-clock time. */
  rangeTime(wall: number): number {
    const i = this.chunks.findIndex((c) => c.ts >= wall);
    return i < 0 ? this.duration : this.times[i];
  }

  setSkipIdle(on: boolean): void {
    const wall = this.wallTime(this.clock);
    this.skipIdle = on;
    this.retime();
    this.clock = this.rangeTime(wall);
  }

  private retime(): void {
    this.times.length = 0;
    let t = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      if (i > 0) {
        const gap = Math.max(0, this.chunks[i].ts - this.chunks[i - 1].ts);
        t += this.skipIdle ? Math.min(gap, IDLE_CAP_MS) : gap;
      }
      this.times.push(t);
    }
  }

  private indexAt(t: number): number {
    let lo = 0, hi = this.times.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.times[mid] <= t) lo = mid + 1; else hi = mid; }
    return lo; // first chunk after t
  }

  play(): void {
    if (this.playing) return;
    if (this.i >= this.chunks.length) this.seek(0);
    this.playing = true;
    this.schedule();
  }

  pause(): void { this.playing = false; clearTimeout(this.timer); }

  /** Shows the screen as it was at range time t: reset, then everything before it at once. */
  seek(t: number): void {
    clearTimeout(this.timer);
    this.term.reset();
    const n = this.indexAt(Math.max(0, t));
    for (let k = 0; k < n; k++) this.term.write(this.chunks[k].d);
    this.i = n;
    this.clock = Math.max(0, Math.min(t, this.duration));
    this.onTick?.(this.clock);
    if (this.playing) this.schedule();
  }

  /** Range times at which `needle` appears in the output (searching chunk text, joined across chunk edges). */
  findAll(needle: string): number[] {
    if (!needle) return [];
    const dec = new TextDecoder();
    const hay = this.chunks.map((c) => dec.decode(c.d)).join('');
    const starts: number[] = [];
    let acc = 0;
    const ends = this.chunks.map((c) => (acc += dec.decode(c.d).length));
    const low = hay.toLowerCase(), q = needle.toLowerCase();
    for (let p = low.indexOf(q); p >= 0; p = low.indexOf(q, p + 1)) {
      const endAt = p + q.length; // the chunk holding the match's last character
      const k = ends.findIndex((e) => e >= endAt);
      starts.push(this.times[k] ?? this.duration);
    }
    return [...new Set(starts)];
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.playing) return;
    if (this.i >= this.chunks.length) { this.playing = false; this.onEnd?.(); return; }
    const due = (this.times[this.i] - this.clock) / this.speed;
    this.timer = window.setTimeout(() => {
      this.term.write(this.chunks[this.i].d);
      this.clock = this.times[this.i];
      this.i++;
      this.onTick?.(this.clock);
      this.schedule();
    }, Math.max(0, Math.min(due, 60_000)));
  }
}

/** The timeline: output density per pixel column, event markers, the play head. */
export function drawTimeline(canvas: HTMLCanvasElement, p: Player, marks: Mark[]): void {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.max(1, Math.floor(w * dpr));
  canvas.height = Math.max(1, Math.floor(h * dpr));
  const g = canvas.getContext('2d')!;
  g.scale(dpr, dpr);
  g.fillStyle = '#1b2027';
  g.fillRect(0, 0, w, h);
  const dur = Math.max(1, p.duration);
  const cols = new Float64Array(Math.max(1, Math.floor(w)));
  p.chunks.forEach((c, i) => { cols[Math.min(cols.length - 1, Math.floor((timeOf(p, i) / dur) * cols.length))] += c.d.length; });
  const max = Math.max(1, ...cols);
  g.fillStyle = '#3b82c4';
  cols.forEach((v, x) => { if (v) { const bh = Math.max(1, (Math.log1p(v) / Math.log1p(max)) * (h - 10)); g.fillRect(x, h - bh, 1, bh); } });
  const colours: Record<string, string> = { attach: '#56d364', detach: '#6e7681', force: '#e3b341', lock: '#d29922', break: '#ff7b72', up: '#56d364', down: '#ff7b72' };
  for (const m of marks) {
    const x = (p.rangeTime(m.ts) / dur) * w;
    g.fillStyle = colours[m.type] ?? '#ffffff';
    g.fillRect(Math.round(x), 0, 2, 8);
  }
  g.fillStyle = '#ffffff';
  g.fillRect(Math.round((p.position / dur) * w), 0, 1, h);
}

function timeOf(p: Player, i: number): number { return (p as unknown as { times: number[] }).times[i] ?? 0; }

export type { SearchAddon };
