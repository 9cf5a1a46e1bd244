// Local (break-glass) SSH access at the relay (issue 17): `ssh -p 2222 alice@relay1` lists the
// consoles alice may use here, `ssh -t -p 2222 alice@relay1 web01` attaches to one, with the
// `^Ec` escapes of `cloudcons attach` (cli/escape.ts). Keys only: a publickey sign-in whose
// signature verifies, for a user an AccessSource knows that key for; nothing else is offered.
//
// The write lock: while the relay is cut off from the cloud (no welcomed connection) the relay
// holds it itself (local-lock.ts: one writer per console, a fence epoch of its own). While it is
// connected, local sessions only watch: the cloud's lock decides who writes, and taking it from
// here is the next step. When the link comes back, local writers are told and become spies.
//
// Every sign-in, refusal, attach, lock, force, break, detach and keystroke goes to a LocalAudit
// first; input reaches the device only after its record() returned. Output is handed to each
// session's channel as it is read, never waited for: a channel whose client is too slow (its
// buffer past maxBufferBytes) skips output and is told how much it missed.
import { LOCAL_USER_RE } from '../../protocol/messages.ts';
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ServerChannel, Session } from 'ssh2';
// A static import (not createRequire), so a release's bundle carries it with the rest of ssh2.
import ssh2Utils from 'ssh2/lib/protocol/utils.js';
import { DEFAULT_ESCAPE, displayEscape, EscapeParser, HELP_TEXT, type EscapeCommand } from '../../cli/escape.ts';
import type { ConsoleInfo } from '../../protocol/messages.ts';
import type { Log } from '../../protocol/log.ts';
import type { LocalLocks } from './local-lock.ts';
import { fingerprint, verifySignature, type HostKey } from './ssh-keys.ts';
import type { AccessSource, LocalAudit, LocalAuditRecord, LocalPrincipal } from './types.ts';

/** What the SSH server needs of the relay (edge-relay/relay.ts implements it). */
export interface LocalConsoles {
  /** The relay's name, for messages (undefined until the cloud said it, for one without). */
  relayName(): string | undefined;
  list(): ConsoleInfo[];
  /** True while the relay has a connection the cloud welcomed. */
  cloudConnected(): boolean;
  /** Calls `fn` with each piece of `console`'s output as it is read (after the spool has it);
   *  `fn` must not block or throw. Returns the function that stops it. */
  tap(console: string, fn: (data: Buffer) => void): () => void;
  /** Writes to the device; rejects (with the reason) when the console is down or gone. */
  write(console: string, data: Buffer): Promise<void>;
  sendBreak(console: string, id: string): Promise<void>;
  resize(console: string, cols: number, rows: number): void;
}

export interface LocalSshOptions {
  host: string;
  port: number;
  hostKey: HostKey;
  /** Refused sign-in attempts per connection before it is closed. */
  maxAuthTries: number;
  /** Refused sign-in attempts per source address per minute; past it, that address is refused
   *  at once until the minute is over. */
  authPerSourcePerMinute: number;
  /** Sessions (shells and commands) open at once, over all connections. */
  maxSessions: number;
  /** No input for this long ends a session (ms; 0 never). */
  idleTimeoutMs: number;
  /** Output waiting in a session's channel for a slow client; past it output is skipped. */
  maxBufferBytes: number;
  /** A connection not signed in after this long is closed (ms; 0 never). */
  loginGraceMs: number;
  access: AccessSource;
  audit: LocalAudit;
  consoles: LocalConsoles;
  locks: LocalLocks;
  log: Log;
}

const ESC = displayEscape(DEFAULT_ESCAPE);
const CONNECTED = 'the relay is connected: attach through the cloud (cloudcons attach); local write under the cloud\'s lock comes next';
/** A spy's keystrokes are answered at most this often (a held-down key is one answer). */
const SPY_NOTICE_MS = 5000;
/** After the client's input ends, output is still passed on this long (the echo of the last line). */
const EOF_GRACE_MS = 500;
/** How often a session that skips output looks whether its client caught up. */
const CATCH_UP_POLL_MS = 100;

interface Attached {
  id: string;
  console: string;
  principal: LocalPrincipal;
  stream: ServerChannel;
  writer: boolean;
  since: number;
  /** When a spy's keystroke was last answered (0 after a change of role: the next one is). */
  noticeAt: number;
  /** Says `text` on this session's terminal (a line of its own). */
  say(text: string): void;
}

export class LocalSshServer {
  private readonly server: ssh2.Server;
  /** Takes the TCP connections and hands them to `server`: the login grace time must run from
   *  the first byte (ssh2 sees a connection only once the client said its version). */
  private readonly listener: net.Server;
  private readonly sockets = new Set<Socket>();
  /** Login grace timers of connections not signed in yet, by `address:port`. */
  private readonly grace = new Map<string, NodeJS.Timeout>();
  private readonly conns = new Set<Connection>();
  /** Refused attempts per source address in the last minute (their times). */
  private readonly refusals = new Map<string, number[]>();
  /** When an address over the per-minute limit was last logged and audited (once a minute). */
  private readonly limitedSaid = new Map<string, number>();
  private readonly attached = new Map<string, Set<Attached>>();
  private sessions = 0;

  constructor(private readonly o: LocalSshOptions) {
    this.server = new ssh2.Server({ hostKeys: [o.hostKey.private], ident: 'cloudcons' }, (conn, info) => this.onConnection(conn, info.ip, `${info.ip}:${info.port}`));
    this.server.on('error', (e: Error) => o.log(`local ssh: ${e.message}`, { level: 'warn' }));
    this.listener = net.createServer((sock) => {
      this.sockets.add(sock);
      const key = `${sock.remoteAddress}:${sock.remotePort}`;
      if (o.loginGraceMs > 0) {
        this.grace.set(key, setTimeout(() => {
          o.log(`local ssh: connection from ${key} not signed in after ${o.loginGraceMs} ms (local.ssh.loginGraceTime): closed`);
          sock.destroy();
        }, o.loginGraceMs));
      }
      sock.once('close', () => { this.sockets.delete(sock); clearTimeout(this.grace.get(key)); this.grace.delete(key); });
      this.server.injectSocket(sock);
    });
  }

  /** Listens; resolves with the address (port 0: the one picked). Rejects (port taken, say). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(this.o.port, this.o.host, () => { this.listener.off('error', reject); resolve(this.listener.address() as AddressInfo); });
    });
  }

  /** Stops listening and ends every connection (their sessions are told). */
  async close(): Promise<void> {
    for (const set of this.attached.values()) for (const a of set) a.say('the relay is stopping: disconnected');
    for (const c of this.conns) c.end();
    const closed = new Promise<void>((r) => this.listener.close(() => r()));
    setTimeout(() => { for (const s of this.sockets) s.destroy(); }, 1000).unref(); // ones that do not take the end
    for (const t of this.grace.values()) clearTimeout(t);
    await closed;
  }

  /** The relay's link to the cloud came up (welcomed) or went down. Up: local writers become
   *  spies (the cloud's lock decides from now on). */
  linkChanged(up: boolean): void {
    for (const set of this.attached.values()) {
      for (const a of set) {
        if (up && a.writer) {
          this.unlock(a, 'the relay is connected to the cloud again');
          a.say(`the relay is connected to the cloud again: you are a spy now; ${CONNECTED}`);
        } else if (!up) a.say(`the relay lost its connection to the cloud: local write is possible (${ESC}a)`);
      }
    }
  }

  /** Records `r`; false (said in the log) when the audit could not: what needs the record first
   *  (a keystroke, a sign-in) does not happen then. */
  private audit(r: Omit<LocalAuditRecord, 'ts'>): boolean {
    // A refused sign-in's user name is whatever the client sent: one the audit cannot carry as a
    // name is recorded as `invalid`, with what was sent (escaped, cut short) in its detail.
    if (!LOCAL_USER_RE.test(r.user) || r.user.length > 128) r = { ...r, user: 'invalid', detail: `user name sent: ${JSON.stringify(r.user.slice(0, 64))}${r.detail ? `; ${r.detail}` : ''}` };
    try { this.o.audit.record({ ...r, ts: Date.now() }); return true; } catch (e) {
      this.o.log(`local ssh: the local audit could not record ${r.what}${r.console ? ` on ${r.console}` : ''} by ${r.user}: ${(e as Error).message}`, { level: 'error', event: 'local.audit.failed' });
      return false;
    }
  }

  /** Counts a refused attempt from `ip` (the map stays small: addresses quiet for a minute go). */
  private countRefusal(ip: string): void {
    const now = Date.now();
    if (this.refusals.size > 1000) for (const [k, t] of this.refusals) if (now - t[t.length - 1] >= 60_000) { this.refusals.delete(k); this.limitedSaid.delete(k); }
    const times = (this.refusals.get(ip) ?? []).filter((t) => now - t < 60_000);
    times.push(now);
    this.refusals.set(ip, times);
  }

  // ------------------------------------------------------------------------------ sign-in
  private onConnection(conn: Connection, ip: string, key: string): void {
    const cid = randomBytes(4).toString('hex');
    this.conns.add(conn);
    let failures = 0;
    let principal: LocalPrincipal | undefined;
    let nsess = 0;
    conn.on('error', (e: Error) => this.o.log(`local ssh: connection ${cid} from ${ip}: ${e.message}`, { level: 'debug' }));
    conn.on('close', () => this.conns.delete(conn));
    conn.on('authentication', (ctx: AuthContext) => {
      const refuse = (why: string, said: string, count = true) => {
        if (count) { failures++; this.countRefusal(ip); }
        this.o.log(`local ssh: sign-in refused for ${JSON.stringify(ctx.username)} from ${ip} (${ctx.method}): ${why}`, { level: 'warn', event: 'signin.refused' });
        this.audit({ console: '', what: 'signin.refused', user: ctx.username, ...(ctx.method === 'publickey' ? { fingerprint: fingerprint(ctx.key.data) } : {}), session: cid, detail: `from ${ip} (${ctx.method}): ${why}` });
        authBanner(conn, said);
        ctx.reject(['publickey']);
        if (failures >= this.o.maxAuthTries) {
          authBanner(conn, `too many refused sign-in attempts (${failures}): disconnected`);
          setImmediate(() => conn.end());
        }
      };
      const recent = (this.refusals.get(ip) ?? []).filter((t) => Date.now() - t < 60_000);
      if (recent.length >= this.o.authPerSourcePerMinute) {
        // Logged and audited once a minute per address: a flood does not flood the log.
        if (Date.now() - (this.limitedSaid.get(ip) ?? 0) >= 60_000) {
          this.limitedSaid.set(ip, Date.now());
          refuse(`${recent.length} refused attempts from ${ip} in the last minute (local.ssh.authPerSourcePerMinute ${this.o.authPerSourcePerMinute}); its attempts are refused until the minute is over (said once a minute)`,
            `too many refused sign-in attempts from ${ip}: try again in a minute`, false);
        } else { authBanner(conn, `too many refused sign-in attempts from ${ip}: try again in a minute`); ctx.reject(['publickey']); }
        setImmediate(() => conn.end());
        return;
      }
      if (ctx.method === 'none') { ctx.reject(['publickey']); return; } // the client asking what is offered
      if (!this.o.access.enabled()) { refuse('local access is turned off for this relay', `local access is turned off for this relay (an admin can turn it on: cloudcons relay-local on ${this.o.consoles.relayName() ?? 'RELAY'})`); return; }
      if (ctx.method !== 'publickey') { refuse(`${ctx.method} is not accepted (keys only)`, 'only SSH keys sign in here (ssh -i KEY); passwords are not accepted'); return; }
      const fp = fingerprint(ctx.key.data);
      const p = this.o.access.lookup(ctx.username, ctx.key.data);
      if (!p) {
        // Said the same whether the user is unknown or the key is not theirs (no user enumeration).
        refuse(`key ${fp} is not one of ${ctx.username}'s (or no such user)`, `key ${fp} is not allowed for user ${ctx.username} at this relay (relay.yaml local.users, or the user's keys in the cloud)`);
        return;
      }
      if (!ctx.signature || !ctx.blob) { ctx.accept(); return; } // only asking whether the key would do
      if (!verifySignature(ctx.key.data, ctx.blob, ctx.signature, ctx.hashAlgo)) { refuse(`bad signature for key ${fp}`, `the signature of key ${fp} does not verify`); return; }
      if (!this.audit({ console: '', what: 'signin', user: p.user, fingerprint: p.fingerprint, source: p.source, session: cid, detail: `from ${ip} (key from ${p.source})` })) {
        authBanner(conn, 'the relay cannot record sign-ins in its audit now (see its log): refused');
        ctx.reject(['publickey']);
        return;
      }
      principal = p;
      clearTimeout(this.grace.get(key));
      this.grace.delete(key);
      this.o.log(`local ssh: ${p.user} signed in from ${ip} with key ${p.fingerprint} (${p.source})`, { event: 'signin', user: p.user });
      ctx.accept();
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        const session = accept();
        const id = `${cid}.${++nsess}`;
        this.onSession(session, id, principal!);
      });
    });
  }

  // ----------------------------------------------------------------------------- sessions
  private onSession(session: Session, id: string, p: LocalPrincipal): void {
    let pty: { cols: number; rows: number } | undefined;
    let current: Attached | undefined;
    session.on('pty', (accept, _reject, info) => { pty = { cols: info.cols, rows: info.rows }; accept?.(); });
    session.on('window-change', (accept, _reject, info) => {
      pty = { cols: info.cols, rows: info.rows };
      accept?.();
      if (current?.writer) this.o.consoles.resize(current.console, info.cols, info.rows);
    });
    session.on('env', (accept) => accept?.()); // LANG and the like: taken, not used
    const run = (stream: ServerChannel, command: string) => {
      if (this.sessions >= this.o.maxSessions) {
        stream.stderr.write(`cloudcons: ${this.sessions} local sessions are open, the most this relay allows (local.ssh.maxSessions ${this.o.maxSessions}); try again later\r\n`);
        this.o.log(`local ssh: session of ${p.user} refused: ${this.sessions} open (local.ssh.maxSessions)`, { level: 'warn' });
        return done(stream, 1);
      }
      this.sessions++;
      stream.once('close', () => { this.sessions--; });
      const nl = pty ? '\r\n' : '\n';
      const words = command.trim().split(/\s+/).filter(Boolean);
      if (!words.length || (words.length === 1 && (words[0] === 'ls' || words[0] === 'list'))) {
        stream.write(this.listing(p).join(nl) + nl);
        return done(stream, 0);
      }
      const flags = words.slice(1);
      const bad = flags.find((f) => !['-s', '-f', '-a'].includes(f));
      if (words[0].startsWith('-') || bad || words.length > 3) {
        stream.stderr.write(`cloudcons: usage: ssh [-t] -p PORT USER@RELAY [CONSOLE [-s|-f]] (got ${JSON.stringify(command.slice(0, 80))}); no command lists the consoles${nl}`);
        return done(stream, 2);
      }
      current = this.attach(stream, id, p, words[0], flags.includes('-f') ? 'force' : flags.includes('-s') ? 'spy' : 'rw', nl, pty);
    };
    session.on('shell', (accept) => run(accept(), ''));
    session.on('exec', (accept, _reject, info) => run(accept(), info.command));
  }

  /** The consoles `p` may use here, conserver `console -x` style, with writers and spies. */
  private listing(p: LocalPrincipal): string[] {
    const rows = this.o.consoles.list().filter((c) => p.right(c.name)).map((c) => {
      const set = [...(this.attached.get(c.name) ?? [])];
      const writer = this.o.locks.holder(c.name);
      return [c.name, c.state, c.type, p.right(c.name)!, writer ? `${writer.user}@local` : '-',
        set.filter((a) => !a.writer).map((a) => a.principal.user).join(',') || '-'];
    });
    const head = ['CONSOLE', 'STATE', 'TYPE', 'RIGHT', 'WRITER', 'SPIES'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[]) => r.map((x, i) => (i < r.length - 1 ? x.padEnd(w[i]) : x)).join('  ');
    const relay = this.o.consoles.relayName() ?? 'this relay';
    return [
      `# ${relay}: ${this.o.consoles.cloudConnected() ? `connected to the cloud: local sessions watch only (${CONNECTED})` : 'cut off from the cloud: the relay holds the write lock for local sessions'}`,
      ...(rows.length ? [fmt(head), ...rows.map(fmt)] : [`# no consoles here for ${p.user}`]),
    ];
  }

  private attach(stream: ServerChannel, id: string, p: LocalPrincipal, name: string, want: 'rw' | 'spy' | 'force', nl: string, pty?: { cols: number; rows: number }): Attached | undefined {
    const info = this.o.consoles.list().find((c) => c.name === name);
    const right = info ? p.right(name) : undefined;
    if (!info || !right) {
      stream.stderr.write(`cloudcons: no console ${JSON.stringify(name)} for ${p.user} on this relay (ssh without a command lists yours)${nl}`);
      this.audit({ console: name, what: 'attach.refused', user: p.user, fingerprint: p.fingerprint, source: p.source, session: id, detail: info ? 'no right on this console' : 'no such console' });
      done(stream, 1);
      return undefined;
    }
    const a: Attached = {
      id, console: name, principal: p, stream, writer: false, since: Date.now(), noticeAt: 0,
      say: (text) => { if (stream.writable) stream.write(`${nl}[${text}]${nl}`); },
    };
    let set = this.attached.get(name);
    if (!set) this.attached.set(name, set = new Set());
    set.add(a);
    this.audit({ console: name, what: 'attach', user: p.user, fingerprint: p.fingerprint, source: p.source, session: id, detail: `${want === 'spy' ? 'spy' : want === 'force' ? 'force' : 'read-write if free'} (ssh${pty ? ', pty' : ''})` });
    this.o.log(`local ssh: ${p.user} attached to ${name} (session ${id})`, { console: name, event: 'attach', user: p.user });

    // Output: never waited for; a slow client skips what does not fit and is told.
    // The channel's own high-water mark is not ours, so 'drain' may never come: while output is
    // skipped, a timer looks whether the client caught up, and says how much it missed.
    let missed = 0;
    let watch: NodeJS.Timeout | undefined;
    const max = this.o.maxBufferBytes;
    const catchUp = () => {
      if (!missed || stream.writableLength > max / 2) return;
      stream.write(`${nl}[${missed} bytes of output skipped: this connection is too slow (local.ssh.maxBufferBytes ${max})]${nl}`);
      missed = 0;
      clearInterval(watch);
      watch = undefined;
    };
    const untap = this.o.consoles.tap(name, (d) => {
      if (!stream.writable) return;
      if (stream.writableLength > max) {
        missed += d.length;
        watch ??= setInterval(() => (stream.writable ? catchUp() : clearInterval(watch)), CATCH_UP_POLL_MS);
        return;
      }
      catchUp();
      stream.write(d);
    });

    stream.write(`[attached to ${name} on ${this.o.consoles.relayName() ?? 'this relay'} as ${p.user}; ${ESC}? for help, ${ESC}. to detach]${nl}`);
    if (want !== 'spy') this.takeLock(a, want === 'force', false);
    else a.say('spy: read-only');

    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (!this.o.idleTimeoutMs) return;
      clearTimeout(idle);
      idle = setTimeout(() => { a.say(`no input for ${Math.round(this.o.idleTimeoutMs / 1000)} s (local.ssh.idleTimeout): disconnected`); end(0, 'idle'); }, this.o.idleTimeoutMs);
    };
    armIdle();
    let ended = false;
    const end = (code: number, why: string) => {
      if (ended) return;
      ended = true;
      clearTimeout(idle);
      clearInterval(watch);
      untap();
      set!.delete(a);
      if (!set!.size) this.attached.delete(name);
      this.unlock(a, why);
      this.audit({ console: name, what: 'detach', user: p.user, fingerprint: p.fingerprint, source: p.source, session: id, detail: why });
      this.o.log(`local ssh: ${p.user} detached from ${name} (session ${id}): ${why}`, { console: name, event: 'detach', user: p.user });
      done(stream, code);
    };
    stream.once('close', () => end(0, 'connection closed'));
    // The client's input ended (`echo cmd | ssh ... web01`): its echo still comes, then detach.
    stream.once('end', () => setTimeout(() => end(0, 'input ended'), EOF_GRACE_MS));

    const parser = new EscapeParser();
    stream.on('data', (chunk: Buffer) => {
      armIdle();
      for (const ev of parser.push(chunk)) {
        if (ended) return;
        if (ev.type === 'command') { this.command(a, ev.cmd, info, end); continue; }
        if (!a.writer) {
          if (Date.now() - a.noticeAt > SPY_NOTICE_MS) {
            a.noticeAt = Date.now();
            a.say(this.o.consoles.cloudConnected() ? `read-only: ${CONNECTED}` : `read-only: you are a spy (${ESC}a attach read-write, ${ESC}f force)`);
          }
          continue;
        }
        // On the audit trail first (durable when record returns), then to the device.
        if (!this.audit({ console: name, what: 'input', user: p.user, fingerprint: p.fingerprint, source: p.source, session: id, data: ev.data })) {
          a.say('not sent: the relay cannot record input in its audit now (see its log)');
          continue;
        }
        this.o.consoles.write(name, ev.data).catch((e: Error) => a.say(`not sent: ${e.message}`));
      }
    });
    if (pty && a.writer && info.resizable) this.o.consoles.resize(name, pty.cols, pty.rows);
    return a;
  }

  /** Asks for the write lock for `a`: refused while the relay is connected (the cloud's lock
   *  decides) and for a user with read-only right; else the relay's own lock (force: taken). */
  private takeLock(a: Attached, force: boolean, asked: boolean): void {
    const p = a.principal;
    const rec = (what: string, detail: string) => this.audit({ console: a.console, what, user: p.user, fingerprint: p.fingerprint, source: p.source, session: a.id, detail });
    if (a.writer) { if (asked) a.say('you are already the writer'); return; }
    if (this.o.consoles.cloudConnected()) { rec('lock.refused', 'the relay is connected to the cloud'); a.say(`spy: ${CONNECTED}`); return; }
    if (p.right(a.console) !== 'rw') { rec('lock.refused', 'read-only right'); a.say(`spy: ${p.user} may only watch ${a.console} here`); return; }
    let r: ReturnType<LocalLocks['take']>;
    try { r = this.o.locks.take(a.console, { session: a.id, user: p.user, fingerprint: p.fingerprint }, force); } catch (e) {
      rec('lock.refused', (e as Error).message);
      a.say(`spy: the write lock could not be taken: ${(e as Error).message}`);
      return;
    }
    if (!r.ok) {
      rec('lock.refused', `held by ${r.holder.user} (${r.holder.session})`);
      a.say(`spy: ${a.console} is written by ${r.holder.user}@local since ${new Date(r.holder.since).toISOString()}; ${ESC}f to force`);
      return;
    }
    a.writer = true;
    if (r.bumped) {
      const old = [...(this.attached.get(a.console) ?? [])].find((x) => x.id === r.bumped!.session);
      if (old) { old.writer = false; old.noticeAt = 0; old.say(`${p.user} forced the write lock: you are a spy now (${ESC}f to take it back)`); }
      rec('force', `took the write lock from ${r.bumped.user} (session ${r.bumped.session}, epoch ${r.bumped.epoch}); epoch ${r.holder.epoch}`);
    } else rec('lock', `epoch ${r.holder.epoch}`);
    a.say(`read-write: the relay holds the lock (cut off from the cloud; epoch ${r.holder.epoch})`);
  }

  private unlock(a: Attached, why: string): void {
    if (!a.writer) return;
    a.writer = false;
    a.noticeAt = 0;
    if (this.o.locks.release(a.console, a.id)) this.audit({ console: a.console, what: 'unlock', user: a.principal.user, fingerprint: a.principal.fingerprint, source: a.principal.source, session: a.id, detail: why });
  }

  private command(a: Attached, cmd: EscapeCommand, info: ConsoleInfo, end: (code: number, why: string) => void): void {
    const p = a.principal;
    switch (cmd.kind) {
      case 'disconnect': a.say('disconnected'); return end(0, 'detached (escape)');
      case 'attach': return this.takeLock(a, false, true);
      case 'force': return this.takeLock(a, true, true);
      case 'spy': if (a.writer) { this.unlock(a, 'switched to spy'); a.say('spy: read-only'); } else a.say('already a spy'); return;
      case 'who': {
        const set = [...(this.attached.get(a.console) ?? [])];
        const lines = set.map((x) => ` ${x.writer ? 'rw ' : 'spy'} ${x.principal.user}@local  key ${x.principal.fingerprint}  since ${new Date(x.since).toISOString()}${x === a ? '  (you)' : ''}`);
        a.say(`who is on ${a.console} at this relay (cloud viewers are not listed here):`);
        a.stream.write(lines.join('\r\n') + '\r\n');
        return;
      }
      case 'listBreaks': {
        const cur = this.o.consoles.list().find((c) => c.name === a.console) ?? info;
        a.say(`breaks of ${a.console}: ${(cur.breaks ?? []).map((b) => `${b.id}: ${b.text}${b.id === cur.defaultBreak ? ' (0)' : ''}`).join('; ') || 'none'}`);
        return;
      }
      case 'break': {
        if (!a.writer) { a.say(`a break needs the write lock (${ESC}a)`); return; }
        const cur = this.o.consoles.list().find((c) => c.name === a.console) ?? info;
        const id = cmd.id === '0' ? cur.defaultBreak ?? '1' : cmd.id;
        const b = (cur.breaks ?? []).find((x) => x.id === id);
        if (!b) { a.say(`no break sequence ${cmd.id} on ${a.console} (${ESC}l? lists them)`); return; }
        if (!this.audit({ console: a.console, what: 'break', user: p.user, fingerprint: p.fingerprint, source: p.source, session: a.id, detail: `${id}: ${b.text}` })) { a.say('break not sent: the relay cannot record it in its audit now (see its log)'); return; }
        this.o.consoles.sendBreak(a.console, id).then(() => a.say(`break ${id} sent: ${b.text}`), (e: Error) => a.say(`break not sent: ${e.message}`));
        return;
      }
      case 'replay': a.say('replay is not available over local ssh yet (cloudcons replay, once the cloud is back)'); return;
      case 'help': a.stream.write(HELP_TEXT(ESC)); return;
      case 'ignored': return;
      case 'aborted': a.say(`no break sequence ${JSON.stringify(cmd.char)} (${ESC}l? lists them)`); return;
      case 'unknown': a.say(`unknown escape ${JSON.stringify(cmd.char)} (${ESC}? for help)`); return;
    }
  }
}

/** Ends a session's channel with exit status `code`. */
function done(stream: ServerChannel, code: number): void {
  if (!stream.writable) return;
  try { stream.exit(code); } catch { /* the channel is gone */ }
  stream.end();
}

/** Sends a USERAUTH_BANNER: a line the client shows while signing in (OpenSSH prints it on
 *  stderr), the only way to say why a sign-in is refused. ssh2's Server sends one fixed banner;
 *  this writes the packet the same way (Protocol.js, SERVICE_ACCEPT). */
function authBanner(conn: Connection, text: string): void {
  type W = { allocStart: number; alloc(n: number): Buffer; finalize(b: Buffer): Buffer };
  const proto = (conn as unknown as { _protocol?: { _packetRW?: { write?: W } } })._protocol;
  const w = proto?._packetRW?.write;
  if (!w) return;
  const msg = Buffer.from(`cloudcons: ${text}\r\n`);
  let p = w.allocStart;
  const packet = w.alloc(1 + 4 + msg.length + 4);
  packet[p] = 53; // SSH_MSG_USERAUTH_BANNER
  packet.writeUInt32BE(msg.length, ++p);
  msg.copy(packet, p += 4);
  packet.writeUInt32BE(0, p + msg.length); // language tag: none
  ssh2Utils.sendPacket(proto, w.finalize(packet));
}
