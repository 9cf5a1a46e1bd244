// The cloudcons web viewer: sign in, the console list, a console (xterm.js) with the shared write
// lock. Pages are hash routes (#/, #/c/NAME) so the static files work from any path and any host.
// Every string from the cloud goes into the page as text (textContent), never as HTML.
import './app.css';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { SerializeAddon } from '@xterm/addon-serialize';
import { ApiError, apiJson, loadConfig, token, type Config, type ConsoleView, type Viewer, type Whoami } from './api.ts';
import { ConsoleSession, type BreakInfo, type Mode } from './session.ts';
import { drawTimeline, loadRange, Player, type Mark } from './replay.ts';
import { auditPage } from './audit.ts';
import { h } from './dom.ts';
import { completeSso, ssoButton } from './sso.ts';
import { globMatcher } from '../../protocol/glob.ts';


const app = document.getElementById('app')!;
let cfg: Config;
let me: Whoami | undefined;
let cleanupView: (() => void) | undefined;

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** The console list's filter: a conserver-style glob (* ? [..]) on console names, case-insensitive;
 *  plain text (or a glob not finished yet) matches anywhere in a name. */
function listFilter(pattern: string): (name: string) => boolean {
  const p = pattern.trim();
  if (!p) return () => true;
  if (!/[*?[]/.test(p)) return (n) => n.toLowerCase().includes(p.toLowerCase());
  try { return globMatcher(p, { ignoreCase: true }); } catch { return (n) => n.toLowerCase().includes(p.toLowerCase()); } // `web[` while typing
}

function header(): HTMLElement {
  return h('header', { class: 'top' },
    h('a', { href: '#/', class: 'brand' }, 'cloudcons'),
    h('span', { class: 'spacer' }),
    me ? h('span', { class: 'who', 'data-testid': 'whoami' }, `${me.name}${me.admin ? ' (admin)' : ''}`) : null,
    me ? h('button', { type: 'button', onclick: () => { token.clear(); me = undefined; location.hash = '#/'; route(); } }, 'Sign out') : null);
}

function show(...nodes: Node[]): void {
  cleanupView?.();
  cleanupView = undefined;
  app.replaceChildren(header(), ...nodes);
}

// ------------------------------------------------------------------------------------ sign in
function signIn(message?: string): void {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', placeholder: 'ccu_...', required: true, 'aria-describedby': 'token-help' });
  const err = h('p', { class: 'error', role: 'alert', 'data-testid': 'signin-error' }, message ?? '');
  const form = h('form', { class: 'signin', onsubmit: async (e: Event) => {
    e.preventDefault();
    const t = input.value.trim();
    try {
      const who = await apiJson<Whoami>(cfg, '/v1/whoami?signin=web', {}, t);
      if (who.kind !== 'user') throw new Error('that is a relay token; sign in with a user token');
      token.set(t);
      me = who;
      route();
    } catch (x) {
      err.textContent = x instanceof ApiError && x.status === 401 ? 'That token is not valid (or was revoked).' : `Sign-in failed: ${(x as Error).message}`;
    }
  } },
  h('h1', {}, 'Sign in'),
  h('label', { for: 'token' }, 'User token'),
  input,
  h('p', { id: 'token-help', class: 'help' }, 'A token from `cloudcons token create --user NAME`. It is kept in this tab only and forgotten when the tab closes.'),
  h('button', { type: 'submit' }, 'Sign in'),
  ssoButton(cfg, (m) => { err.textContent = m; }),
  err);
  show(form);
  input.focus();
}

// ------------------------------------------------------------------------------- console list
function consoleList(): void {
  const filter = h('input', { type: 'search', placeholder: 'filter: web* or text', 'aria-label': 'Filter consoles by name', value: sessionStorage.getItem('cloudcons.filter') ?? '' });
  const body = h('tbody');
  const status = h('p', { class: 'status', role: 'status' });
  let list: ConsoleView[] = [];
  const render = () => {
    const match = listFilter(filter.value);
    sessionStorage.setItem('cloudcons.filter', filter.value);
    const rows = list.filter((c) => match(c.name)).map((c) => h('tr', { class: `state-${c.state}`, 'data-console': c.name },
      h('td', {}, h('a', { href: `#/c/${encodeURIComponent(c.name)}` }, c.name)),
      h('td', {}, h('span', { class: `badge ${c.state}` }, c.state), ` ${ago(c.since)}`),
      h('td', {}, c.type),
      h('td', {}, c.relay),
      h('td', {}, c.writer ?? '-'),
      h('td', {}, String(c.spies)),
      h('td', { class: 'reason' }, c.state === 'down' ? c.reason ?? '' : '')));
    body.replaceChildren(...rows);
    status.textContent = `${rows.length} of ${list.length} consoles`;
  };
  filter.addEventListener('input', render);
  const load = async () => {
    try { list = (await apiJson<{ consoles: ConsoleView[] }>(cfg, '/v1/consoles')).consoles; render(); } catch (e) { onApiError(e); }
  };
  show(h('main', { class: 'list' },
    h('h1', {}, 'Consoles ', h('a', { href: '#/audit', class: 'button' }, 'Audit')),
    filter,
    h('table', { 'data-testid': 'consoles' },
      h('thead', {}, h('tr', {}, ...['Name', 'State', 'Type', 'Relay', 'Writer', 'Spies', 'Why down'].map((t) => h('th', { scope: 'col' }, t)))),
      body),
    status));
  void load();
  const timer = window.setInterval(load, 2000); // live enough for a list; the console page is push
  cleanupView = () => clearInterval(timer);
}

function onApiError(e: unknown): void {
  if (e instanceof ApiError && e.status === 401) { token.clear(); me = undefined; signIn('Your token is no longer valid; sign in again.'); return; }
  console.error(e);
}

// ------------------------------------------------------------------------------- console view
function consolePage(name: string): void {
  const tok = token.get()!;
  const term = new Terminal({ convertEol: false, scrollback: 10_000, fontSize: 14, cursorBlink: true, allowProposedApi: true,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' });
  const fit = new FitAddon();
  const search = new SearchAddon();
  const serialize = new SerializeAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(serialize);
  term.loadAddon(new WebLinksAddon((_e, uri) => window.open(uri, '_blank', 'noopener,noreferrer')));

  const modeBadge = h('span', { class: 'badge', 'data-testid': 'mode' }, 'connecting');
  const stateBadge = h('span', { class: 'badge', 'data-testid': 'state' }, '');
  const writerText = h('span', { 'data-testid': 'writer' }, '');
  const watchers = h('span', { 'data-testid': 'watchers' }, '');
  const notice = h('div', { class: 'notice', role: 'status', 'data-testid': 'notice' });
  // Being bumped stays said until the lock is back: later notices must not wipe it out.
  const bumped = h('div', { class: 'bumped', role: 'alert', 'data-testid': 'bumped', hidden: true });
  const statusLine = h('span', { class: 'status', 'data-testid': 'status' });
  const breakSelect = h('select', { 'aria-label': 'Break sequence' });
  let breaks: BreakInfo[] = [];
  let mode: Mode = 'spy';
  let lastSpyHint = 0;
  // What the access rules let this user do here (from the attach answer; an older cloud sends none: all).
  let rights: Set<string> | undefined;
  const may = (a: string) => !rights || rights.has(a);

  const say = (text: string) => { notice.textContent = text; notice.hidden = !text; };
  const setMode = (m: Mode) => {
    mode = m;
    modeBadge.textContent = m === 'rw' ? 'read-write' : 'spy (read-only)';
    modeBadge.className = `badge ${m}`;
    if (m === 'rw') bumped.hidden = true;
    takeBtn.disabled = m === 'rw' || !may('attach');
    forceBtn.disabled = !may('force');
    spyBtn.disabled = m === 'spy';
    breakBtn.disabled = m !== 'rw' || !may('break');
    replayLink.hidden = !may('replay');
    auditLink.hidden = !may('audit');
  };
  let firstOutput = true;
  const outputWaiters = new Set<(b: Uint8Array) => void>();
  const session = new ConsoleSession(cfg, tok, name, {
    onOutput: (b) => {
      if (firstOutput) { firstOutput = false; performance.mark('cloudcons:first-output'); } // bench/web.ts reads it
      term.write(b);
      for (const w of outputWaiters) w(b);
    },
    onAttached: (a) => {
      rights = a.rights && new Set(a.rights);
      setMode(a.mode);
      if (!may('attach')) say('You have read-only access to this console.');
      writerText.textContent = a.writer ? `writer: ${a.writer}` : a.mode === 'rw' ? `writer: ${a.user} (you)` : 'writer: nobody';
      stateBadge.textContent = a.state;
      stateBadge.className = `badge ${a.state}`;
      breaks = a.breaks.length ? a.breaks : [{ id: '1', text: 'serial break' }];
      breakSelect.replaceChildren(
        h('option', { value: '0' }, `default${a.defaultBreak ? ` (${a.defaultBreak})` : ''}`),
        ...breaks.map((b) => h('option', { value: b.id }, `${b.id}: ${b.text}`)));
      if (a.mode === 'rw') session.resize(term.cols, term.rows);
    },
    onMode: (m, info) => {
      setMode(m);
      if (info.bumpedBy) { bumped.textContent = `You were bumped: ${info.bumpedBy} forced the write lock. You are now a spy.`; bumped.hidden = false; }
      else say(m === 'rw' ? 'You have the write lock.' : 'You are now a spy (read-only).');
      if (m === 'rw') session.resize(term.cols, term.rows);
    },
    onWho: (vs: Viewer[]) => {
      const w = vs.find((v) => v.mode === 'rw');
      writerText.textContent = `writer: ${w ? w.user : 'nobody'}`;
      watchers.textContent = `watching: ${vs.map((v) => `${v.user}${v.mode === 'rw' ? ' (rw)' : ''}`).join(', ')}`;
    },
    onState: (s, reason) => { stateBadge.textContent = s; stateBadge.className = `badge ${s}`; if (s === 'down') say(`Console down${reason ? `: ${reason}` : ''}`); },
    onNotice: (t) => say(t.replace(/^\[|\]$/g, '')),
    onStatus: (s, detail) => { statusLine.textContent = detail ? `${s}: ${detail}` : s; if (s === 'closed' && detail) say(detail); },
  }, { tail: 1000, mode: 'spy' });

  const takeBtn = h('button', { type: 'button', accesskey: 'l', title: 'Take the write lock if it is free (Alt+Shift+L)', onclick: () => session.lock('take') }, 'Take lock');
  const forceBtn = h('button', { type: 'button', class: 'danger', accesskey: 'f', title: 'Take the write lock from its holder (Alt+Shift+F)',
    onclick: () => { if (confirm(`Force the write lock on ${name}? The current writer becomes a spy.`)) session.lock('force'); } }, 'Force');
  const spyBtn = h('button', { type: 'button', accesskey: 's', title: 'Give up the write lock (Alt+Shift+S)', onclick: () => session.lock('spy') }, 'Spy');
  const breakBtn = h('button', { type: 'button', accesskey: 'b', title: 'Send the chosen break sequence (Alt+Shift+B)', onclick: () => {
    const b = breaks.find((x) => x.id === breakSelect.value);
    if (b?.confirm && !confirm(`Send break ${b.id} (${b.text}) to ${name}?`)) return;
    session.sendBreak(breakSelect.value);
  } }, 'Send break');
  const replayLink = h('a', { href: `#/c/${encodeURIComponent(name)}/replay`, class: 'button' }, 'Replay');
  const auditLink = h('a', { href: `#/audit/${encodeURIComponent(name)}`, class: 'button' }, 'Audit');
  const findInput = h('input', { type: 'search', placeholder: 'find in output', 'aria-label': 'Find in output' });
  const find = (back: boolean) => { if (findInput.value) (back ? search.findPrevious(findInput.value) : search.findNext(findInput.value)); };
  findInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); find(e.shiftKey); } });
  const termBox = h('div', { class: 'term', 'data-testid': 'terminal' });

  show(h('main', { class: 'console' },
    h('div', { class: 'banner', role: 'region', 'aria-label': 'Console status' },
      h('h1', {}, name), stateBadge, modeBadge, writerText, watchers, statusLine),
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Console actions' },
      takeBtn, forceBtn, spyBtn, breakSelect, breakBtn, findInput,
      h('button', { type: 'button', onclick: () => find(true), 'aria-label': 'Previous match' }, '↑'),
      h('button', { type: 'button', onclick: () => find(false), 'aria-label': 'Next match' }, '↓'),
      replayLink, auditLink),
    bumped,
    notice,
    termBox));
  setMode('spy');
  say('');
  term.open(termBox);
  fit.fit();
  term.onData((d) => {
    if (mode !== 'rw') {
      if (Date.now() - lastSpyHint > 3000) { lastSpyHint = Date.now(); say('You are a spy: take the lock to type.'); }
      return;
    }
    session.input(d);
  });
  term.onBinary((d) => { if (mode === 'rw') session.input(Uint8Array.from(d, (c) => c.charCodeAt(0))); });
  const onResize = () => { fit.fit(); session.resize(term.cols, term.rows); };
  window.addEventListener('resize', onResize);
  session.open();
  term.focus();
  // For tests and debugging: what the terminal shows, as text.
  // For tests, benchmarks and debugging: what the terminal shows, and a probe that types `text` and
  // resolves with the ms until output containing it arrives (keystroke echo through the whole path).
  (window as unknown as { cloudcons: unknown }).cloudcons = {
    screen: () => serialize.serialize(), mode: () => mode,
    probe: (text: string) => new Promise<number>((resolve) => {
      const t0 = performance.now();
      const dec = new TextDecoder();
      const w = (b: Uint8Array) => { if (dec.decode(b).includes(text)) { outputWaiters.delete(w); resolve(performance.now() - t0); } };
      outputWaiters.add(w);
      session.input(text);
    }),
  };
  cleanupView = () => { window.removeEventListener('resize', onResize); session.close(); term.dispose(); };
}

// ------------------------------------------------------------------------------------ replay
/** `YYYY-MM-DDTHH:MM:SS` in local time, as <input type=datetime-local step=1> wants. */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

export function newTerminal(): { term: Terminal; fit: FitAddon; search: SearchAddon; serialize: SerializeAddon } {
  const term = new Terminal({ scrollback: 10_000, fontSize: 14, allowProposedApi: true, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace' });
  const fit = new FitAddon(), search = new SearchAddon(), serialize = new SerializeAddon();
  for (const a of [fit, search, serialize]) term.loadAddon(a);
  term.loadAddon(new WebLinksAddon((_e, uri) => window.open(uri, '_blank', 'noopener,noreferrer')));
  return { term, fit, search, serialize };
}

function replayPage(name: string): void {
  const { term, fit, search, serialize } = newTerminal();
  const now = Date.now();
  const since = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'From', value: localInput(now - 3600_000) });
  const until = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'To', title: 'empty: up to now' });
  const playBtn = h('button', { type: 'button', disabled: true }, 'Play');
  const speed = h('select', { 'aria-label': 'Speed' }, ...[1, 2, 4, 8, 16, 32, 64].map((x) => h('option', { value: String(x) }, `${x}x`)));
  const skip = h('input', { type: 'checkbox', id: 'skip-idle' });
  const seekAt = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'Jump to time' });
  const findInput = h('input', { type: 'search', placeholder: 'search the history', 'aria-label': 'Search the history' });
  const matchInfo = h('span', { class: 'status', 'data-testid': 'matches' });
  const clock = h('span', { class: 'status', 'data-testid': 'clock' });
  const info = h('p', { class: 'status', role: 'status', 'data-testid': 'replay-info' });
  const canvas = h('canvas', { class: 'timeline', 'aria-label': 'Timeline: output density and events; click to jump', tabindex: '0' });
  const markList = h('div', { class: 'marks', 'data-testid': 'marks' });
  const termBox = h('div', { class: 'term', 'data-testid': 'terminal' });
  let player: Player | undefined;
  let marks: Mark[] = [];
  let matches: number[] = [];
  let m = -1;
  const fmt = (t: number) => new Date(t).toLocaleString();
  const redraw = () => { if (player) { drawTimeline(canvas, player, marks); clock.textContent = fmt(player.wallTime(player.position)); } };

  const load = async () => {
    player?.pause();
    info.textContent = 'loading...';
    try {
      const from = new Date(since.value).getTime(), to = until.value ? new Date(until.value).getTime() : undefined;
      if (!Number.isFinite(from)) throw new Error('choose a "From" time');
      if (to !== undefined && !(from < to)) throw new Error('"From" must be before "To"');
      const r = await loadRange(cfg, name, from, to);
      marks = r.marks;
      player = new Player(term, r.chunks, skip.checked);
      player.speed = Number(speed.value);
      player.onTick = () => redraw();
      player.onEnd = () => { playBtn.textContent = 'Play'; };
      player.seek(0);
      playBtn.disabled = !r.chunks.length;
      info.textContent = `${r.chunks.length} chunks, ${marks.length} events${r.truncated ? ' (range cut at 64 MiB: choose a shorter one)' : ''}`;
      markList.replaceChildren(...marks.map((mk) => h('button', { type: 'button', class: `mark ${mk.type}`, onclick: () => player?.seek(player.rangeTime(mk.ts)) },
        `${new Date(mk.ts).toLocaleTimeString()} ${mk.label}`)));
      redraw();
    } catch (e) {
      info.textContent = `Cannot load: ${(e as Error).message}`;
    }
  };
  playBtn.addEventListener('click', () => {
    if (!player) return;
    if (player.playing) { player.pause(); playBtn.textContent = 'Play'; } else { player.play(); playBtn.textContent = 'Pause'; }
  });
  speed.addEventListener('change', () => { if (player) player.speed = Number(speed.value); });
  skip.addEventListener('change', () => { if (player) { player.setSkipIdle(skip.checked); player.seek(player.position); } });
  const seekTo = (e: Event) => { e.preventDefault(); if (player && seekAt.value) player.seek(player.rangeTime(new Date(seekAt.value).getTime())); };
  const seekSpot = (x: number) => { if (player) player.seek((x / canvas.clientWidth) * player.duration); };
  canvas.addEventListener('click', (e) => seekSpot(e.offsetX));
  canvas.addEventListener('keydown', (e) => {
    if (!player) return;
    const step = player.duration / 50;
    if (e.key === 'ArrowRight') player.seek(player.position + step);
    else if (e.key === 'ArrowLeft') player.seek(player.position - step);
    else if (e.key === ' ') { e.preventDefault(); playBtn.click(); }
  });
  const jump = (dir: 1 | -1) => {
    if (!player) return;
    const q = findInput.value;
    if (!matches.length || (findInput.dataset.q ?? '') !== q) { matches = player.findAll(q); findInput.dataset.q = q; m = -1; }
    if (!matches.length) { matchInfo.textContent = 'no match'; return; }
    m = (m + dir + matches.length) % matches.length;
    player.pause();
    playBtn.textContent = 'Play';
    player.seek(matches[m]);
    search.findPrevious(q, { decorations: { matchOverviewRuler: '#e3b341', activeMatchColorOverviewRuler: '#ff7b72', matchBackground: '#6b4f00', activeMatchBackground: '#a36a00' } });
    matchInfo.textContent = `match ${m + 1} of ${matches.length}`;
  };
  findInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); jump(e.shiftKey ? -1 : 1); } });

  show(h('main', { class: 'console replay' },
    h('div', { class: 'banner' }, h('h1', {}, `${name}: replay`), h('a', { href: `#/c/${encodeURIComponent(name)}` }, 'live'), clock),
    h('form', { class: 'toolbar', onsubmit: (e: Event) => { e.preventDefault(); void load(); } },
      h('label', {}, 'From ', since), h('label', {}, 'To ', until), h('button', { type: 'submit' }, 'Load')),
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Playback' },
      playBtn, speed, h('label', { for: 'skip-idle' }, skip, ' skip idle'),
      h('form', { class: 'inline', onsubmit: seekTo }, seekAt, h('button', { type: 'submit' }, 'Go')),
      findInput, h('button', { type: 'button', onclick: () => jump(-1), 'aria-label': 'Previous match' }, '↑'),
      h('button', { type: 'button', onclick: () => jump(1), 'aria-label': 'Next match' }, '↓'), matchInfo),
    canvas, markList, info, termBox));
  term.open(termBox);
  fit.fit();
  const onResize = () => { fit.fit(); redraw(); };
  window.addEventListener('resize', onResize);
  (window as unknown as { cloudcons: unknown }).cloudcons = { screen: () => serialize.serialize(), position: () => player && player.wallTime(player.position) };
  cleanupView = () => { player?.pause(); window.removeEventListener('resize', onResize); term.dispose(); };
  void load();
}

// ------------------------------------------------------------------------------------ routing
/** Back from the identity provider with a fresh ID token: the first whoami is the sign-in. */
let ssoSignIn = false;

async function route(): Promise<void> {
  if (!token.get()) { signIn(); return; }
  if (!me) {
    try {
      me = await apiJson<Whoami>(cfg, ssoSignIn ? '/v1/whoami?signin=web' : '/v1/whoami'); // an SSO sign-in is audited
      ssoSignIn = false;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { onApiError(e); return; }
      signIn(`Cannot reach the cloud at ${cfg.apiUrl}: ${(e as Error).message}`);
      return;
    }
  }
  const hash = location.hash;
  let m: RegExpExecArray | null;
  if ((m = /^#\/c\/([^/]+)\/replay$/.exec(hash))) replayPage(decodeURIComponent(m[1]));
  else if ((m = /^#\/c\/([^/]+)$/.exec(hash))) consolePage(decodeURIComponent(m[1]));
  else if ((m = /^#\/audit(?:\/([^/]+))?$/.exec(hash))) { const view = auditPage(cfg, m[1] ? decodeURIComponent(m[1]) : undefined); show(view.node); cleanupView = view.cleanup; }
  else consoleList();
}

window.addEventListener('hashchange', () => void route());
void (async () => {
  cfg = await loadConfig();
  const back = new URLSearchParams(location.search).has('code');
  const ssoError = await completeSso(cfg); // back from the identity provider?
  if (ssoError) { signIn(ssoError); return; }
  ssoSignIn = back;
  await route();
})();
