// The client side of the cloud: what a CLI or browser session says (attach, lock, input, break,
// resize, who, replay, its heartbeat). Input reaches a device only from the session that holds the
// console's write lock with the current fence, checked when the message is handled (token, rights,
// lock, lease), and is audited before it is forwarded; a refusal is audited too.
import { Conflict, Forbidden, RateLimited } from '../../protocol/errors.ts';
import type { ClientToCloud } from '../../protocol/messages.ts';
import { redactedNote } from '../../protocol/secret-prompt.ts';
import { ACTIONS, decide, type AccessDoc, type Action, type Decision } from './acl.ts';
import type { AccessRules } from './access-rules.ts';
import { viewersOf } from './console-admin.ts';
import { newId, type CoreContext } from './core-context.ts';
import type { History } from './history.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { ConsoleRecord, Principal, Session } from './ports.ts';
import type { Rechecks } from './rechecks.ts';

export class ClientSessions {
  constructor(private readonly c: CoreContext, private readonly access: AccessRules, private readonly rechecks: Rechecks,
    private readonly life: Lifecycle, private readonly history: History) {}

  async clientMessage(conn: string, who: Principal, msg: ClientToCloud): Promise<void> {
    if (who.kind !== 'user') throw new Forbidden('relay tokens cannot attach to consoles');
    // What takes a lock or shows stored output asks the token too (input does in writeDenied): a
    // connection whose close is still on its way gets nothing more with a revoked token.
    if (msg.t === 'attach' || msg.t === 'lock' || msg.t === 'replay') {
      const gone = await this.rechecks.tokenGone(who);
      if (gone) { await this.life.endConnection(conn, who, gone); return; }
    }
    if (msg.t === 'attach') return this.attach(conn, who, msg);
    if (msg.t === 'ping') {
      const s = await this.sessionOf(conn);
      if (s && !(await this.rechecks.heartbeat(s))) return;
      await this.c.sendClient(conn, { t: 'pong', id: msg.id });
      // Every 6th heartbeat (ids count up per connection; a minute at the CLI's 10 s): heals an
      // `off` that overtook a later `on`, at a sixth of the messages.
      if (s && msg.id % 6 === 0) await this.life.watch(s.console, true);
      return;
    }
    if (msg.t === 'pong') return;
    const s = await this.sessionOf(conn);
    if (!s) { await this.c.sendClient(conn, { t: 'error', code: 'CC_ERR_BAD_PARAMETER', message: `send attach before ${msg.t}` }); return; }
    switch (msg.t) {
      case 'in': return this.input(s, who, msg.d);
      case 'lock': return this.lockOp(s, who, msg.op);
      case 'break': return this.sendBreak(s, who, msg.seq);
      case 'resize': return this.resize(s, who, msg.cols, msg.rows);
      // Rights are asked when the message is handled, not only at attach: they may have changed since.
      case 'who':
        await this.access.requireAccess(who, s.console, 'list');
        await this.c.sendClient(conn, { t: 'who', viewers: await viewersOf(this.c, s.console) });
        return;
      case 'replay':
        await this.access.requireAccess(who, s.console, 'replay');
        return this.history.sendHistory(s.conn, who, s.console, msg.lines, 'replay');
    }
  }

  private async attach(conn: string, who: Principal, msg: Extract<ClientToCloud, { t: 'attach' }>): Promise<void> {
    if ((await this.c.p.sessions.byConn(conn)).length) throw new Conflict('this connection is already attached; open another one');
    const rec = await this.access.requireVisible(who, msg.c, () => this.c.p.consoles.get(msg.c));
    // A user without write access joins as spy (as a conserver `ro` user does); without spy, not at all.
    let mode = msg.mode;
    let downgraded: string | undefined;
    if (mode !== 'spy') {
      const d = await this.access.may(who, msg.c, mode === 'force' ? 'force' : 'attach');
      if (!d.allow) { downgraded = `[cloudcons: you may not ${mode === 'force' ? 'force the lock on' : 'write to'} ${msg.c} (${d.why}); you are a spy]`; mode = 'spy'; }
    }
    if (mode === 'spy') await this.access.requireAccess(who, msg.c, 'spy'); // a writer sees what it writes to
    const attached = (await this.c.p.sessions.byConsole(msg.c)).length;
    if (attached >= this.c.opts.maxSessionsPerConsole) {
      await this.c.userAudit(who.name, msg.c, 'session.refused', undefined, { detail: `${attached} sessions already (maxSessionsPerConsole)` });
      throw new RateLimited(`console ${msg.c} has ${attached} sessions, its limit (maxSessionsPerConsole ${this.c.opts.maxSessionsPerConsole}): try again later`);
    }
    const s: Session = { id: newId(), console: msg.c, user: who.name, mode: 'spy', since: this.c.now(), conn, client: msg.client, who };
    await this.c.p.sessions.put(s);
    await this.life.watch(msg.c, true, rec);
    await this.c.audit(msg.c, 'session.attach', s, { detail: `requested ${msg.mode}${msg.client ? ` from ${msg.client}` : ''}` });
    let note = downgraded;
    if (mode !== 'spy') note = await this.takeLock(s, mode === 'force');
    const lock = await this.c.p.locks.get(msg.c);
    const writer = lock.session && lock.expiresAt > this.c.now() ? lock.user : undefined;
    const rights: string[] = [];
    for (const a of ACTIONS) if ((await this.access.may(who, msg.c, a)).allow) rights.push(a);
    await this.c.sendClient(conn, { t: 'attached', c: msg.c, session: s.id, user: s.user, mode: s.mode, fence: s.fence, writer, state: rec.state, type: rec.type, ...(rec.breaks ? { breaks: rec.breaks, defaultBreak: rec.defaultBreak } : {}), rights });
    if (note) await this.c.sendClient(conn, { t: 'notice', text: note });
    if (rec.state === 'down') await this.c.sendClient(conn, { t: 'state', state: 'down', reason: rec.reason });
    if (s.mode === 'rw' && msg.cols && msg.rows && rec.resizable && rec.relayConn) {
      await this.c.toRelay(s.console, rec.relayConn, { t: 'resize', c: s.console, fence: s.fence!, session: s.id, cols: msg.cols, rows: msg.rows });
    }
    if (msg.from !== undefined) await this.history.sendSince(conn, who, msg.c, msg.from);
    else await this.history.sendHistory(conn, who, msg.c, msg.tail ?? 0, 'attach');
  }

  /** Tries to make `s` the writer. Updates `s` in place and in the store; returns a notice when
   *  the lock could not be taken. */
  private async takeLock(s: Session, force: boolean): Promise<string | undefined> {
    const r = await this.c.p.locks.acquire(s.console, { session: s.id, user: s.user }, { force, leaseMs: this.c.opts.leaseMs, now: this.c.now() });
    if (!r.ok) {
      await this.c.userAudit(s.user, s.console, 'lock.refused', s, { detail: `held by ${r.lock.user}` });
      return `[console is in use by ${r.lock.user}; you are a spy (read-only). Force with -f or ^Ecf]`;
    }
    const wasRw = s.mode === 'rw' && s.fence === r.lock.fence;
    s.mode = 'rw';
    s.fence = r.lock.fence;
    await this.c.p.sessions.put(s);
    const rec = await this.c.keepFence(s.console, r.lock.fence);
    if (rec?.relayConn) await this.c.toRelay(s.console, rec.relayConn, { t: 'fence', c: s.console, fence: r.lock.fence });
    if (r.lapsed) await this.life.lapsedTaken(s, r.lapsed);
    if (r.bumped && r.bumped.session !== s.id) {
      await this.c.audit(s.console, 'lock.force', s, { detail: `bumped ${r.bumped.user} (session ${r.bumped.session})` });
      const old = await this.c.p.sessions.get(r.bumped.session);
      if (old) {
        await this.life.toSpy(old, { bumpedBy: s.user, writer: s.user });
        await this.c.audit(s.console, 'lock.bumped', old, { detail: `by ${s.user}` });
      }
    } else if (!wasRw) {
      await this.c.audit(s.console, 'lock.take', s);
    }
    await this.c.notice(s.console, `[${s.user} is now the writer]`, s.id);
    return undefined;
  }

  private async lockOp(s: Session, who: Principal, op: 'take' | 'force' | 'spy'): Promise<void> {
    if (op !== 'spy') {
      const d = await this.access.may(who, s.console, op === 'force' ? 'force' : 'attach');
      if (!d.allow) {
        await this.c.userAudit(s.user, s.console, 'lock.denied', s, { detail: `${op}: ${d.why}` });
        await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: you may not ${op === 'force' ? 'force the lock on' : 'write to'} ${s.console}: ${d.why}]` });
        return;
      }
    }
    if (op === 'spy') {
      if (s.mode === 'rw' && s.fence !== undefined && (await this.c.p.locks.release(s.console, s.id, s.fence))) {
        await this.c.audit(s.console, 'lock.release', s);
      }
      await this.life.toSpy(s);
      return;
    }
    const note = await this.takeLock(s, op === 'force');
    if (note) { await this.c.sendClient(s.conn, { t: 'notice', text: note }); return; }
    await this.c.sendClient(s.conn, { t: 'mode', mode: 'rw', fence: s.fence, writer: s.user });
  }

  /** Input is forwarded only from the lock holder with the current fence, and audited first. `d`:
   *  the bytes in base64 as the message brought them (the codec took only canonical base64):
   *  audited and forwarded as they are, never decoded. */
  private async input(s: Session, who: Principal, d: string): Promise<void> {
    // What input is decided on is read at once (this is the echo path): the console, the writer's
    // standing, and the output's end, where the audit record goes.
    const [rec, denied, offset] = await Promise.all([this.c.p.consoles.get(s.console), this.writeDenied(s, who, 'attach'), this.c.log.end(s.console)]);
    // At a password prompt the audit keeps who typed how much, not what (also when refused).
    const redacted = this.c.opts.redactSecrets && rec?.secretPrompt ? redactedNote(Buffer.byteLength(d, 'base64')) : undefined;
    const typed = (detail?: string) => (redacted ? { offset, detail: detail ? `${detail} ${redacted}` : redacted } : { offset, data: d, detail });
    if (denied) {
      await this.c.userAudit(s.user, s.console, 'input.denied', s, typed(denied));
      await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: input not sent: ${denied}]` });
      return;
    }
    if (!rec?.relayConn || rec.state === 'down') {
      const why = `console is down${rec?.reason ? ` (${rec.reason})` : ''}`;
      await this.c.userAudit(s.user, s.console, 'input.denied', s, typed(why));
      await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: input not sent: ${why}]` });
      return;
    }
    await this.c.audit(s.console, 'input', s, typed());
    if (await this.c.toRelay(s.console, rec.relayConn, { t: 'in', c: s.console, fence: s.fence!, session: s.id, d })) return;
    // Audited above as typed; this says it never reached the relay.
    const lost = undeliverable(rec);
    await this.c.audit(s.console, 'input.undelivered', s, { detail: lost });
    await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: input not sent: ${lost}]` });
  }

  /** Resizing changes what the device sees: the same rights, lock and lease as input. */
  private async resize(s: Session, who: Principal, cols: number, rows: number): Promise<void> {
    if (s.mode !== 'rw') return; // the writer's window decides the size
    const [rec, denied] = await Promise.all([this.c.p.consoles.get(s.console), this.writeDenied(s, who, 'attach')]);
    if (denied) {
      await this.c.userAudit(s.user, s.console, 'resize.denied', s, { detail: `${cols}x${rows}: ${denied}` });
      await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: resize not sent: ${denied}]` });
      return;
    }
    if (rec?.relayConn && rec.resizable && s.fence !== undefined) await this.c.toRelay(s.console, rec.relayConn, { t: 'resize', c: s.console, fence: s.fence, session: s.id, cols, rows });
  }

  private async sendBreak(s: Session, who: Principal, seq: string): Promise<void> {
    const [denied, rec] = await Promise.all([this.writeDenied(s, who, 'break'), this.c.p.consoles.get(s.console)]);
    const why = denied ?? (!rec?.relayConn || rec.state === 'down' ? 'console is down' : undefined);
    if (why) {
      await this.c.userAudit(s.user, s.console, 'break.denied', s, { detail: `break ${seq}: ${why}` });
      await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: break not sent: ${why}]` });
      return;
    }
    await this.c.audit(s.console, 'break', s, { detail: `break ${seq}` });
    if (await this.c.toRelay(s.console, rec!.relayConn!, { t: 'break', c: s.console, fence: s.fence!, session: s.id, seq })) return;
    const lost = undeliverable(rec!);
    await this.c.audit(s.console, 'break.undelivered', s, { detail: `break ${seq}: ${lost}` });
    await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: break not sent: ${lost}]` });
  }

  /** Why `s` may not write now, or undefined if it may. Asked at every input, break and resize,
   *  all at once: the token (revoked or expired: the connection is closed), the access rules (from
   *  the cache, so taking a right away stops input within accessCacheMs; a writer who may no longer
   *  attach becomes a spy), and the lock (moved, or its lease lapsed: a spy). */
  private async writeDenied(s: Session, who: Principal, action: Action): Promise<string | undefined> {
    if (s.mode !== 'rw' || s.fence === undefined) return 'you are a spy (read-only): ^Eca takes the write lock if free, ^Ecf forces it';
    const now = this.c.now();
    const [gone, lock, { doc }] = await Promise.all([this.rechecks.tokenGone(who, now), this.c.p.locks.get(s.console), this.access.cached() ?? this.access.rules()]);
    if (gone) {
      await this.life.endConnection(s.conn, who, gone);
      return `your token ${gone}`;
    }
    const d = this.writerMay(doc, s, who, action);
    if (!d.allow) {
      const why = `you may not ${action === 'break' ? 'send a break to' : 'write to'} ${s.console} any more: ${d.why}`;
      const w = action === 'attach' ? d : this.writerMay(doc, s, who, 'attach');
      if (!w.allow) await this.life.demote(s, w.why);
      return why;
    }
    if (lock.session !== s.id || lock.fence !== s.fence) return `the write lock moved to ${lock.user ?? 'nobody'} (fence ${lock.fence})`;
    if (lock.expiresAt <= now) return this.life.leaseLapsed(s, lock);
    return undefined;
  }

  /** The rules' decision on `action` for the writer `s`, remembered per rules document and session
   *  (session-rights.ts). Its principal is the connection's (`who`, stored at attach); a session
   *  stored before sessions carried it is decided for `who`, as it always was. */
  private writerMay(doc: AccessDoc | undefined, s: Session, who: Principal, action: Action): Decision {
    return s.who ? this.access.sessions.decide(doc, s, action) : decide(doc, who, s.console, action);
  }

  private async sessionOf(conn: string): Promise<Session | undefined> {
    return (await this.c.p.sessions.byConn(conn))[0];
  }
}

/** Why a message for a console's relay went nowhere (its connection closed under it). */
function undeliverable(rec: ConsoleRecord): string {
  return `relay ${rec.relay} is not connected (it may be reconnecting); try again`;
}
