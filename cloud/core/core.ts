// The cloud core: sessions, the write lock, fan-out of live output, ingest and audit.
// Stateless between calls: every fact lives behind a port (ports.ts), so this class runs the same
// in the embedded server and in Lambda. Callers must hand it the messages of one connection in
// order (one at a time per connection); different connections may interleave.
import { randomBytes } from 'node:crypto';
import { chunks, encode } from '../../protocol/codec.ts';
import { CLOUD_STREAM } from '../../protocol/names.ts';
import { BadParameter, Conflict, Forbidden, NotFound, RateLimited } from '../../protocol/errors.ts';
import type { ClientToCloud, ConsoleInfo, CloudToClient, CloudToRelay, Out, RelayToCloud, Viewer } from '../../protocol/messages.ts';
import { ACTIONS, decide, explain, isAdmin, parseAccess, relayMayPublish, type AccessDoc, type Action, type Decision } from './acl.ts';
import { SECRET_PROMPT_DEFAULT, SecretPromptTracker } from './secret-prompt.ts';
import { LogStore, type LogStoreOptions } from './log-store.ts';
import { boundedRecord, cutText } from './audit-text.ts';
import type { AuditRecord, CloudPorts, ConsoleRecord, Principal, Session } from './ports.ts';

export interface CoreOptions {
  /** Write-lock lease; clients renew it with every ping. Default 30 s. */
  leaseMs: number;
  /** Largest history sent on attach or replay, in bytes. Default 1 MiB. */
  maxHistoryBytes: number;
  /** Which output relays stream live: `always` every console's (default; the embedded cloud, where
   *  a message costs nothing and replay's hot tail stays current to the millisecond), or `watched`
   *  only the consoles someone is attached to (the AWS cloud: every message costs; unwatched
   *  output reaches replay by segment upload, up to the relay's segment time later). */
  live: 'always' | 'watched';
  /** In `watched` mode, how long a replay of an unwatched console waits for its relay to send what
   *  it has not sealed yet (it stops early once the stored end has been still for 150 ms). Default 1500 ms. */
  catchUpMs: number;
  /** Relays gather live output of a console nobody typed on in the last 2 s this long into one
   *  message (a writer's echo is never held). Default 0 (at once); 2000 on Lambda, where each
   *  message costs. */
  quietBatchMs: number;
  /** Input typed while a console shows a password prompt is audited without its bytes
   *  ("[redacted: N bytes typed at a password prompt]"). Default true. */
  redactSecrets: boolean;
  /** What counts as a password prompt (the console's last line). Default SECRET_PROMPT_DEFAULT. */
  secretPrompt: RegExp;
  /** How long a process keeps the access rules it read before reading them again: a change made
   *  through another process (another Lambda) takes effect within this. Default 2000 ms. */
  accessCacheMs: number;
  /** Failed sign-ins audited per minute and process; more are counted and summed up in the next
   *  minute's first record (a flood of bad tokens must not flood the audit). Default 60. */
  authFailureAuditsPerMin: number;
  /** Sessions (writer and spies) one console takes; the next attach is refused. Default 64. */
  maxSessionsPerConsole: number;
  /** Every this many heartbeats of a connection (clients: 10 s, relays: 20 s) its token is looked
   *  up again: a revoked or expired token ends the connection then. Default 3. */
  tokenRecheckPings: number;
  /** Longest free text (detail, user) an audit record keeps; longer text, which a request or a
   *  relay supplied, is cut with a marker (audit-text.ts). Default 1024 characters. */
  auditTextMax: number;
}
export const CORE_DEFAULTS: CoreOptions = {
  leaseMs: 30_000, maxHistoryBytes: 1024 * 1024, live: 'always', catchUpMs: 1500, quietBatchMs: 0,
  redactSecrets: true, secretPrompt: SECRET_PROMPT_DEFAULT, accessCacheMs: 2000, authFailureAuditsPerMin: 60, maxSessionsPerConsole: 64, tokenRecheckPings: 3,
  auditTextMax: 1024,
};

export { CLOUD_STREAM } from '../../protocol/names.ts';

export interface ConsoleView extends ConsoleRecord {
  writer?: string;
  spies: number;
  viewers: Viewer[];
}

export class CloudCore {
  readonly opts: CoreOptions;
  /** Every console's output: sealed segments + hot tail. */
  readonly log: LogStore;
  constructor(private readonly p: CloudPorts, opts: Partial<CoreOptions> = {}, logOpts: Partial<LogStoreOptions> = {}) {
    this.opts = { ...CORE_DEFAULTS, ...opts };
    this.log = new LogStore(p.segments, p.hot, logOpts);
    this.prompts = new SecretPromptTracker(this.opts.secretPrompt);
  }
  private readonly prompts: SecretPromptTracker;

  // ============================================================================ relay connections

  async relayMessage(conn: string, who: Principal, msg: RelayToCloud): Promise<void> {
    if (who.kind !== 'relay') throw new Forbidden('only relay tokens may speak the relay protocol');
    switch (msg.t) {
      case 'hello': return this.relayHello(conn, who, msg);
      case 'console': {
        const rec = await this.ownedConsole(conn, who, msg.info.name);
        if (!rec) return;
        const changed = rec.state !== msg.info.state;
        await this.p.consoles.put({ ...rec, ...described(msg.info), state: msg.info.state, since: msg.info.since, reason: msg.info.reason });
        if (changed) await this.consoleStateChanged(rec.name, msg.info.state, msg.info.reason);
        return;
      }
      case 'out': {
        const rec = await this.ownedConsole(conn, who, msg.c);
        if (!rec) return;
        const data = Buffer.from(msg.d, 'base64');
        // Only what was not stored before goes live: a resend after a reconnect is never shown twice.
        const { fresh } = await this.log.append(msg.c, msg.o, msg.ts, data);
        for (const f of fresh) await this.fanOut(msg.c, f.offset, f.data, f.data.length === data.length ? msg.d : undefined);
        if (this.opts.redactSecrets && fresh.length) {
          let secret = false;
          for (const f of fresh) secret = this.prompts.feed(msg.c, f.data);
          if (secret !== !!rec.secretPrompt) {
            const now = await this.p.consoles.get(msg.c); // re-read: the fan-out awaited
            if (now) await this.p.consoles.put({ ...now, secretPrompt: secret || undefined });
          }
        }
        return;
      }
      case 'rejected': {
        if (!(await this.ownedConsole(conn, who, msg.c))) return;
        const s = await this.p.sessions.get(msg.session);
        await this.audit(msg.c, msg.what === 'in' ? 'input.dropped' : `${msg.what}.dropped`, s, { fence: msg.fence, detail: `relay refused: ${msg.reason}` });
        if (s) await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: the relay refused your ${msg.what === 'in' ? 'input' : msg.what}: ${msg.reason}]` });
        return;
      }
      case 'break-sent':
        if (!(await this.ownedConsole(conn, who, msg.c))) return;
        await this.notice(msg.c, `[cloudcons: break ${msg.seq} sent]`);
        return;
      case 'event':
        if (!(await this.ownedConsole(conn, who, msg.c))) return;
        await this.audit(msg.c, `console.${msg.what}`, undefined, { detail: msg.detail, user: `relay:${who.name}` });
        if (msg.what === 'flapping' || msg.what === 'idle') await this.notice(msg.c, `[cloudcons: ${msg.detail}]`);
        return;
      case 'ping':
        if (await this.tokenGone(conn, who, msg.id)) return;
        await this.sendRelay(conn, { t: 'pong', id: msg.id });
        return;
      case 'pong': return;
    }
  }

  private async relayHello(conn: string, who: Principal, msg: Extract<RelayToCloud, { t: 'hello' }>): Promise<void> {
    // A relay is who its token says: the name in its hello (from its config) is only compared.
    if (msg.relay !== who.name) {
      await this.audit(CLOUD_STREAM, 'relay.name', undefined, { user: `relay:${who.name}`, detail: `the token of relay ${who.name} said hello as ${msg.relay}` });
      await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message: `this token belongs to relay ${who.name}, not ${msg.relay}: its consoles are published as relay ${who.name}'s` });
    }
    const { doc } = await this.accessDoc();
    const ends: Record<string, number> = {};
    const watched: string[] = [];
    const refused: string[] = [];
    const downAgain: { c: string; by: string }[] = [];
    for (const info of msg.consoles) {
      if (!relayMayPublish(doc, who.name, info.name)) { refused.push(`${info.name} (not assigned to relay ${who.name} in the access rules)`); continue; }
      const old = await this.p.consoles.get(info.name);
      if (old && old.relay !== who.name && old.relayConn) { refused.push(`${info.name} (published by relay ${old.relay})`); continue; }
      if (info.fence) await this.reFence(info.name, info.fence);
      await this.p.consoles.put({ ...described(info), state: info.state, since: info.since, reason: info.reason, relay: who.name, relayConn: conn, ...(old?.adminDown ? { adminDown: old.adminDown } : {}) });
      ends[info.name] = await this.log.end(info.name);
      if ((this.opts.live === 'watched' || info.ondemand) && (await this.p.sessions.byConsole(info.name)).length) watched.push(info.name);
      if (old?.adminDown) downAgain.push({ c: info.name, by: old.adminDown.by });
      if (!old || old.state !== info.state || !old.relayConn) await this.consoleStateChanged(info.name, info.state, info.reason);
    }
    const batch = this.opts.quietBatchMs ? { quietBatchMs: this.opts.quietBatchMs } : {};
    await this.sendRelay(conn, this.opts.live === 'watched' ? { t: 'welcome', ends, live: 'watched', watched, ...batch } : { t: 'welcome', ends, ...(watched.length ? { watched } : {}), ...batch });
    // Down by hand stays down across relay restarts.
    for (const d of downAgain) await this.sendRelay(conn, { t: 'ctl', c: d.c, op: 'down', by: d.by });
    if (refused.length) {
      await this.audit(CLOUD_STREAM, 'relay.refused', undefined, { user: `relay:${who.name}`, detail: `consoles refused: ${refused.join(', ')}` });
      await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_CONFLICT', message: `consoles refused (ignored): ${refused.join(', ')}` });
    }
  }

  /** A relay has seen `fence` for a console (the cloud restarted and lost its lock state): make
   *  every later fence higher, and give a writer that re-attached in the meantime (with a fence the
   *  relay would now call stale) a fresh one. */
  private async reFence(console: string, fence: number): Promise<void> {
    await this.p.locks.seedFence(console, fence);
    const lock = await this.p.locks.get(console);
    if (!lock.session || lock.expiresAt <= this.now() || lock.fence > fence) return;
    const r = await this.p.locks.acquire(console, { session: lock.session, user: lock.user! }, { force: true, leaseMs: this.opts.leaseMs, now: this.now() });
    const s = await this.p.sessions.get(lock.session);
    if (!r.ok || !s) return;
    s.fence = r.lock.fence;
    await this.p.sessions.put(s);
    await this.audit(console, 'lock.refence', s, { detail: `relay had seen fence ${fence}` });
  }

  /** A relay uploads a sealed segment of its spool (HTTP). Stored when this resolves; the relay
   *  then deletes it from its spool. */
  /** Only the relay that publishes a console may store its output. */
  private async requireRelayOf(who: Principal, console: string): Promise<void> {
    if (who.kind !== 'relay') throw new Forbidden('only relay tokens may upload segments');
    const rec = await this.p.consoles.get(console);
    if (!rec) throw new NotFound(`console ${console} is not registered: the relay must connect (hello) before uploading`);
    if (rec.relay !== who.name) throw new Forbidden(`console ${console} is published by relay ${rec.relay}, not ${who.name}`);
  }

  /** Where a relay uploads segment `key`: straight to the segment store with a presigned PUT when
   *  the store has them (S3), else through this cloud (`PUT .../segments`). After a presigned PUT
   *  the relay calls commitSegment. */
  async segmentUploadUrl(who: Principal, console: string, req: { key: string; size: number; sha256?: Buffer }, maxBytes: number):
    Promise<{ mode: 'direct' } | { mode: 'presigned'; url: string; headers: Record<string, string> }> {
    await this.requireRelayOf(who, console);
    if (!this.p.segments.presignPut) return { mode: 'direct' };
    if (!Number.isInteger(req.size) || req.size < 1 || req.size > maxBytes) {
      throw new BadParameter(`size: must be 1..${maxBytes} bytes (--max-segment-bytes), got ${req.size}`);
    }
    await this.log.checkUpload(console, req.key);
    return { mode: 'presigned', ...await this.p.segments.presignPut(req.key, { size: req.size, sha256: req.sha256 }) };
  }

  /** A segment the relay PUT to the store itself: verified, indexed and made part of the log. */
  async commitSegment(who: Principal, console: string, key: string): Promise<{ key: string; start: number; end: number; created: boolean }> {
    await this.requireRelayOf(who, console);
    return this.segmentStored(console, await this.log.commitSegment(console, key));
  }

  async ingestSegment(who: Principal, console: string, body: Buffer): Promise<{ key: string; start: number; end: number; created: boolean }> {
    await this.requireRelayOf(who, console);
    return this.segmentStored(console, await this.log.putSegment(console, body));
  }

  private async segmentStored(console: string, r: Awaited<ReturnType<CloudCore['log']['putSegment']>>) {
    const g = r.footer.gap;
    if (g && r.created && r.lost) {
      const kept = g.bytes - r.lost ? ` (${g.bytes - r.lost} of the relay's ${g.bytes} dropped bytes had already arrived live and are kept)` : '';
      const why = `${r.lost} bytes lost at offset ${r.lostAt} (${new Date(g.t0).toISOString()} to ${new Date(g.t1).toISOString()}): ${g.reason}${kept}`;
      await this.appendAudit({ time: this.now(), console, type: 'output.gap', detail: why, offset: r.lostAt });
      await this.notice(console, `[cloudcons: console output was lost: ${why}]`);
    }
    // Output the live path has not brought (its message is slower than the upload, or the console
    // was not streamed): viewers get it now, in frame-sized pieces; they place output by offset,
    // so a live copy arriving later is not shown twice.
    for (const f of r.fresh) {
      let o = f.offset;
      for (const part of chunks(f.data)) { await this.fanOut(console, o, part); o += part.length; }
    }
    return { key: r.key, start: r.footer.start, end: r.footer.end, created: r.created };
  }

  async relayClosed(conn: string): Promise<void> {
    const dropped = await this.p.consoles.dropRelayConn(conn, 'relay disconnected', this.now());
    for (const rec of dropped) await this.consoleStateChanged(rec.name, 'down', `relay ${rec.relay} disconnected`);
  }

  /** The console if `conn` is the relay connection that publishes it, or another connection of
   *  the same relay: during a make-before-break move, messages the old connection sent before the
   *  relay switched are still handled after the new one's hello (on API Gateway, in parallel). */
  private async ownedConsole(conn: string, who: Principal, name: string): Promise<ConsoleRecord | undefined> {
    const rec = await this.p.consoles.get(name);
    if (rec?.relayConn && (rec.relayConn === conn || rec.relay === who.name)) return rec;
    await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message: `console ${name} is not published by relay ${who.name}${rec?.relayConn ? '' : ' (or its relay is not connected)'}: send hello first` });
    return undefined;
  }

  private async consoleStateChanged(name: string, state: 'up' | 'down', reason?: string): Promise<void> {
    await this.appendAudit({ time: this.now(), console: name, type: `console.${state}`, detail: reason, offset: await this.log.end(name) });
    for (const s of await this.p.sessions.byConsole(name)) await this.sendClient(s.conn, { t: 'state', state, reason });
  }

  // =========================================================================== client connections

  async clientMessage(conn: string, who: Principal, msg: ClientToCloud): Promise<void> {
    if (who.kind !== 'user') throw new Forbidden('relay tokens cannot attach to consoles');
    if (msg.t === 'attach') return this.attach(conn, who, msg);
    if (msg.t === 'ping') {
      if (await this.tokenGone(conn, who, msg.id)) return;
      const s = await this.sessionOf(conn);
      if (s?.mode === 'rw' && s.fence !== undefined) await this.p.locks.renew(s.console, s.id, s.fence, this.opts.leaseMs, this.now());
      await this.sendClient(conn, { t: 'pong', id: msg.id });
      // Every 6th heartbeat (ids count up per connection; a minute at the CLI's 10 s): heals an
      // `off` that overtook a later `on`, at a sixth of the messages.
      if (s && msg.id % 6 === 0) await this.watch(s.console, true);
      return;
    }
    if (msg.t === 'pong') return;
    const s = await this.sessionOf(conn);
    if (!s) { await this.sendClient(conn, { t: 'error', code: 'CC_ERR_BAD_PARAMETER', message: `send attach before ${msg.t}` }); return; }
    switch (msg.t) {
      case 'in': return this.input(s, who, Buffer.from(msg.d, 'base64'));
      case 'lock': return this.lockOp(s, who, msg.op);
      case 'break': return this.sendBreak(s, who, msg.seq);
      case 'resize': {
        if (s.mode !== 'rw') return; // the writer's window decides the size
        const rec = await this.p.consoles.get(s.console);
        if (rec?.relayConn && rec.resizable && s.fence !== undefined) await this.toRelay(s.console, rec.relayConn, { t: 'resize', c: s.console, fence: s.fence, session: s.id, cols: msg.cols, rows: msg.rows });
        return;
      }
      case 'who': await this.sendClient(conn, { t: 'who', viewers: await this.who(s.console) }); return;
      case 'replay': return this.sendHistory(s.conn, s.console, msg.lines, 'replay');
    }
  }

  private async attach(conn: string, who: Principal, msg: Extract<ClientToCloud, { t: 'attach' }>): Promise<void> {
    if ((await this.p.sessions.byConn(conn)).length) throw new Conflict('this connection is already attached; open another one');
    const rec = await this.requireVisible(who, msg.c, await this.p.consoles.get(msg.c));
    // A user without write access joins as spy (as a conserver `ro` user does); without spy, not at all.
    let mode = msg.mode;
    let downgraded: string | undefined;
    if (mode !== 'spy') {
      const d = await this.may(who, msg.c, mode === 'force' ? 'force' : 'attach');
      if (!d.allow) { downgraded = `[cloudcons: you may not ${mode === 'force' ? 'force the lock on' : 'write to'} ${msg.c} (${d.why}); you are a spy]`; mode = 'spy'; }
    }
    if (mode === 'spy') await this.requireAccess(who, msg.c, 'spy'); // a writer sees what it writes to
    const attached = (await this.p.sessions.byConsole(msg.c)).length;
    if (attached >= this.opts.maxSessionsPerConsole) {
      await this.audit(msg.c, 'session.refused', undefined, { user: who.name, detail: `${attached} sessions already (maxSessionsPerConsole)` });
      throw new RateLimited(`console ${msg.c} has ${attached} sessions, its limit (maxSessionsPerConsole ${this.opts.maxSessionsPerConsole}): try again later`);
    }
    const s: Session = { id: newId(), console: msg.c, user: who.name, mode: 'spy', since: this.now(), conn, client: msg.client };
    await this.p.sessions.put(s);
    await this.watch(msg.c, true, rec);
    await this.audit(msg.c, 'session.attach', s, { detail: `requested ${msg.mode}${msg.client ? ` from ${msg.client}` : ''}` });
    let note = downgraded;
    if (mode !== 'spy') note = await this.takeLock(s, mode === 'force');
    const lock = await this.p.locks.get(msg.c);
    const writer = lock.session && lock.expiresAt > this.now() ? lock.user : undefined;
    const rights: string[] = [];
    for (const a of ACTIONS) if ((await this.may(who, msg.c, a)).allow) rights.push(a);
    await this.sendClient(conn, { t: 'attached', c: msg.c, session: s.id, user: s.user, mode: s.mode, fence: s.fence, writer, state: rec.state, type: rec.type, ...(rec.breaks ? { breaks: rec.breaks, defaultBreak: rec.defaultBreak } : {}), rights });
    if (note) await this.sendClient(conn, { t: 'notice', text: note });
    if (rec.state === 'down') await this.sendClient(conn, { t: 'state', state: 'down', reason: rec.reason });
    if (s.mode === 'rw' && msg.cols && msg.rows && rec.resizable && rec.relayConn) {
      await this.toRelay(s.console, rec.relayConn, { t: 'resize', c: s.console, fence: s.fence!, session: s.id, cols: msg.cols, rows: msg.rows });
    }
    if (msg.from !== undefined) await this.sendSince(conn, msg.c, msg.from);
    else await this.sendHistory(conn, msg.c, msg.tail ?? 0, 'attach');
  }

  /** History from output offset `from` to the end (at most maxHistoryBytes; the rest is reported
   *  as missed), for a client that re-attaches after losing its connection. */
  private async sendSince(conn: string, console: string, from: number): Promise<void> {
    const end = await this.log.end(console);
    const start = Math.min(end, Math.max(from, end - this.opts.maxHistoryBytes));
    if (start > from) await this.sendClient(conn, { t: 'missed', bytes: start - from });
    await this.sendChunks(conn, await this.log.read(console, start, end), 'attach', end);
  }

  /** Tries to make `s` the writer. Updates `s` in place and in the store; returns a notice when
   *  the lock could not be taken. */
  private async takeLock(s: Session, force: boolean): Promise<string | undefined> {
    const r = await this.p.locks.acquire(s.console, { session: s.id, user: s.user }, { force, leaseMs: this.opts.leaseMs, now: this.now() });
    if (!r.ok) {
      await this.audit(s.console, 'lock.refused', s, { detail: `held by ${r.lock.user}` });
      return `[console is in use by ${r.lock.user}; you are a spy (read-only). Force with -f or ^Ecf]`;
    }
    const wasRw = s.mode === 'rw' && s.fence === r.lock.fence;
    s.mode = 'rw';
    s.fence = r.lock.fence;
    await this.p.sessions.put(s);
    const rec = await this.p.consoles.get(s.console);
    if (rec?.relayConn) await this.toRelay(s.console, rec.relayConn, { t: 'fence', c: s.console, fence: r.lock.fence });
    if (r.bumped && r.bumped.session !== s.id) {
      await this.audit(s.console, 'lock.force', s, { detail: `bumped ${r.bumped.user} (session ${r.bumped.session})` });
      const old = await this.p.sessions.get(r.bumped.session);
      if (old) {
        old.mode = 'spy';
        delete old.fence;
        await this.p.sessions.put(old);
        await this.audit(s.console, 'lock.bumped', old, { detail: `by ${s.user}` });
        await this.sendClient(old.conn, { t: 'mode', mode: 'spy', bumpedBy: s.user, writer: s.user });
      }
    } else if (!wasRw) {
      await this.audit(s.console, 'lock.take', s);
    }
    await this.notifyOthers(s, `[${s.user} is now the writer]`);
    return undefined;
  }

  private async lockOp(s: Session, who: Principal, op: 'take' | 'force' | 'spy'): Promise<void> {
    if (op !== 'spy') {
      const d = await this.may(who, s.console, op === 'force' ? 'force' : 'attach');
      if (!d.allow) {
        await this.audit(s.console, 'lock.denied', s, { detail: `${op}: ${d.why}` });
        await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: you may not ${op === 'force' ? 'force the lock on' : 'write to'} ${s.console}: ${d.why}]` });
        return;
      }
    }
    if (op === 'spy') {
      if (s.mode === 'rw' && s.fence !== undefined) {
        await this.p.locks.release(s.console, s.id, s.fence);
        await this.audit(s.console, 'lock.release', s);
      }
      s.mode = 'spy';
      delete s.fence;
      await this.p.sessions.put(s);
      await this.sendClient(s.conn, { t: 'mode', mode: 'spy' });
      return;
    }
    const note = await this.takeLock(s, op === 'force');
    if (note) { await this.sendClient(s.conn, { t: 'notice', text: note }); return; }
    await this.sendClient(s.conn, { t: 'mode', mode: 'rw', fence: s.fence, writer: s.user });
  }

  /** Input is forwarded only from the lock holder with the current fence, and audited first. */
  private async input(s: Session, who: Principal, data: Buffer): Promise<void> {
    const rec = await this.p.consoles.get(s.console);
    // At a password prompt the audit keeps who typed how much, not what (also when refused).
    const redacted = this.opts.redactSecrets && rec?.secretPrompt ? `[redacted: ${data.length} bytes typed at a password prompt]` : undefined;
    const typed = (detail?: string) => (redacted ? { detail: detail ? `${detail} ${redacted}` : redacted } : { data, detail });
    const denied = await this.writeDenied(s, who, 'attach');
    if (denied) {
      await this.audit(s.console, 'input.denied', s, typed(denied));
      await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: input not sent: ${denied}]` });
      return;
    }
    if (!rec?.relayConn || rec.state === 'down') {
      const why = `console is down${rec?.reason ? ` (${rec.reason})` : ''}`;
      await this.audit(s.console, 'input.denied', s, typed(why));
      await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: input not sent: ${why}]` });
      return;
    }
    await this.audit(s.console, 'input', s, typed());
    if (await this.toRelay(s.console, rec.relayConn, { t: 'in', c: s.console, fence: s.fence!, session: s.id, d: data.toString('base64') })) return;
    // Audited above as typed; this says it never reached the relay.
    const lost = undeliverable(rec);
    await this.audit(s.console, 'input.undelivered', s, { detail: lost });
    await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: input not sent: ${lost}]` });
  }

  private async sendBreak(s: Session, who: Principal, seq: string): Promise<void> {
    const denied = await this.writeDenied(s, who, 'break');
    const rec = await this.p.consoles.get(s.console);
    const why = denied ?? (!rec?.relayConn || rec.state === 'down' ? 'console is down' : undefined);
    if (why) {
      await this.audit(s.console, 'break.denied', s, { detail: `break ${seq}: ${why}` });
      await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: break not sent: ${why}]` });
      return;
    }
    await this.audit(s.console, 'break', s, { detail: `break ${seq}` });
    if (await this.toRelay(s.console, rec!.relayConn!, { t: 'break', c: s.console, fence: s.fence!, session: s.id, seq })) return;
    const lost = undeliverable(rec!);
    await this.audit(s.console, 'break.undelivered', s, { detail: `break ${seq}: ${lost}` });
    await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: break not sent: ${lost}]` });
  }

  /** Why `s` may not write now, or undefined if it may. The access rules are asked again (from the
   *  cache), so taking a right away stops input within accessCacheMs. */
  private async writeDenied(s: Session, who: Principal, action: Action): Promise<string | undefined> {
    if (s.mode !== 'rw' || s.fence === undefined) return 'you are a spy (read-only): ^Eca takes the write lock if free, ^Ecf forces it';
    const d = await this.may(who, s.console, action);
    if (!d.allow) return `you may not ${action === 'break' ? 'send a break to' : 'write to'} ${s.console} any more: ${d.why}`;
    const lock = await this.p.locks.get(s.console);
    if (lock.session !== s.id || lock.fence !== s.fence) return `the write lock moved to ${lock.user ?? 'nobody'} (fence ${lock.fence})`;
    return undefined;
  }

  async clientClosed(conn: string): Promise<void> {
    for (const s of await this.p.sessions.byConn(conn)) {
      if (s.mode === 'rw' && s.fence !== undefined && (await this.p.locks.release(s.console, s.id, s.fence))) {
        await this.audit(s.console, 'lock.release', s);
      }
      await this.p.sessions.delete(s.id);
      await this.audit(s.console, 'session.detach', s);
      if (!(await this.p.sessions.byConsole(s.console)).length) await this.watch(s.console, false);
    }
  }

  /** In `watched` mode, before a replay up to now of a console nobody watches: asks its relay for
   *  the output it has not sealed yet (sent once, live) and waits until the stored end stops
   *  moving, so replay is current although nothing streams. Returns at once otherwise. */
  async catchUp(console: string): Promise<void> {
    if (this.opts.live !== 'watched') return;
    const rec = await this.p.consoles.get(console);
    if (!rec?.relayConn || (await this.p.sessions.byConsole(console)).length) return;
    let last = await this.log.end(console);
    if (!(await this.toRelay(console, rec.relayConn, { t: 'watch', c: console, on: true, once: true, from: last }))) return;
    const deadline = Date.now() + this.opts.catchUpMs;
    for (let still = 0; still < 3 && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 50));
      const end = await this.log.end(console);
      still = end === last ? still + 1 : 0;
      last = end;
    }
  }

  /** In `watched` mode, tells the console's relay that someone watches it (stream live output from
   *  the stored end on) or that nobody does any more. A relay ignores `on` for a console it
   *  already streams, so repeating it (every viewer ping) is how a lost `off`/`on` race heals. */
  private async watch(console: string, on: boolean, rec?: ConsoleRecord): Promise<void> {
    rec ??= await this.p.consoles.get(console);
    if (this.opts.live !== 'watched') {
      // Streaming everything anyway; only an ondemand console needs to know (it opens on `on`).
      if (rec?.ondemand && rec.relayConn) await this.toRelay(console, rec.relayConn, { t: 'watch', c: console, on });
      return;
    }
    if (!rec?.relayConn) return; // the relay's next hello carries who watches
    await this.toRelay(console, rec.relayConn, on ? { t: 'watch', c: console, on, from: await this.log.end(console) } : { t: 'watch', c: console, on });
  }

  private async sendHistory(conn: string, console: string, lines: number, kind: 'attach' | 'replay'): Promise<void> {
    const end = await this.log.end(console);
    let bytes = lines > 0 ? await this.log.tail(console, lines) : Buffer.alloc(0);
    if (bytes.length > this.opts.maxHistoryBytes) bytes = bytes.subarray(bytes.length - this.opts.maxHistoryBytes);
    await this.sendChunks(conn, bytes, kind, end);
  }

  private async sendChunks(conn: string, bytes: Buffer, kind: 'attach' | 'replay', end: number): Promise<void> {
    const parts = [...chunks(bytes)];
    for (let i = 0; i < parts.length - 1; i++) await this.sendClient(conn, { t: 'history', kind, d: parts[i].toString('base64'), last: false });
    await this.sendClient(conn, { t: 'history', kind, d: (parts.at(-1) ?? Buffer.alloc(0)).toString('base64'), last: true, end });
  }

  // ======================================================================================= queries

  async who(console: string): Promise<Viewer[]> {
    const lock = await this.p.locks.get(console);
    return (await this.p.sessions.byConsole(console)).map((s) => ({
      session: s.id, user: s.user, since: s.since, client: s.client,
      mode: s.mode === 'rw' && lock.session === s.id ? 'rw' as const : 'spy' as const,
    }));
  }

  /** The consoles `who` may list (every console when `who` is omitted: internal use). */
  async listConsoles(who?: Principal): Promise<ConsoleView[]> {
    const out: ConsoleView[] = [];
    for (const rec of await this.p.consoles.list()) if (!who || (await this.may(who, rec.name, 'list')).allow) out.push(await this.view(rec));
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** `cloudcons console down|up NAME`: tells the console's relay to close it until `up` (or to
   *  bring it up now, also ending a flap hold). Remembered, so a relay that restarts keeps it down. */
  async consoleCtl(who: Principal, name: string, op: 'down' | 'up'): Promise<ConsoleView> {
    const rec = await this.requireVisible(who, name, await this.p.consoles.get(name));
    await this.requireAccess(who, name, op);
    if (!rec.relayConn) throw new Conflict(`console ${name}: its relay ${rec.relay} is not connected, so it cannot be taken ${op} now`);
    const next: ConsoleRecord = { ...rec };
    if (op === 'down') next.adminDown = { by: who.name, at: this.now() }; else delete next.adminDown;
    await this.p.consoles.put(next);
    await this.audit(name, `console.${op}.request`, undefined, { user: who.name, detail: `${op} requested by ${who.name}` });
    if (!(await this.toRelay(name, rec.relayConn, { t: 'ctl', c: name, op, by: who.name }))) throw new Conflict(`console ${name}: its relay ${rec.relay} went away; try again`);
    return this.view(next);
  }

  async getConsole(who: Principal, name: string): Promise<ConsoleView> {
    return this.view(await this.requireVisible(who, name, await this.p.consoles.get(name)));
  }

  /** Console must be known (registered or with stored output) and `who` allowed `action` on it.
   *  A console `who` may not list is reported as unknown (its name is not given away). */
  async requireKnown(who: Principal, name: string, action: Action): Promise<void> {
    const known = !!(await this.p.consoles.get(name)) || (await this.log.consoles()).includes(name);
    await this.requireVisible(who, name, known);
    await this.requireAccess(who, name, action);
  }

  private async view(rec: ConsoleRecord): Promise<ConsoleView> {
    const viewers = await this.who(rec.name);
    const { relayConn: _hidden, ...pub } = rec;
    return { ...pub, writer: viewers.find((v) => v.mode === 'rw')?.user, spies: viewers.filter((v) => v.mode === 'spy').length, viewers };
  }

  /** NotFound unless the console `exists` and `who` may list it: one the user may not see reads
   *  as unknown, and its name is not given away. */
  private async requireVisible<T>(who: Principal, name: string, found: T | undefined | false): Promise<T> {
    if (found && (await this.may(who, name, 'list')).allow) return found;
    throw new NotFound(await this.unknownConsoleMessage(name, who));
  }

  private async unknownConsoleMessage(name: string, who: Principal): Promise<string> {
    const known: string[] = [];
    for (const c of await this.p.consoles.list()) if ((await this.may(who, c.name, 'list')).allow) known.push(c.name);
    known.sort();
    return `console ${name} not found; known: ${known.length ? known.join(', ') : '(none)'}`;
  }

  // ================================================================================ access rules

  private accessCache?: { at: number; doc?: AccessDoc; version: number };

  /** The access rules (undefined: none set, everyone rw), read at most every accessCacheMs. */
  async accessDoc(): Promise<{ doc?: AccessDoc; version: number }> {
    const c = this.accessCache;
    if (c && Date.now() - c.at < this.opts.accessCacheMs) return c;
    const r = await this.p.access.get();
    let doc: AccessDoc | undefined;
    // The store holds checked documents only; one that no longer parses (a hand-edited file)
    // allows nothing but admins rather than everything.
    try { doc = r.doc === undefined ? undefined : parseAccess(r.doc); } catch { doc = parseAccess({ default: 'none' }); }
    this.accessCache = { at: Date.now(), doc, version: r.version };
    return this.accessCache;
  }

  /** Replaces the access rules (admins only). `expect`: the version the change was made against
   *  (Conflict if someone changed them since); omitted: whatever is stored. */
  async setAccess(who: Principal, raw: unknown, expect?: number): Promise<{ version: number; doc: AccessDoc }> {
    await this.requireAdmin(who, 'change the access rules');
    let doc: AccessDoc;
    try { doc = parseAccess(raw); } catch (e) { throw new BadParameter(`access rules: ${(e as Error).message}`); }
    const cur = await this.p.access.get();
    if (expect !== undefined && expect !== cur.version) throw new Conflict(`the access rules changed meanwhile (version ${cur.version}, not ${expect}): read them again`);
    if (!(await this.p.access.put(raw, cur.version))) throw new Conflict('the access rules changed meanwhile: try again');
    this.accessCache = undefined;
    await this.audit(CLOUD_STREAM, 'access.change', undefined, { user: who.name, detail: `access rules version ${cur.version + 1}: ${doc.rules.length} rules, admins ${doc.admins.join(',') || '(none)'}, default ${doc.default}` });
    return { version: cur.version + 1, doc };
  }

  /** The decision on `action`, for the user `who` (admin tokens and admins may do everything). */
  async may(who: Principal, console: string, action: Action): Promise<Decision> {
    if (who.kind !== 'user') return { allow: false, why: 'relay tokens cannot use consoles' };
    return decide((await this.accessDoc()).doc, who, console, action);
  }

  /** Throws Forbidden (and audits the refusal on the console) unless `who` may `action` `console`. */
  async requireAccess(who: Principal, console: string, action: Action): Promise<void> {
    const d = await this.may(who, console, action);
    if (d.allow) return;
    await this.audit(console, 'access.denied', undefined, { user: who.name, detail: `${action}: ${d.why}` });
    throw new Forbidden(`user ${who.name} may not ${action} ${console}: ${d.why}`);
  }

  async isAdmin(who: Principal): Promise<boolean> {
    return who.kind === 'user' && isAdmin((await this.accessDoc()).doc, who);
  }

  async requireAdmin(who: Principal, what: string): Promise<void> {
    if (await this.isAdmin(who)) return;
    await this.audit(CLOUD_STREAM, 'access.denied', undefined, { user: who.name, detail: `${what}: not an admin` });
    throw new Forbidden(`user ${who.name} may not ${what}: only admins may (an admin token, or admins: in the access rules)`);
  }

  /** `cloudcons access check`: every action's decision for a user (with groups) on a console. */
  async checkAccess(who: Principal, subject: { name: string; groups?: string[]; admin?: boolean }, console: string) {
    if (subject.name !== who.name) await this.requireAdmin(who, `check the access of ${subject.name}`);
    const { doc, version } = await this.accessDoc();
    return { ...explain(doc, subject.name === who.name ? { name: who.name, groups: who.groups, admin: who.admin } : subject, console), version, rules: doc ? 'set' : 'none (every user may do everything)' };
  }

  /** On every tokenRecheckPings-th heartbeat: if the connection's token was revoked or expired
   *  since it signed in, says so, closes the connection and returns true. */
  private async tokenGone(conn: string, who: Principal, pingId: number): Promise<boolean> {
    if (pingId % this.opts.tokenRecheckPings !== 0) return false;
    const now = this.now();
    let why: string | undefined;
    if (who.expires !== undefined && now >= who.expires) why = `expired at ${new Date(who.expires).toISOString()}`;
    else if (who.via !== 'oidc') {
      const t = await this.p.tokens.info(who.tokenId);
      if (!t) why = 'no longer exists';
      else if (t.revoked) why = `was revoked at ${new Date(t.revoked.at).toISOString()} by ${t.revoked.by}`;
      else if (t.expires !== undefined && now >= t.expires) why = `expired at ${new Date(t.expires).toISOString()}`;
    }
    if (!why) return false;
    const message = `your token ${who.via === 'oidc' ? '(OpenID Connect)' : who.tokenId} ${why}: sign in again`;
    await this.auditCloud('auth.ended', who.kind === 'relay' ? `relay:${who.name}` : who.name, `connection ${conn} closed: token ${why}`);
    await this.p.sender.send(conn, encode({ t: 'error', code: 'CC_ERR_UNAUTHORIZED', message }));
    await this.p.sender.close(conn, 4001, message);
    return true;
  }

  /** Audits an event of a console that is not a session's (an export, ...). */
  async auditEvent(console: string, type: string, user: string, detail: string): Promise<void> {
    await this.audit(console, type, undefined, { user, detail });
  }

  private authFailures = { since: 0, count: 0, suppressed: 0 };

  /** A sign-in that failed (bad, expired or revoked token; wrong endpoint): audited, up to
   *  authFailureAuditsPerMin a minute. */
  async authFailed(where: string, why: string): Promise<void> {
    const w = this.authFailures;
    const now = this.now();
    if (now - w.since >= 60_000) {
      if (w.suppressed) await this.auditCloud('auth.failure', undefined, `${w.suppressed} more failed sign-ins in the minute from ${new Date(w.since).toISOString()} (not recorded one by one: authFailureAuditsPerMin ${this.opts.authFailureAuditsPerMin})`);
      this.authFailures = { since: now, count: 0, suppressed: 0 };
    }
    if (++this.authFailures.count > this.opts.authFailureAuditsPerMin) { this.authFailures.suppressed++; return; }
    // Both parts come from the request (its path, a token's claims): each keeps its share of the bound.
    const max = this.opts.auditTextMax;
    await this.auditCloud('auth.failure', undefined, `${cutText(where, Math.floor(max / 4))}: ${cutText(why, Math.floor(max / 2))}`);
  }

  /** Audits something that happened to the cloud rather than to a console (sign-ins, tokens). */
  async auditCloud(type: string, user: string | undefined, detail: string): Promise<void> {
    await this.appendAudit({ time: this.now(), console: CLOUD_STREAM, type, user, detail });
  }

  // ======================================================================================= helpers

  /** Every audit record the core writes goes through here: request-supplied text is bounded. */
  private appendAudit(rec: AuditRecord): Promise<void> {
    return this.p.audit.append(boundedRecord(rec, this.opts.auditTextMax));
  }

  /** Sends live output to every viewer of a console; `b64` is `data` already encoded, if at hand. */
  private async fanOut(console: string, offset: number, data: Buffer, b64?: string): Promise<void> {
    const sessions = await this.p.sessions.byConsole(console);
    if (!sessions.length) return;
    const frame = encode({ t: 'out', o: offset, d: b64 ?? data.toString('base64') });
    for (const s of sessions) {
      if (!(await this.p.sender.send(s.conn, frame, { live: { console, offset, bytes: data.length } }))) await this.clientClosed(s.conn);
    }
  }

  private async notice(console: string, text: string): Promise<void> {
    for (const s of await this.p.sessions.byConsole(console)) await this.sendClient(s.conn, { t: 'notice', text });
  }

  private async notifyOthers(s: Session, text: string): Promise<void> {
    for (const o of await this.p.sessions.byConsole(s.console)) if (o.id !== s.id) await this.sendClient(o.conn, { t: 'notice', text });
  }

  private async audit(console: string, type: string, s: Session | undefined, extra: { data?: Buffer; detail?: string; fence?: number; user?: string } = {}): Promise<void> {
    const rec: AuditRecord = { time: this.now(), console, type, user: s?.user ?? extra.user, session: s?.id, fence: extra.fence ?? s?.fence, detail: extra.detail };
    if (extra.data) rec.data = extra.data.toString('base64');
    // The cloud's own stream has no output to place its records in (nor a name a store takes for one).
    if (console !== CLOUD_STREAM) rec.offset = await this.log.end(console);
    await this.appendAudit(rec);
  }

  private async sessionOf(conn: string): Promise<Session | undefined> {
    return (await this.p.sessions.byConn(conn))[0];
  }

  async sendClient(conn: string, msg: Out<CloudToClient>): Promise<boolean> {
    return this.p.sender.send(conn, encode(msg));
  }

  async sendRelay(conn: string, msg: Out<CloudToRelay>): Promise<boolean> {
    return this.p.sender.send(conn, encode(msg));
  }

  /** Sends `msg` to the relay publishing `console` at `conn`, the connection the registry named a
   *  moment ago. A relay that re-dialled meanwhile (make-before-break: it closes the old connection
   *  once the new one is welcomed) is no longer there: then once more to the connection the
   *  registry names now. False if neither took it. */
  private async toRelay(console: string, conn: string, msg: Out<CloudToRelay>): Promise<boolean> {
    if (await this.sendRelay(conn, msg)) return true;
    const now = (await this.p.consoles.get(console))?.relayConn;
    return !!now && now !== conn && this.sendRelay(now, msg);
  }

  private now(): number { return this.p.clock.now(); }
}

function newId(): string { return randomBytes(9).toString('base64url'); }

/** Why a message for a console's relay went nowhere (its connection closed under it). */
function undeliverable(rec: ConsoleRecord): string {
  return `relay ${rec.relay} is not connected (it may be reconnecting); try again`;
}

/** The parts of a relay's console description the registry keeps. */
function described(info: ConsoleInfo): Pick<ConsoleRecord, 'name' | 'type' | 'resizable' | 'ondemand' | 'breaks' | 'defaultBreak'> {
  return { name: info.name, type: info.type, resizable: info.resizable, ondemand: info.ondemand, breaks: info.breaks, defaultBreak: info.defaultBreak };
}
