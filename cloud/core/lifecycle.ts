// How sessions and connections end or change standing, whoever notices it (a client, a relay, a
// re-check, an admin): a connection closes or the cloud closes it, a session ends, a writer becomes
// a spy (demoted, its lease lapsed, bumped), a console goes up or down for its viewers, and its
// relay is told whether anyone still watches it. Each of these happens one way, here.
import { encode } from '../../protocol/codec.ts';
import { principalLabel } from '../../protocol/principal.ts';
import { iso, type CoreContext } from './core-context.ts';
import type { ConsoleRecord, LapsedHolder, Lock, Principal, Session } from './ports.ts';

export class Lifecycle {
  /** Connections and sessions being ended by this process: a second check meanwhile (a live
   *  message, the sweep) does not end them twice. */
  private readonly endingConns = new Set<string>();
  private readonly endingSessions = new Set<string>();

  constructor(private readonly c: CoreContext) {}

  /** The connection is gone (closed, or ended by the cloud: `why`): its sessions end, a writer's
   *  lock is released. Repeating it is harmless. */
  async clientClosed(conn: string, why?: string): Promise<void> {
    const { p } = this.c;
    for (const s of await p.sessions.byConn(conn)) {
      if (s.mode === 'rw' && s.fence !== undefined && (await p.locks.release(s.console, s.id, s.fence))) {
        await this.c.audit(s.console, 'lock.release', s);
      }
      await p.sessions.delete(s.id);
      await this.c.audit(s.console, why ? 'session.ended' : 'session.detach', s, why ? { detail: why } : {});
      if (!(await p.sessions.byConsole(s.console)).length) await this.watch(s.console, false);
    }
  }

  /** `relay`: whose connection it was, where the caller knows (what it had held back of its audit
   *  is recorded now, also when it published nothing). */
  async relayClosed(conn: string, relay?: string): Promise<void> {
    const dropped = await this.c.p.consoles.dropRelayConn(conn, 'relay disconnected', this.c.now());
    for (const rec of dropped) await this.consoleStateChanged(rec.name, 'down', `relay ${rec.relay} disconnected`, rec.relay);
    for (const r of new Set([...dropped.map((x) => x.relay), ...(relay ? [relay] : [])])) {
      await this.c.p.relays.disconnected(r, conn, this.c.now());
      await this.c.relayAudits.flush(r);
    }
  }

  /** `relay`: the relay whose message or connection caused it (its audit is rationed). */
  async consoleStateChanged(name: string, state: 'up' | 'down', reason?: string, relay?: string): Promise<void> {
    if (!relay || await this.c.relayAudits.admit(relay, `console.${state}`)) {
      await this.c.appendAudit({ time: this.c.now(), console: name, type: `console.${state}`, detail: reason, offset: await this.c.log.end(name) });
    }
    for (const s of await this.c.p.sessions.byConsole(name)) await this.c.sendClient(s.conn, { t: 'state', state, reason });
  }

  /** In `watched` mode, tells the console's relay that someone watches it (stream live output from
   *  the stored end on) or that nobody does any more. A relay ignores `on` for a console it
   *  already streams, so repeating it (every 6th viewer ping) is how a lost `off`/`on` race heals. */
  async watch(console: string, on: boolean, rec?: ConsoleRecord): Promise<void> {
    rec ??= await this.c.p.consoles.get(console);
    if (this.c.opts.live !== 'watched') {
      // Streaming everything anyway; only an ondemand console needs to know (it opens on `on`).
      if (rec?.ondemand && rec.relayConn) await this.c.toRelay(console, rec.relayConn, { t: 'watch', c: console, on });
      return;
    }
    if (!rec?.relayConn) return; // the relay's next hello carries who watches
    await this.c.toRelay(console, rec.relayConn, on ? { t: 'watch', c: console, on, from: await this.c.log.end(console) } : { t: 'watch', c: console, on });
  }

  /** Closes a connection whose token stopped counting (`why`): audited (`auth.ended`), told, closed
   *  with 4001; its sessions end now, not when the close lands (no more output or input). */
  async endConnection(conn: string, who: Principal, why: string): Promise<void> {
    if (this.endingConns.has(conn)) return;
    this.endingConns.add(conn);
    try {
      const message = `your token ${who.via === 'oidc' ? '(OpenID Connect)' : who.tokenId} ${why}: sign in again`;
      await this.c.auditCloud('auth.ended', principalLabel(who), `connection ${conn} closed: token ${why}`);
      await this.c.p.sender.send(conn, encode({ t: 'error', code: 'CC_ERR_UNAUTHORIZED', message }));
      await this.c.p.sender.close(conn, 4001, message);
      if (who.kind === 'relay') await this.relayClosed(conn, who.name);
      else await this.clientClosed(conn, `token ${why}`);
    } finally { this.endingConns.delete(conn); }
  }

  /** Ends a session whose user may no longer see its console: its live output stops now, a
   *  writer's lock is released, audited (`session.ended`), told, and its connection closed (4003). */
  async endSession(s: Session, why: string): Promise<void> {
    const { p } = this.c;
    if (this.endingSessions.has(s.id) || !(await p.sessions.get(s.id))) return; // ended already
    this.endingSessions.add(s.id);
    try {
      const released = s.mode === 'rw' && s.fence !== undefined && (await p.locks.release(s.console, s.id, s.fence));
      await p.sessions.delete(s.id);
      await this.c.audit(s.console, 'session.ended', s, { detail: `${why}${released ? ' (write lock released)' : ''}` });
      const message = `your session on ${s.console} ended: ${why}`;
      await this.c.sendClient(s.conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message });
      await p.sender.close(s.conn, 4003, message);
      if (!(await p.sessions.byConsole(s.console)).length) await this.watch(s.console, false);
    } finally { this.endingSessions.delete(s.id); }
  }

  /** A writer who may no longer attach becomes a spy: lock released (`lock.revoked`), told. */
  async demote(s: Session, why: string): Promise<void> {
    if (s.fence !== undefined && (await this.c.p.locks.release(s.console, s.id, s.fence))) {
      await this.c.audit(s.console, 'lock.revoked', s, { detail: `may no longer attach: ${why}` });
    }
    await this.toSpy(s, { notice: `[cloudcons: you may no longer write to ${s.console} (${why}); you are a spy now]` });
  }

  /** The writer `s` did not renew its lease (no heartbeat for leaseMs) and nobody took the lock:
   *  released and audited once (`lock.expired`: only the release that ends it succeeds; a take of
   *  the lapsed lock audits it instead, lapsedTaken), `s` is a spy now and told. Returns why. */
  async leaseLapsed(s: Session, lock: Lock): Promise<string> {
    const at = this.lapsedAt(lock.expiresAt);
    if (await this.c.p.locks.release(s.console, s.id, lock.fence)) await this.c.audit(s.console, 'lock.expired', s, { detail: `lease lapsed at ${at}` });
    const why = `your write lock lapsed at ${at}: ^Eca takes it again if it is free`;
    await this.toSpy(s, { notice: `[cloudcons: ${why}]` });
    return why;
  }

  /** The writer `s` still holds the lock with its fence but past its lease: it lapses (leaseLapsed). */
  async lapseIfExpired(s: Session): Promise<void> {
    const lock = await this.c.p.locks.get(s.console);
    if (lock.session === s.id && lock.fence === s.fence && lock.expiresAt <= this.c.now()) await this.leaseLapsed(s, lock);
  }

  /** `s` took a lock whose holder's lease had lapsed: `lock.expired` for that holder, who is told
   *  (a spy now), like a bump but saying why. */
  async lapsedTaken(s: Session, l: LapsedHolder): Promise<void> {
    const at = this.lapsedAt(l.expiresAt);
    const old = l.session === s.id ? undefined : await this.c.p.sessions.get(l.session);
    await this.c.audit(s.console, 'lock.expired', old, { user: l.user, session: l.session, fence: l.fence, detail: `lease lapsed at ${at}; taken by ${s.user}` });
    if (old) await this.toSpy(old, { writer: s.user, notice: `[cloudcons: your write lock lapsed at ${at} and ${s.user} took it; you are a spy now]` });
  }

  /** `s` is a spy now (in the store too) and told so: who writes instead (`writer`), who forced
   *  the lock (`bumpedBy`), and why in a `notice` where there is more to say. */
  async toSpy(s: Session, tell: { writer?: string; bumpedBy?: string; notice?: string } = {}): Promise<void> {
    s.mode = 'spy';
    delete s.fence;
    await this.c.p.sessions.put(s);
    await this.c.sendClient(s.conn, { t: 'mode', mode: 'spy', ...(tell.bumpedBy ? { bumpedBy: tell.bumpedBy } : {}), ...(tell.writer ? { writer: tell.writer } : {}) });
    if (tell.notice) await this.c.sendClient(s.conn, { t: 'notice', text: tell.notice });
  }

  /** "<time> (no heartbeat for N s)": when and why a lease lapsed. */
  private lapsedAt(at: number): string { return `${iso(at)} (no heartbeat for ${this.c.opts.leaseMs / 1000} s)`; }
}
