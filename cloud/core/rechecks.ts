// Re-checks on the server's clock (issue 14). A connection's token, its sessions' rights and a
// writer's lease are checked again by the server, never only when the client chooses to say
// something: at every input, break and resize (client-sessions.ts writeDenied), at every live
// message for the viewers of a console (live-output.ts: rights against rules at most
// tokenRecheckMs old, and expiry), at the client's heartbeat, every tokenRecheckMs
// (recheckConnection: a timer embedded, the next message on Lambda), when the access rules change
// (rulesStored, or a new version seen: recheckIfRulesChanged) and at once on revocation
// (tokenRevoked). What a failed check entails (a closed connection, an ended session, a spy) is
// lifecycle.ts's.
import type { AccessDoc } from './acl.ts';
import type { AccessRules } from './access-rules.ts';
import { expiredAt, iso, type CoreContext } from './core-context.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Principal, Session, TokenInfo } from './ports.ts';

export class Rechecks {
  private sweptVersion?: number;

  constructor(private readonly c: CoreContext, private readonly access: AccessRules, private readonly life: Lifecycle) {}

  /** Why `who`'s token no longer counts (revoked, expired, unknown), or undefined. One token
   *  lookup (none for an OpenID Connect ID token, whose expiry the principal carries). */
  async tokenGone(who: Principal, now = this.c.now()): Promise<string | undefined> {
    const expired = expiredAt(who, now);
    if (expired || who.via === 'oidc') return expired;
    const t = await this.c.p.tokens.info(who.tokenId);
    if (!t) return 'no longer exists';
    if (t.revoked) return `was revoked at ${iso(t.revoked.at)} by ${t.revoked.by}`;
    if (t.expires !== undefined && now >= t.expires) return `expired at ${iso(t.expires)}`;
    return undefined;
  }

  /** The periodic re-check of one open connection (every tokenRecheckMs): its token, then the
   *  rights and lease of its sessions. False if the connection was closed. */
  async recheckConnection(conn: string, who: Principal): Promise<boolean> {
    const gone = await this.tokenGone(who);
    if (gone) { await this.life.endConnection(conn, who, gone); return false; }
    if (who.kind !== 'user') return true;
    const { doc } = await this.access.rules();
    for (const s of await this.c.p.sessions.byConn(conn)) await this.recheckSession(s, doc);
    return true;
  }

  /** A token was revoked: every open connection signed in with it is closed now, where the ports
   *  can find them (ports.connections; without it at the next re-check). Returns how many. */
  async tokenRevoked(t: TokenInfo): Promise<number> {
    if (!this.c.p.connections || !t.revoked) return 0;
    const why = `was revoked at ${iso(t.revoked.at)} by ${t.revoked.by}`;
    let n = 0;
    // Principals carry names in normal form (protocol/principal.ts); a token stored before names
    // were checked may hold capitals.
    for (const c of await this.c.p.connections.of({ kind: t.kind, name: t.name.toLowerCase() })) {
      if (c.who.tokenId !== t.id) continue;
      await this.life.endConnection(c.conn, c.who, why);
      n++;
    }
    return n;
  }

  /** Every session against the access rules, if they changed since the last sweep (another
   *  process set them: seen once the cached rules are read again, within accessCacheMs). */
  async recheckIfRulesChanged(): Promise<void> {
    const { doc, version } = await this.access.rules();
    if (version === this.sweptVersion) return;
    this.sweptVersion = version;
    await this.recheckAllSessions(doc);
  }

  /** This process stored rules `version`: open sessions follow at once (whoever lost a right loses
   *  it now, not at their next message). The rules are stored: a failure here must not read as if
   *  they were not (the periodic re-check and every input still apply them). */
  async rulesStored(version: number, doc: AccessDoc): Promise<void> {
    this.sweptVersion = version;
    await this.recheckAllSessions(doc).catch((e: Error) => console.error(`access rules version ${version}: re-checking open sessions failed: ${e.message}`));
  }

  /** Consoles are looked at 16 at a time: on AWS each is a query, and an admin waits for this. */
  private async recheckAllSessions(doc: AccessDoc | undefined): Promise<void> {
    const names = (await this.c.p.consoles.list()).map((r) => r.name);
    const worker = async () => {
      for (let name = names.pop(); name !== undefined; name = names.pop()) {
        for (const s of await this.c.p.sessions.byConsole(name)) await this.recheckSession(s, doc);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }

  /** One session against the rules and its lease: ended if its user may no longer see the console,
   *  a writer who may no longer attach or whose lease lapsed becomes a spy. False if it ended. */
  private async recheckSession(s: Session, doc: AccessDoc | undefined): Promise<boolean> {
    if (!(await this.rightsHold(s, doc))) return false;
    if (s.mode === 'rw' && s.fence !== undefined) await this.life.lapseIfExpired(s);
    return true;
  }

  /** The client's heartbeat: its session's rights, then the writer's lease is renewed; a lease that
   *  lapsed meanwhile is not revived (a spy now). False if the session ended. */
  async heartbeat(s: Session): Promise<boolean> {
    const age = this.rulesAgeOnTheWay();
    if (!(await this.rightsHold(s, (this.access.cached(age) ?? await this.access.rules(age)).doc))) return false;
    if (s.mode !== 'rw' || s.fence === undefined) return true;
    if (!(await this.c.p.locks.renew(s.console, s.id, s.fence, this.c.opts.leaseMs, this.c.now()))) await this.life.lapseIfExpired(s);
    return true;
  }

  /** Whether `s` may still be attached as it is: a spy needs `spy`; a writer `attach` (else it
   *  becomes a spy, if it may spy). Ends the session otherwise; false then. */
  async rightsHold(s: Session, doc: AccessDoc | undefined): Promise<boolean> {
    const decisions = this.access.sessions;
    if (s.mode === 'rw' && s.fence !== undefined) {
      const w = decisions.decide(doc, s, 'attach');
      if (w.allow) return true;
      if (decisions.decide(doc, s, 'spy').allow) { await this.life.demote(s, w.why); return true; }
    }
    const d = decisions.decide(doc, s, 'spy');
    if (d.allow) return true;
    await this.life.endSession(s, `you may no longer see ${s.console}: ${d.why}`);
    return false;
  }

  /** How old the rules may be that live output and heartbeats are checked against: they run all
   *  the time (on AWS every read costs), and a change through the API has swept the sessions
   *  already, so reading them again every tokenRecheckMs is enough (input, breaks and resizes
   *  keep accessCacheMs). */
  rulesAgeOnTheWay(): number { return Math.max(this.c.opts.accessCacheMs, this.c.opts.tokenRecheckMs); }
}
