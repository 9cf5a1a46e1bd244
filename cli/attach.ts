// `cloudcons attach NAME`: an interactive raw terminal on a console through the cloud, with
// conserver's escape commands (^Ec by default). One WebSocket per attach session.
import WebSocket from 'ws';
import { chunks, decode, encode } from '../protocol/codec.ts';
import { cloudToClient, type AttachMode, type ClientToCloud, type CloudToClient, type Out } from '../protocol/messages.ts';
import { DEFAULT_ESCAPE, displayEscape, EscapeParser, HELP_TEXT, type EscapeCommand } from './escape.ts';

export interface AttachOptions {
  url: string;
  token: string;
  console: string;
  mode: AttachMode;
  escape?: Buffer;
  /** Lines of history shown before live output. Default 0. */
  tail?: number;
  /** Heartbeat (and lock lease renewal) interval. Default 10 s. */
  heartbeatMs?: number;
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
  const url = o.url.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/session';
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${o.token}` }, perMessageDeflate: false });
  const say = (text: string) => stdout.write(`${text.replace(/\r?\n/g, '\r\n')}\r\n`);
  const send = (m: Out<ClientToCloud>) => { if (ws.readyState === WebSocket.OPEN) ws.send(encode(m)); };

  let attached = false;
  let userQuit = false;
  let exitCode = 0;
  let historyEnd: number | undefined; // set when the attach history ended; live output before it is trimmed
  let early: { o: number; d: Buffer }[] = [];
  let rawSet = false;

  const write = (b: Buffer) => {
    if (!b.length) return;
    if (!stdout.write(b)) { ws.pause(); stdout.once('drain', () => ws.resume()); }
  };
  const live = (o: number, d: Buffer) => {
    if (historyEnd === undefined) { early.push({ o, d }); return; }
    const skip = Math.max(0, historyEnd - o);
    if (skip < d.length) write(d.subarray(skip));
  };

  const onCommand = (cmd: EscapeCommand) => {
    switch (cmd.kind) {
      case 'disconnect': userQuit = true; say('[disconnect]'); ws.close(1000, 'user disconnected'); return;
      case 'attach': send({ t: 'lock', op: 'take' }); return;
      case 'force': send({ t: 'lock', op: 'force' }); return;
      case 'spy': send({ t: 'lock', op: 'spy' }); return;
      case 'replay': say(`[replay ${cmd.lines} lines]`); send({ t: 'replay', lines: cmd.lines }); return;
      case 'who': send({ t: 'who' }); return;
      case 'break': send({ t: 'break', seq: cmd.id }); return;
      case 'listBreaks': say('[breaks: 0 = serial break (the console\'s default)]'); return;
      case 'help': say(HELP_TEXT(escName)); return;
      case 'ignored': say('[ignored]'); return;
      case 'aborted': say(`[no break sequence ${JSON.stringify(cmd.char)}: ${escName}l? lists them]`); return;
      case 'unknown': say(`[unknown escape command ${JSON.stringify(cmd.char)}: ${escName}? for help]`); return;
    }
  };

  const onInput = (chunk: Buffer) => {
    for (const ev of parser.push(chunk)) {
      if (ev.type === 'command') onCommand(ev.cmd);
      else for (const part of chunks(ev.data)) send({ t: 'in', d: part.toString('base64') });
    }
  };
  const onResize = () => { if (stdout.columns && stdout.rows) send({ t: 'resize', cols: stdout.columns, rows: stdout.rows }); };

  const onMessage = (m: CloudToClient) => {
    switch (m.t) {
      case 'attached': {
        attached = true;
        say(`[Enter \`${escName}?' for help]`);
        const who = m.writer && m.writer !== m.user ? ` (writer: ${m.writer})` : '';
        say(m.mode === 'rw' ? `[attached to ${m.c}: read-write]` : `[attached to ${m.c}: spy, read-only${who}]`);
        if (stdin.isTTY) { stdin.setRawMode(true); rawSet = true; }
        stdin.on('data', onInput);
        stdin.resume();
        stdout.on('resize', onResize);
        return;
      }
      case 'history': {
        write(Buffer.from(m.d, 'base64'));
        if (m.last && m.kind === 'attach') {
          historyEnd = m.end ?? 0;
          const pending = early; early = [];
          for (const e of pending) live(e.o, e.d);
        }
        return;
      }
      case 'out': live(m.o, Buffer.from(m.d, 'base64')); return;
      case 'mode':
        if (m.bumpedBy) say(`[bumped: ${m.bumpedBy} forced the write lock; you are now a spy]`);
        else say(m.mode === 'rw' ? '[read-write]' : '[spy: read-only]');
        return;
      case 'who': {
        for (const v of m.viewers) say(`  ${v.user.padEnd(16)} ${v.mode === 'rw' ? 'rw ' : 'spy'}  since ${new Date(v.since).toISOString()}  ${v.client ?? ''} ${v.session}`);
        return;
      }
      case 'state': say(m.state === 'up' ? '[console up]' : `[console down${m.reason ? `: ${m.reason}` : ''}]`); return;
      case 'missed': say(`[cloudcons: ${m.bytes} bytes of output missed: this connection could not keep up]`); return;
      case 'notice': say(m.text); return;
      case 'error':
        say(`[error: ${m.message}]`);
        if (!attached) { exitCode = m.code === 'CC_ERR_NOT_FOUND' ? 2 : 1; userQuit = true; ws.close(1000, 'attach failed'); }
        return;
      case 'ping': send({ t: 'pong', id: m.id }); return;
      case 'pong': return;
    }
  };

  return new Promise<number>((resolve) => {
    let hb: NodeJS.Timeout | undefined;
    let pingId = 0;
    ws.on('open', () => {
      send({ t: 'attach', c: o.console, mode: o.mode, tail: o.tail ?? 0, cols: stdout.columns || undefined, rows: stdout.rows || undefined, client: 'cli' });
      hb = setInterval(() => send({ t: 'ping', id: ++pingId }), o.heartbeatMs ?? 10_000);
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => { say(`cloudcons: cloud refused the connection: ${res.statusCode} ${body.trim()}`); exitCode = res.statusCode === 401 ? 3 : 1; userQuit = true; finish(); });
    });
    ws.on('message', (data, isBinary) => {
      const r = decode(cloudToClient, isBinary ? data : data.toString(), Number.MAX_SAFE_INTEGER);
      if (r.ok) onMessage(r.msg);
      else say(`[cloudcons: bad message from cloud: ${r.message}]`);
    });
    ws.on('error', (e) => { if (!userQuit) say(`cloudcons: connection to ${o.url} failed: ${e.message}`); exitCode ||= 1; });
    ws.on('close', (code, reason) => {
      if (!userQuit) { say(`[connection closed by the cloud: ${code} ${reason.toString()}]`); exitCode ||= 1; }
      finish();
    });
    let done = false;
    function finish() {
      if (done) return;
      done = true;
      clearInterval(hb);
      stdin.off('data', onInput);
      stdout.off('resize', onResize);
      if (rawSet) stdin.setRawMode(false);
      stdin.pause();
      resolve(exitCode);
    }
  });
}
