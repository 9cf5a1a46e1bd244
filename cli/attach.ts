// `cloudcons attach NAME`: an interactive raw terminal on a console through the cloud, with
// conserver's escape commands (^Ec by default). One WebSocket per attach session. When the link
// drops (cloud restart, network), the CLI reconnects with backoff and re-attaches from the last
// output offset it showed, so nothing is missed or shown twice; a writer asks for the lock again
// (without forcing).
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { chunks, decode, encode } from '../protocol/codec.ts';
import { cloudToClient, type AttachMode, type ClientToCloud, type CloudToClient, type Out } from '../protocol/messages.ts';
import { checkPlainUrl, cloudTls, type TlsTrust } from '../protocol/tls.ts';
import { DEFAULT_ESCAPE, displayEscape, EscapeParser, HELP_TEXT, type EscapeCommand } from './escape.ts';
import { joined, line, safe, type Shown } from './print.ts';

/** How long live output that arrived ahead of the stream waits for the bytes before it (ms). */
const REORDER_MS = 300;

export interface AttachOptions {
  url: string;
  token: string;
  /** How to trust the cloud's certificate (protocol/tls.ts). Default: the system's CAs. */
  tls?: TlsTrust;
  console: string;
  mode: AttachMode;
  escape?: Buffer;
  /** Lines of history shown before live output. Default 0. */
  tail?: number;
  /** Heartbeat (and lock lease renewal) interval. Default 10 s. */
  heartbeatMs?: number;
  /** Reconnect after a lost link (default true), with backoff between these bounds. */
  reconnect?: boolean;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  stdin?: NodeJS.ReadStream;
  stdout?: NodeJS.WriteStream;
}

/** Resolves with the process exit code once the session ends. */
export function attach(o: AttachOptions): Promise<number> {
  const stdin = o.stdin ?? process.stdin;
  const stdout = o.stdout ?? process.stdout;
  const esc = o.escape ?? DEFAULT_ESCAPE;
  const escName = displayEscape(esc);
  const parser = new EscapeParser(esc);
  const url = process.env.CLOUDCONS_WS_URL ?? o.url.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/session';
  /** A line of the CLI's own among the console's output (the terminal is raw: lines end in \r\n). */
  const say = (text: Shown) => stdout.write(`${text.replace(/\r?\n/g, '\r\n')}\r\n`);
  checkPlainUrl(url, o.tls?.insecure);
  const net = cloudTls(o.tls);

  let ws: WebSocket | undefined;
  let mode: AttachMode = o.mode;
  let everAttached = false;
  // An attach sent on this connection and not answered yet: a re-attach refused (the rights are
  // gone; on API Gateway a close carries no code to say so) ends the CLI rather than looping.
  let attaching = false;
  let breaks: Extract<CloudToClient, { t: 'attached' }>['breaks'];
  let defaultBreak: string | undefined;
  let quitting = false;
  let exitCode = 0;
  let attempt = 0;
  /** Output offset up to which this terminal has shown the stream (undefined before the first history). */
  let shown: number | undefined;
  let early: { o: number; d: Buffer }[] = [];
  /** Live output that arrived ahead of `shown`: on API Gateway a relay's messages may be handled by
   *  concurrent Lambdas, so a chunk can overtake the one before it. Held (in offset order) up to
   *  REORDER_MS for the bytes before it, then shown anyway. */
  let ahead: { o: number; d: Buffer }[] = [];
  let aheadTimer: NodeJS.Timeout | undefined;
  let rawSet = false;
  let finish: (code: number) => void = () => {};
  const lastNotice = { text: '', at: 0 };

  const send = (m: Out<ClientToCloud>): boolean => {
    if (ws?.readyState !== WebSocket.OPEN) return false;
    ws.send(encode(m));
    return true;
  };
  // Terminal backpressure: while stdout is full, stop reading the socket (TCP pushes back to the
  // cloud); one drain listener at a time, however many writes report a full buffer.
  let blocked: WebSocket | undefined;
  const write = (b: Buffer) => {
    if (!b.length) return;
    if (!stdout.write(b) && !blocked) {
      blocked = ws;
      blocked?.pause();
      stdout.once('drain', () => { blocked?.resume(); blocked = undefined; });
    }
  };
  /** Live or history bytes at offset `off`: only what lies past `shown` is written. */
  const show = (off: number, d: Buffer) => {
    if (shown === undefined) { early.push({ o: off, d }); return; }
    if (off > shown) { // ahead of the stream: wait a moment for what is missing
      ahead.push({ o: off, d });
      ahead.sort((a, b) => a.o - b.o);
      aheadTimer ??= setTimeout(giveUpWaiting, REORDER_MS);
      return;
    }
    put(off, d);
    while (ahead.length && ahead[0].o <= shown) { const a = ahead.shift()!; put(a.o, a.d); }
    if (!ahead.length) { clearTimeout(aheadTimer); aheadTimer = undefined; }
  };
  const put = (off: number, d: Buffer) => {
    const skip = Math.max(0, shown! - off);
    if (skip < d.length) { write(d.subarray(skip)); shown = off + d.length; }
  };
  /** The missing bytes did not come (output the cloud skipped, or never had): show what is held. */
  const giveUpWaiting = () => {
    aheadTimer = undefined;
    const first = ahead.shift();
    if (!first) return;
    shown = first.o;
    show(first.o, first.d);
  };
  const quit = (code: number, reason: string) => {
    quitting = true;
    exitCode ||= code;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, reason); else finish(exitCode);
  };

  const onCommand = (cmd: EscapeCommand) => {
    const need = (m: Out<ClientToCloud>) => { if (!send(m)) say(line`[not connected]`); };
    switch (cmd.kind) {
      case 'disconnect': say(line`[disconnect]`); quit(0, 'user disconnected'); return;
      case 'attach': need({ t: 'lock', op: 'take' }); return;
      case 'force': need({ t: 'lock', op: 'force' }); return;
      case 'spy': need({ t: 'lock', op: 'spy' }); return;
      case 'replay': say(line`[replay ${cmd.lines} lines]`); need({ t: 'replay', lines: cmd.lines }); return;
      case 'who': need({ t: 'who' }); return;
      case 'break': need({ t: 'break', seq: cmd.id }); return;
      case 'listBreaks': say(breakListText(breaks, defaultBreak)); return;
      case 'help': say(HELP_TEXT(escName) as Shown); return; // all the CLI's own text
      case 'ignored': say(line`[ignored]`); return;
      case 'aborted': say(line`[no break sequence ${JSON.stringify(cmd.char)}: ${escName}l? lists them]`); return;
      case 'unknown': say(line`[unknown escape command ${JSON.stringify(cmd.char)}: ${escName}? for help]`); return;
    }
  };
  const onInput = (chunk: Buffer) => {
    for (const ev of parser.push(chunk)) {
      if (ev.type === 'command') onCommand(ev.cmd);
      else for (const part of chunks(ev.data)) if (!send({ t: 'in', d: part.toString('base64') })) { say(line`[not connected: input dropped]`); break; }
    }
  };
  const onResize = () => { if (stdout.columns && stdout.rows) send({ t: 'resize', cols: stdout.columns, rows: stdout.rows }); };

  const onMessage = (m: CloudToClient) => {
    switch (m.t) {
      case 'attached': {
        attempt = 0;
        attaching = false;
        if (!everAttached) {
          say(line`[Enter \`${escName}?' for help]`);
          if (stdin.isTTY) { stdin.setRawMode(true); rawSet = true; }
          // libuv's raw mode keeps output post-processing (ONLCR turns \n into \r\n): turn it
          // off so the terminal gets the console's bytes exactly; setRawMode(false) restores it.
          if (stdin.isTTY && stdout.isTTY) spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
          stdin.on('data', onInput);
          stdin.resume();
          stdout.on('resize', onResize);
        }
        const who = m.writer && m.writer !== m.user ? line` (writer: ${m.writer})` : '';
        const verb = everAttached ? 'reattached' : 'attached';
        say(m.mode === 'rw' ? line`[${verb} to ${m.c}: read-write]` : line`[${verb} to ${m.c}: spy, read-only${who}]`);
        everAttached = true;
        breaks = m.breaks;
        defaultBreak = m.defaultBreak;
        mode = m.mode === 'rw' ? 'rw' : mode === 'spy' ? 'spy' : 'rw';
        return;
      }
      case 'history': {
        const d = Buffer.from(m.d, 'base64');
        if (m.kind === 'replay') { write(d); return; }
        if (shown === undefined) write(d); // the first attach's tail: printed as is
        else early.push({ o: -1, d }); // a re-attach's catch-up: placed by offset once `end` is known
        if (m.last) {
          const end = m.end ?? 0;
          if (shown === undefined) shown = end;
          else {
            const catchUp = Buffer.concat(early.filter((e) => e.o === -1).map((e) => e.d));
            early = early.filter((e) => e.o !== -1);
            show(end - catchUp.length, catchUp);
          }
          const pending = early; early = [];
          for (const e of pending) show(e.o, e.d);
        }
        return;
      }
      case 'out': show(m.o, Buffer.from(m.d, 'base64')); return;
      case 'mode':
        if (m.bumpedBy) say(line`[bumped: ${m.bumpedBy} forced the write lock; you are now a spy]`);
        else say(m.mode === 'rw' ? line`[read-write]` : line`[spy: read-only]`);
        mode = m.mode === 'rw' ? 'rw' : 'spy';
        return;
      case 'who': {
        for (const v of m.viewers) say(line`  ${safe(v.user).padEnd(16)} ${v.mode === 'rw' ? 'rw ' : 'spy'}  since ${new Date(v.since).toISOString()}  ${v.client ?? ''} ${v.session}`);
        return;
      }
      case 'state': say(m.state === 'up' ? line`[console up]` : line`[console down${m.reason ? `: ${m.reason}` : ''}]`); return;
      case 'missed': say(line`[cloudcons: ${m.bytes} bytes of output missed: this connection could not keep up]`); return;
      case 'notice': {
        // A spy who keeps typing gets the same refusal per keystroke (each one is audited): show it
        // once, then again only after a quiet spell.
        const now = Date.now();
        if (m.text === lastNotice.text && now - lastNotice.at < 5000) { lastNotice.at = now; return; }
        lastNotice.text = m.text;
        lastNotice.at = now;
        say(safe(m.text));
        return;
      }
      case 'error':
        say(line`[error: ${m.message}]`);
        if (!everAttached || (attaching && ['CC_ERR_NOT_FOUND', 'CC_ERR_FORBIDDEN', 'CC_ERR_UNAUTHORIZED'].includes(m.code))) quit(m.code === 'CC_ERR_NOT_FOUND' ? 2 : 1, 'attach failed');
        return;
      case 'ping': send({ t: 'pong', id: m.id }); return;
      case 'pong': return;
    }
  };

  const connect = () => {
    const sock = new WebSocket(url, { headers: { authorization: `Bearer ${o.token}` }, perMessageDeflate: false, ...net.wsOptions(url) });
    ws = sock;
    let hb: NodeJS.Timeout | undefined;
    let pingId = 0;
    sock.on('open', () => {
      ahead = []; // the re-attach's catch-up from `shown` brings them again
      clearTimeout(aheadTimer);
      aheadTimer = undefined;
      const where = shown !== undefined ? { from: shown } : { tail: o.tail ?? 0 };
      attaching = true;
      send({ t: 'attach', c: o.console, mode: everAttached && mode === 'force' ? 'rw' : mode, ...where, cols: stdout.columns || undefined, rows: stdout.rows || undefined, client: 'cli' });
      hb = setInterval(() => send({ t: 'ping', id: ++pingId }), o.heartbeatMs ?? 10_000);
    });
    sock.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => {
        say(line`cloudcons: cloud refused the connection: ${res.statusCode} ${body.trim()}`);
        if (res.statusCode === 401 || res.statusCode === 403 || !everAttached) quit(res.statusCode === 401 ? 3 : 1, 'refused');
        sock.terminate();
      });
    });
    sock.on('message', (data, isBinary) => {
      const r = decode(cloudToClient, isBinary ? data : data.toString(), Number.MAX_SAFE_INTEGER);
      if (r.ok) onMessage(r.msg);
      else say(line`[cloudcons: bad message from cloud: ${r.message}]`);
    });
    sock.on('error', (e) => { if (!quitting && !everAttached) { say(line`cloudcons: connection to ${o.url} failed: ${e.message}`); quit(1, 'failed'); } });
    sock.on('close', (code, reason) => {
      clearInterval(hb);
      if (ws !== sock) return;
      // 4001: the token stopped counting; 4003: the rights to this console were taken away. The
      // cloud said why (an error message before the close): trying again would not help.
      if (quitting || !everAttached || o.reconnect === false || code === 4001 || code === 4003) {
        if (!quitting && (code === 4001 || code === 4003)) exitCode ||= code === 4001 ? 3 : 1;
        if (!quitting) { say(line`[connection closed by the cloud: ${code} ${reason.toString()}]`); exitCode ||= 1; }
        finish(exitCode);
        return;
      }
      const delay = Math.min(o.maxBackoffMs ?? 5000, (o.minBackoffMs ?? 250) * 2 ** attempt++) * (0.5 + Math.random() / 2);
      say(line`[connection lost (${code}${reason.length ? ` ${reason}` : ''}); reconnecting in ${(delay / 1000).toFixed(1)} s; ${escName}. quits]`);
      setTimeout(() => { if (!quitting) connect(); else finish(exitCode); }, delay);
    });
  };

  return new Promise<number>((resolve) => {
    let done = false;
    finish = (code: number) => {
      if (done) return;
      done = true;
      stdin.off('data', onInput);
      stdout.off('resize', onResize);
      if (rawSet) stdin.setRawMode(false);
      stdin.pause();
      resolve(code);
    };
    connect();
  });
}

/** ^Ecl?: the console's break sequences as its relay published them (conserver's layout). */
export function breakListText(breaks: { id: string; text: string; confirm?: boolean }[] | undefined, dflt: string | undefined): Shown {
  if (!breaks?.length) return line`[breaks: 0 = serial break (the console's default)]`;
  const lines = breaks.map((b) => line` ${b.id}: ${b.text}${b.id === dflt ? '  (default: l0)' : ''}`);
  return joined([line`[breaks:`, ...lines], '\r\n') + ']' as Shown;
}
