// The matcher of grep patterns (grep-pattern.ts): which lines of a byte buffer hold a match, in
// time linear in the bytes, with bounded memory, in steps the caller can interleave with other
// work. A Thompson NFA run as a lazily built DFA (as RE2 does): each DFA state is the set of NFA
// states alive after a byte, built the first time it is needed and cached. A pattern whose DFA
// would be huge (`(a|b)*a(a|b){15}`) only fills the cache: it is flushed and built again, and
// each byte then costs one NFA step (O(states)), never more; memory stays at the cache bound.
import { WORD, type Node } from './grep-pattern.ts';

const SET = 0, SPLIT = 1, ASSERT = 2, MATCH = 3;
const BOL = 0, EOL = 1, WORDB = 2, NWORDB = 3;
const KIND = { bol: BOL, eol: EOL, wordb: WORDB, nwordb: NWORDB } as const;

export interface Program { op: Uint8Array; a: Int32Array; b: Int32Array; sets: Uint8Array[]; start: number }

/** The NFA of a parsed pattern: SET (a byte of sets[a], then b), SPLIT (a or b), ASSERT (kind a,
 *  then b), MATCH. Built from the end backwards, so every jump target is known when emitted. */
export function compile(root: Node): Program {
  const op: number[] = [MATCH], a: number[] = [0], b: number[] = [0];
  const sets: Uint8Array[] = [];
  const setIds = new Map<Uint8Array, number>();
  const emit = (o: number, x: number, y: number) => { op.push(o); a.push(x); b.push(y); return op.length - 1; };
  const go = (n: Node, next: number): number => {
    switch (n.t) {
      case 'set': {
        let id = setIds.get(n.set);
        if (id === undefined) { id = sets.push(n.set) - 1; setIds.set(n.set, id); }
        return emit(SET, id, next);
      }
      case 'assert': return emit(ASSERT, KIND[n.kind], next);
      case 'seq': for (let i = n.items.length - 1; i >= 0; i--) next = go(n.items[i], next); return next;
      case 'alt': {
        let entry = go(n.alts[n.alts.length - 1], next);
        for (let i = n.alts.length - 2; i >= 0; i--) entry = emit(SPLIT, go(n.alts[i], next), entry);
        return entry;
      }
      case 'rep': {
        if (n.max === Infinity) {
          const loop = emit(SPLIT, 0, next);
          a[loop] = go(n.node, loop);
          next = loop;
        } else for (let k = n.min; k < n.max; k++) next = emit(SPLIT, go(n.node, next), next); // x? repeated: the same lines as x{0,k}
        for (let k = 0; k < n.min; k++) next = go(n.node, next);
        return next;
      }
    }
  };
  const start = go(root, 0);
  return { op: Uint8Array.from(op), a: Int32Array.from(a), b: Int32Array.from(b), sets, start };
}

export interface MatcherLimits {
  /** Memory of the DFA cache, in 4-byte cells (each state: 256 transitions plus its NFA sets). */
  cacheCells: number;
}
export const MATCHER_DEFAULTS: MatcherLimits = { cacheCells: 1 << 20 }; // 4 MiB

const UNKNOWN = -1, MATCHED = -2;

interface DState {
  core: Int32Array; // NFA states (SET targets) waiting for the closure, sorted
  bol: boolean; // the byte before was a line start or `\r`
  word: boolean; // the byte before was a word byte
  /** Closures under the 4 combinations of what follows (`\r`/end of line, word byte or not):
   *  the SET states reached, or null when MATCH was reached. */
  closures: (Int32Array | null | undefined)[];
}

/** Finds the lines of a buffer that hold a match. One matcher per scan (it keeps a cursor). */
export class LineMatcher {
  /** Work done so far: bytes scanned plus NFA states visited building DFA states. */
  work = 0;
  private trans = new Int32Array(0);
  private states: DState[] = [];
  private ids = new Map<string, number>();
  private cells = 0;
  private init = 0;
  private readonly mark: Uint32Array;
  private gen = 0;
  private readonly stack: Int32Array;

  constructor(private readonly p: Program, private readonly limits: MatcherLimits = MATCHER_DEFAULTS) {
    this.mark = new Uint32Array(p.op.length);
    this.stack = new Int32Array(p.op.length * 3 + 2); // pushes: the core, the start, two per state visited
    this.flush();
  }

  // Cursor over the region being scanned.
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private end = 0;
  private final = true;
  private s = 0;
  private lineStart = 0;

  /** Starts scanning buf[from, to), where `from` is a line start. `final`: a line not ended by a
   *  newline at `to` ends there (else the caller only passes whole lines). */
  begin(buf: Uint8Array, from: number, to: number, final = true): void {
    this.buf = buf; this.pos = from; this.end = to; this.final = final;
    this.s = this.init; this.lineStart = from;
  }

  /** Scans on until `budget` more work is done or the region ends; pushes the start offset of
   *  each matching line onto `hits`. True when the region is done. */
  run(hits: number[], budget: number): boolean {
    const buf = this.buf, end = this.end;
    let work = this.work;
    const stop = work + budget;
    let s = this.s, i = this.pos, lineStart = this.lineStart, trans = this.trans;
    while (i < end && work < stop) {
      const c = buf[i];
      if (c === 10) {
        this.work = work;
        if (this.eolMatch(s)) hits.push(lineStart);
        work = this.work + 1;
        s = this.init; lineStart = ++i;
        continue;
      }
      let n = trans[(s << 8) | c];
      if (n === UNKNOWN) {
        this.work = work;
        n = this.step(s, c); // may flush the cache: then n is an id in the new one
        work = this.work;
        trans = this.trans;
      }
      if (n === MATCHED) {
        hits.push(lineStart);
        const nl = buf.indexOf(10, i);
        i = nl < 0 || nl >= end ? end : nl + 1;
        s = this.init; lineStart = i; work++;
        continue;
      }
      s = n; i++; work++;
    }
    this.work = work;
    this.s = s; this.pos = i; this.lineStart = lineStart;
    if (i < end) return false;
    if (this.final && lineStart < end && this.eolMatch(s)) hits.push(lineStart);
    this.lineStart = end;
    return true;
  }

  /** Cache cells in use (bounded by MatcherLimits.cacheCells plus one state's closures). */
  cachedCells(): number { return this.cells; }

  /** Whether a state matches at the end of its line. */
  private eolMatch(s: number): boolean {
    return this.closure(this.states[s], 1) === null;
  }

  /** The transition of state `s` on byte `c` (added to the table): a state id or MATCHED. */
  private step(s: number, c: number): number {
    const st = this.states[s];
    const cl = this.closure(st, (c === 13 ? 1 : 0) | (WORD[c] ? 2 : 0));
    if (cl === null) { this.trans[s * 256 + c] = MATCHED; return MATCHED; }
    const { op, a, b, sets } = this.p;
    const next = new Int32Array(cl.length);
    let len = 0;
    for (let k = 0; k < cl.length; k++) { const pc = cl[k]; if (op[pc] === SET && sets[a[pc]][c]) next[len++] = b[pc]; }
    const sorted = next.subarray(0, len).sort();
    let u = 0;
    for (let k = 0; k < len; k++) if (k === 0 || sorted[k] !== sorted[u - 1]) sorted[u++] = sorted[k];
    const core = sorted.slice(0, u);
    this.work += cl.length + 4 * u; // the filter, and the sort and key of the new core
    const n = this.stateOf(core, c === 13, !!WORD[c]);
    if (this.states[s] !== st) return n; // flushed while adding: the old state is gone, do not write
    this.trans[s * 256 + c] = n;
    return n;
  }

  private stateOf(core: Int32Array, bol: boolean, word: boolean): number {
    const key = `${bol ? 1 : 0}${word ? 1 : 0}${core.join(',')}`;
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    if (this.cells + 256 + core.length > this.limits.cacheCells && this.states.length > 1) this.flush();
    const id = this.states.length;
    this.states.push({ core, bol, word, closures: [] });
    this.ids.set(key, id);
    this.cells += 256 + core.length + key.length / 2;
    if (this.trans.length < (id + 1) * 256) {
      const t = new Int32Array(Math.max(256 * 16, this.trans.length * 2));
      t.fill(UNKNOWN);
      t.set(this.trans);
      this.trans = t;
    }
    return id;
  }

  /** Forgets every DFA state (the cache is full) and starts again from the line-start state. */
  private flush(): void {
    this.states = []; this.ids.clear(); this.cells = 0;
    this.trans = new Int32Array(0);
    this.init = this.stateOf(new Int32Array(0), true, false);
  }

  /** The SET states reachable from a state's core plus the pattern start (a match may begin at
   *  any byte) through SPLITs and the assertions that hold between the byte before and what
   *  follows (`after`: bit 1 end of line or `\r` next, bit 2 a word byte next); null if MATCH is
   *  reachable. Cached per state. */
  private closure(st: DState, after: number): Int32Array | null {
    const cached = st.closures[after];
    if (cached !== undefined) return cached;
    const { op, a, b, start } = this.p;
    const mark = this.mark, stack = this.stack;
    if (++this.gen === 0xffffffff) { mark.fill(0); this.gen = 1; }
    const gen = this.gen;
    const eol = (after & 1) !== 0, wordAfter = (after & 2) !== 0;
    const out: number[] = [];
    let sp = 0, matched = false;
    for (let k = 0; k < st.core.length; k++) stack[sp++] = st.core[k];
    stack[sp++] = start;
    while (sp > 0) {
      const pc = stack[--sp];
      if (mark[pc] === gen) continue;
      mark[pc] = gen;
      this.work++;
      switch (op[pc]) {
        case SET: out.push(pc); break;
        case MATCH: matched = true; sp = 0; break;
        case SPLIT: stack[sp++] = b[pc]; stack[sp++] = a[pc]; break;
        case ASSERT: {
          const k = a[pc];
          const holds = k === BOL ? st.bol : k === EOL ? eol : (st.word !== wordAfter) === (k === WORDB);
          if (holds) stack[sp++] = b[pc];
          break;
        }
      }
    }
    const r = matched ? null : Int32Array.from(out);
    st.closures[after] = r;
    this.cells += r ? r.length : 0;
    return r;
  }
}
