// The relay's local audit journal (issue 17): what local (break-glass) sessions did, kept in the
// spool until the cloud has chained it into the console's audit trail.
//
// One file per console, SPOOL/.local-audit/<console>.jsonl (a dot folder: no console is named so),
// JSON lines:
//   line 1, the header:  {"journal":"<id>","after":N}
//     `journal` names this file's sequence (random, made with the file: a relay whose spool was
//     wiped starts a new one, which the cloud tells apart from the old); `after`, the last seq the
//     cloud confirmed (the records up to it were removed).
//   then one record a line: {"seq":N+1,"what","user","source"?,"fp"?,"session","ts","o"?,"detail"?,"d"?}
//     seq: 1, 2, 3 ... per journal, never reused (the cloud appends a seq once: a record uploaded
//     again after a crash between upload and confirm is not a second audit entry); `o`: the
//     console's output offset when it happened (where `cloudcons audit` places it in the output);
//     `d`: input bytes in base64, absent when typed at a password prompt (then `detail` says how
//     many: InputRedactor, the cloud's own decision, fed the console's output by the relay).
// record() appends its line and fdatasyncs before it returns: the SSH server forwards input only
// after that, so input that reached the device is on disk. A line cut short by a crash (its
// record() never returned: what it describes never went ahead) is dropped at the next start.
// Confirming rewrites the file (header `after` moved, confirmed lines gone) with writeFileAtomic:
// a crash leaves the old file or the new one.
//
// Bounded: a console's journal takes input records up to maxBytes (default 16 MiB); past it
// record() throws JournalFull and the SSH server does not forward the input (an audit record of
// input that reached the device is never lost). Other records (signin, attach, detach...) may use
// a reserve of RESERVE_BYTES beyond it, so the end of a session is still recorded.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { syncDir, writeAllSync, writeFileAtomic } from '../../protocol/atomic-file.ts';
import { InputRedactor } from '../../protocol/secret-prompt.ts';
import { isConsoleName } from '../../protocol/names.ts';
import { BadParameter, StorageFull } from '../../protocol/errors.ts';
import { localAuditRec, MAX_LOCAL_AUDIT_INPUT } from '../../protocol/messages.ts';
import type { LocalAudit, LocalAuditRecord } from './types.ts';

export const JOURNAL_DIR = '.local-audit';
/** Default cap of one console's journal (relay option localAuditMaxBytes). */
export const DEFAULT_JOURNAL_BYTES = 16 * 1024 * 1024;
/** What records other than input may take beyond the cap. */
export const RESERVE_BYTES = 64 * 1024;

/** A journal record as stored and uploaded (protocol/messages.ts `audit`). */
export interface JournalRecord {
  seq: number;
  what: string;
  user: string;
  source?: 'relay.yaml' | 'cloud';
  fp?: string;
  session: string;
  ts: number;
  o?: number;
  detail?: string;
  d?: string;
}

/** The journal is at its cap: the input was not recorded, so it must not be forwarded. */
export class JournalFull extends StorageFull {}

interface Journal {
  id: string;
  after: number;
  next: number;
  /** Records not confirmed yet, oldest first, with their line's length. */
  recs: { rec: JournalRecord; bytes: number }[];
  bytes: number;
  fd?: number;
}

export interface AuditJournalOptions {
  /** The relay's spool folder. */
  dir: string;
  /** Cap of one console's journal, bytes. Default DEFAULT_JOURNAL_BYTES. */
  maxBytes?: number;
  /** The console's output offset now (its spool's next byte), to place a record in the output. */
  offsetOf?: (console: string) => number | undefined;
  log?: (msg: string) => void;
}

export class AuditJournal implements LocalAudit {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly journals = new Map<string, Journal>();
  private readonly redactors = new Map<string, InputRedactor>();
  /** Called after a record is durable (the relay uploads it if the link is up). */
  onRecord?: (console: string) => void;

  constructor(private readonly o: AuditJournalOptions) {
    this.dir = path.join(o.dir, JOURNAL_DIR);
    this.maxBytes = o.maxBytes ?? DEFAULT_JOURNAL_BYTES;
    this.load();
  }

  /** The console's output, in order: what decides whether input is redacted. */
  output(console: string, data: Uint8Array): void {
    let r = this.redactors.get(console);
    if (!r) this.redactors.set(console, (r = new InputRedactor()));
    r.output(data);
  }

  /** Durable when it returns. Input longer than MAX_LOCAL_AUDIT_INPUT bytes becomes several
   *  records (what one upload record carries). Throws (nothing recorded, so the caller must not go
   *  on with what it describes) when the journal is full (JournalFull), the disk refuses, or the
   *  record is not one the cloud would take (a name or text outside protocol/messages.ts's rules:
   *  better refused now than stuck in the journal). */
  record(r: LocalAuditRecord): void {
    if (!isConsoleName(r.console)) throw new BadParameter(`local audit: ${JSON.stringify(r.console)} is not a console name`);
    const j = this.journal(r.console);
    const o = this.o.offsetOf?.(r.console);
    const red = r.data ? (this.redactors.get(r.console) ?? new InputRedactor()).input(r.data) : undefined;
    const lines: Buffer[] = [];
    const add = (d?: Buffer, note?: string) => {
      const rec: JournalRecord = { seq: j.next + lines.length, what: r.what, user: r.user, session: r.session, ts: r.ts };
      if (r.source) rec.source = r.source;
      if (r.fingerprint) rec.fp = r.fingerprint;
      if (o !== undefined) rec.o = o;
      const detail = [r.detail, note].filter((x) => x).join(' ');
      if (detail) rec.detail = detail.slice(0, 1024);
      if (d) rec.d = d.toString('base64');
      const ok = localAuditRec.safeParse(rec);
      if (!ok.success) throw new BadParameter(`local audit of ${r.console}: not recorded: ${ok.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      lines.push(Buffer.from(`${JSON.stringify(rec)}\n`));
    };
    if (red?.data) { let i = 0; do add(red.data.subarray(i, (i += MAX_LOCAL_AUDIT_INPUT))); while (i < red.data.length); } // one record at least
    else add(undefined, red?.detail);
    const bytes = lines.reduce((n, l) => n + l.length, 0);
    const cap = this.maxBytes + (r.what === 'input' ? 0 : RESERVE_BYTES);
    if (j.bytes + bytes > cap) {
      throw new JournalFull(`the local audit journal of ${r.console} is full (${j.bytes} bytes, cap ${this.maxBytes}: relay option localAuditMaxBytes): ` +
        `it empties once the cloud is reachable again; until then ${r.what === 'input' ? 'input is not sent to the console' : `'${r.what}' is refused`}`);
    }
    const fd = this.fd(r.console, j);
    const size = fs.fstatSync(fd).size;
    try {
      writeAllSync(fd, lines);
      fs.fdatasyncSync(fd);
    } catch (e) {
      // Nothing half written stays (a later record after a torn line would be lost at the next start).
      try { fs.ftruncateSync(fd, size); } catch { /* the load cuts it */ }
      throw new StorageFull(`the local audit journal of ${r.console} could not be written (${(e as Error).message}): ${r.what === 'input' ? 'input is not sent to the console' : `'${r.what}' is refused`}`);
    }
    for (const l of lines) {
      j.recs.push({ rec: JSON.parse(l.toString()) as JournalRecord, bytes: l.length });
      j.next++;
    }
    j.bytes += bytes;
    this.onRecord?.(r.console);
  }

  /** Consoles whose journal holds records the cloud has not confirmed. */
  pendingConsoles(): string[] {
    return [...this.journals].filter(([, j]) => j.recs.length).map(([c]) => c);
  }

  /** The oldest unconfirmed records of `console` (at most `max`, and about `maxBytes` of them). */
  pending(console: string, max = 64, maxBytes = 16 * 1024): { journal: string; recs: JournalRecord[] } | undefined {
    const j = this.journals.get(console);
    if (!j?.recs.length) return undefined;
    const recs: JournalRecord[] = [];
    let bytes = 0;
    for (const { rec, bytes: b } of j.recs) {
      if (recs.length >= max || (recs.length && bytes + b > maxBytes)) break;
      recs.push(rec);
      bytes += b;
    }
    return { journal: j.id, recs };
  }

  /** The cloud has chained `console`'s records up to `seq` of journal `journal`: they leave the
   *  journal (the file rewritten atomically). A confirm of another journal or of nothing new is
   *  ignored. */
  confirm(console: string, journal: string, seq: number): void {
    const j = this.journals.get(console);
    if (!j || j.id !== journal || seq <= j.after) return;
    const upTo = Math.min(seq, j.next - 1);
    const kept = j.recs.filter((x) => x.rec.seq > upTo);
    const file = this.file(console);
    writeFileAtomic(file, [header(j.id, upTo), ...kept.map((x) => JSON.stringify(x.rec))].map((l) => `${l}\n`).join(''));
    if (j.fd !== undefined) { fs.closeSync(j.fd); j.fd = undefined; } // the old file was renamed over
    j.after = upTo;
    j.recs = kept;
    j.bytes = kept.reduce((n, x) => n + x.bytes, 0);
  }

  close(): void {
    for (const j of this.journals.values()) if (j.fd !== undefined) { fs.closeSync(j.fd); j.fd = undefined; }
  }

  private file(console: string): string { return path.join(this.dir, `${console}.jsonl`); }

  private journal(console: string): Journal {
    let j = this.journals.get(console);
    if (!j) {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      j = { id: randomBytes(9).toString('base64url'), after: 0, next: 1, recs: [], bytes: 0 };
      writeFileAtomic(this.file(console), `${header(j.id, 0)}\n`); // the header durable before any record
      this.journals.set(console, j);
    }
    return j;
  }

  private fd(console: string, j: Journal): number {
    if (j.fd === undefined) j.fd = fs.openSync(this.file(console), 'a');
    return j.fd;
  }

  /** Reads every journal in the spool; a line a crash cut short (the last) is cut off the file. */
  private load(): void {
    let names: string[];
    try { names = fs.readdirSync(this.dir); } catch { return; }
    for (const f of names) {
      const console = f.endsWith('.jsonl') ? f.slice(0, -6) : '';
      if (!isConsoleName(console)) continue;
      const file = path.join(this.dir, f);
      const text = fs.readFileSync(file);
      let pos = 0;
      let j: Journal | undefined;
      const recs: Journal['recs'] = [];
      let good = 0;
      while (pos < text.length) {
        const nl = text.indexOf(0x0a, pos);
        if (nl < 0) break; // cut short
        let v: unknown;
        try { v = JSON.parse(text.subarray(pos, nl).toString('utf8')); } catch { break; }
        if (!j) {
          const h = v as { journal?: unknown; after?: unknown };
          if (typeof h?.journal !== 'string' || !Number.isSafeInteger(h.after)) break;
          j = { id: h.journal, after: h.after as number, next: (h.after as number) + 1, recs, bytes: 0 };
        } else {
          const rec = v as JournalRecord;
          if (rec?.seq !== j.next) break; // only a torn write ends a journal early
          recs.push({ rec, bytes: nl + 1 - pos });
          j.bytes += nl + 1 - pos;
          j.next++;
        }
        pos = nl + 1;
        good = pos;
      }
      if (!j) { this.o.log?.(`local audit: ${file} has no readable header: left alone (not uploaded)`); continue; }
      if (good < text.length) {
        this.o.log?.(`local audit: ${file}: ${text.length - good} bytes after its last whole record (a write a crash cut short) removed`);
        fs.truncateSync(file, good);
        syncDir(this.dir);
      }
      this.journals.set(console, j);
    }
  }
}

function header(id: string, after: number): string { return JSON.stringify({ journal: id, after }); }
