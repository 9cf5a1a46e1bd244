// Audit: who typed what, on one console or across all, filterable by user, kind and time, each
// input shown readably (^C, ^M ...) with the console's answer after it (the output between that
// input and the next record), and exported as CSV or JSON. Auditors read it; nothing here writes.
import { readable } from '../../cli/readable.ts';
import { apiJson, token, type Config, type ConsoleView } from './api.ts';
import { b64ToBytes } from './session.ts';
import { h } from './dom.ts';
import { toCsv } from './csv.ts';
import { AUDIT_LOAD_DEFAULTS, loadAudits } from './audit-load.ts';

export interface AuditRecord {
  time: number; console: string; type: string; user?: string; session?: string; fence?: number;
  detail?: string; data?: string; offset?: number;
  /** Recorded at the relay by a local session while the cloud was away (`time`: when the cloud
   *  chained it; `relayTime`: when it happened, on the relay's clock). */
  via?: 'local'; relayTime?: number; relay?: string;
  /** Shown rows only: how many stored records this row joins (keystrokes typed one by one). */
  records?: number;
  /** Shown rows only: offset of the last joined record (the answer starts there). */
  lastOffset?: number;
}

/** Keystrokes of one session are joined into a line until Enter (or a pause this long, ms). */
const JOIN_MS = 30_000;

/** Joins a session's consecutive `input` records into lines: a raw terminal sends each keystroke
 *  as it is typed, but a reader wants `ls -l^M`, not six rows. */
export function joinKeystrokes(recs: AuditRecord[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  const open = new Map<string, AuditRecord>(); // session -> row still taking keystrokes
  for (const r of recs) {
    const key = `${r.console}\u0000${r.session ?? ''}`;
    const cur = open.get(key);
    if (r.type === 'input' && r.data !== undefined && cur && r.time - cur.time <= JOIN_MS && out[out.length - 1] === cur) {
      cur.data = bytesToB64Joined(cur.data!, r.data);
      cur.records = (cur.records ?? 1) + 1;
      cur.lastOffset = r.offset ?? cur.lastOffset;
    } else {
      const row = { ...r, records: 1, lastOffset: r.offset };
      out.push(row);
      if (r.type === 'input' && r.data !== undefined) open.set(key, row); else open.delete(key);
    }
    const last = out[out.length - 1];
    if (last.type === 'input' && last.data !== undefined && /[\r\n]$/.test(atob(last.data))) open.delete(key); // Enter ends the line
  }
  return out;
}

function bytesToB64Joined(a: string, b: string): string { return btoa(atob(a) + atob(b)); }

/** Output shown after each input, at most (bytes). */
const ANSWER_BYTES = 2048;


/** What a record shows in the "what" column: the input readably, else the detail. */
export function what(r: AuditRecord): string {
  if (r.data !== undefined) return readable(b64ToBytes(r.data));
  return r.detail ?? '';
}

/** Output as plain text lines: escape sequences removed, carriage returns folded. */
export function plainText(bytes: Uint8Array): string {
  const s = new TextDecoder().decode(bytes)
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][0-~]|\x1b[@-_]|\x1b[=>78]/g, '')
    .replace(/\r\n/g, '\n');
  return s.split('\n').map((l) => l.slice(l.lastIndexOf('\r') + 1)).join('\n').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** The shown rows as CSV (web/src/csv.ts: a cell that could run as a formula starts with `'`). */
export function auditCsv(rows: AuditRecord[]): string {
  const head = ['time', 'console', 'user', 'type', 'what', 'session', 'fence', 'offset'];
  return toCsv([head, ...rows.map((r) => [new Date(r.time).toISOString(), r.console, r.user, r.type, what(r), r.session, r.fence, r.offset])]);
}

async function fetchOutput(cfg: Config, name: string, since: number, until: number): Promise<{ o: number; d: Uint8Array }[]> {
  const q = new URLSearchParams({ format: 'chunks', since: String(since), until: String(until) });
  const r = await fetch(`${cfg.apiUrl}/v1/consoles/${encodeURIComponent(name)}/replay?${q}`, { headers: { authorization: `Bearer ${token.get()}` } });
  if (!r.ok) return [];
  const out: { o: number; d: Uint8Array }[] = [];
  let total = 0;
  for (const line of (await r.text()).split('\n')) {
    if (!line) continue;
    const it = JSON.parse(line) as { o?: number; d?: string };
    if (it.d === undefined || it.o === undefined) continue;
    const d = b64ToBytes(it.d);
    out.push({ o: it.o, d });
    if ((total += d.length) > 16 * 1024 * 1024) break;
  }
  return out;
}

/** Bytes of a console's output in [from, to), from chunks. */
function slice(chunks: { o: number; d: Uint8Array }[], from: number, to: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const c of chunks) {
    const a = Math.max(from, c.o), b = Math.min(to, c.o + c.d.length);
    if (a < b) parts.push(c.d.subarray(a - c.o, b - c.o));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function auditPage(cfg: Config, only?: string): { node: HTMLElement; cleanup: () => void } {
  const consoleSel = h('select', { 'aria-label': 'Console' }, h('option', { value: '' }, 'all consoles'));
  const userIn = h('input', { type: 'search', placeholder: 'user', 'aria-label': 'Filter by user' });
  const kind = h('select', { 'aria-label': 'Which records' }, h('option', { value: 'input' }, 'typed input'), h('option', { value: 'all' }, 'all events'));
  const sinceIn = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'From' });
  const untilIn = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'To' });
  const body = h('tbody');
  const status = h('p', { class: 'status', role: 'status', 'data-testid': 'audit-status' });
  let records: AuditRecord[] = [];
  let shown: AuditRecord[] = [];
  const answers = new Map<string, string>(); // joined row (console, session, first time) -> output after it
  const answerKey = (r: AuditRecord) => `${r.console}\u0000${r.session ?? ''}\u0000${r.time}`;

  const filtered = () => joinKeystrokes(filteredRecords());
  const filteredRecords = () => {
    const u = userIn.value.trim().toLowerCase();
    const from = sinceIn.value ? new Date(sinceIn.value).getTime() : -Infinity;
    const to = untilIn.value ? new Date(untilIn.value).getTime() : Infinity;
    return records.filter((r) => (!consoleSel.value || r.console === consoleSel.value) && (!u || (r.user ?? '').toLowerCase().includes(u))
      && (kind.value === 'all' || r.type.startsWith('input')) && r.time >= from && r.time <= to);
  };
  const render = () => {
    shown = filtered();
    body.replaceChildren(...shown.map((r) => h('tr', { class: `audit ${r.type.replace(/\W/g, '-')}`, 'data-user': r.user ?? '' },
      h('td', { class: 'time' }, new Date(r.time).toLocaleString()),
      h('td', {}, r.console),
      h('td', {}, r.user ?? ''),
      h('td', {}, r.type, r.via === 'local' ? h('span', { class: 'via', title: `typed at relay ${r.relay ?? ''} while the cloud was away, at ${r.relayTime === undefined ? '?' : new Date(r.relayTime).toLocaleString()} (relay clock)` }, ' (local)') : null),
      h('td', { class: 'what' }, h('code', {}, what(r)), answers.get(answerKey(r)) ? h('pre', { class: 'answer', 'aria-label': 'console output after this input' }, answers.get(answerKey(r))!) : null))));
    status.textContent = `${shown.length} of ${records.length} records${shownNote}`;
  };
  const download = (name: string, type: string, text: string) => {
    const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
    document.body.append(a);
    a.click();
    a.remove();
  };

  let left = false; // the page was left: stop loading
  let cut: string[] = [];
  const fetchAudit = (c: string, limit: number) => apiJson<{ records: AuditRecord[] }>(cfg, `/v1/consoles/${encodeURIComponent(c)}/audit?limit=${limit}`)
    .then((x) => x.records.map((r) => ({ ...r, console: r.console ?? c })));
  const note = (limit: number, failed: { name: string }[]) => {
    const parts = [];
    if (cut.length) parts.push(`the newest ${limit} records of ${cut.length} consoles with more (pick one to see up to ${AUDIT_LOAD_DEFAULTS.perConsole})`);
    if (failed.length) parts.push(`${failed.length} consoles could not be read (${failed.slice(0, 5).map((f) => f.name).join(', ')}${failed.length > 5 ? ', ...' : ''})`);
    return parts.length ? ` (showing ${parts.join('; ')})` : '';
  };
  let shownNote = '';

  const load = async () => {
    status.textContent = 'loading...';
    try {
      // Across consoles, admins also see the cloud's own stream (_cloud: sign-ins, tokens, access rules).
      const whoami = only ? undefined : await apiJson<{ admin?: boolean }>(cfg, '/v1/whoami');
      const consoles = only ? [only] : [...(await apiJson<{ consoles: ConsoleView[] }>(cfg, '/v1/consoles')).consoles.map((c) => c.name), ...(whoami?.admin ? ['_cloud'] : [])];
      consoleSel.replaceChildren(h('option', { value: '' }, 'all consoles'), ...consoles.map((c) => h('option', { value: c }, c)));
      if (only) consoleSel.value = only;
      // A few requests at a time and a bounded number of records: thousands of consoles load too.
      const r = await loadAudits(consoles, fetchAudit, {
        stopped: () => left, progress: (done, total) => { if (total > 1) status.textContent = `loading... ${done} of ${total} consoles`; },
      });
      if (left) return;
      cut = r.cut;
      if (r.failed.length === consoles.length && consoles.length) throw new Error(r.failed[0].error);
      records = r.records.sort((a, b) => a.time - b.time);
      shownNote = note(r.limit, r.failed);
      render();
      // The answer to each input: the output from its offset to the next record's (same console).
      for (const c of consoles) {
        if (left) return;
        const mine = joinKeystrokes(records.filter((r) => r.console === c && r.offset !== undefined));
        const inputs = mine.filter((r) => r.type === 'input');
        if (!inputs.length) continue;
        const chunks = await fetchOutput(cfg, c, inputs[0].time - 1000, mine.at(-1)!.time + 10_000);
        for (const r of inputs) {
          const start = r.lastOffset ?? r.offset!;
          const next = mine.find((x) => x.offset! > start && x.time >= r.time && x !== r);
          const end = next ? next.offset! : start + ANSWER_BYTES;
          // From the Enter's offset the rest of the line's echo may still come (echo lags the
          // keystrokes): the answer starts after the echoed line end.
          const raw = plainText(slice(chunks, start, Math.min(end, start + ANSWER_BYTES)));
          const text = (/[\r\n]$/.test(atob(r.data ?? '')) && raw.includes('\n') ? raw.slice(raw.indexOf('\n') + 1) : raw).trim();
          if (text) answers.set(answerKey(r), text);
        }
      }
      render();
    } catch (e) {
      status.textContent = `Cannot load the audit: ${(e as Error).message}`;
    }
  };
  // A console cut short in the view of all: picked, it is loaded in full (up to perConsole).
  consoleSel.addEventListener('change', () => {
    const c = consoleSel.value;
    if (!c || !cut.includes(c)) return;
    cut = cut.filter((x) => x !== c);
    void fetchAudit(c, AUDIT_LOAD_DEFAULTS.perConsole).then((full) => {
      if (left) return;
      records = [...records.filter((r) => r.console !== c), ...full].sort((a, b) => a.time - b.time);
      render();
    }, (e: Error) => { status.textContent = `Cannot load the audit of ${c}: ${e.message}`; });
  });
  for (const el of [consoleSel, kind]) el.addEventListener('change', render);
  for (const el of [userIn, sinceIn, untilIn]) el.addEventListener('input', render);

  const node = h('main', { class: 'audit-page' },
    h('h1', {}, only ? `${only}: audit` : 'Audit', ' ', only ? h('a', { href: `#/c/${encodeURIComponent(only)}` }, 'live') : null),
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Audit filters' }, consoleSel, userIn, kind,
      h('label', {}, 'From ', sinceIn), h('label', {}, 'To ', untilIn),
      h('button', { type: 'button', onclick: () => download('cloudcons-audit.csv', 'text/csv', auditCsv(shown)) }, 'Export CSV'),
      h('button', { type: 'button', onclick: () => download('cloudcons-audit.json', 'application/json', JSON.stringify(shown.map((r) => ({ ...r, what: what(r) })), null, 2)) }, 'Export JSON')),
    h('table', { 'data-testid': 'audit' },
      h('thead', {}, h('tr', {}, ...['Time', 'Console', 'User', 'Type', 'What (and the answer)'].map((t) => h('th', { scope: 'col' }, t)))),
      body),
    status);
  void load();
  return { node, cleanup: () => { left = true; } };
}
