// What every part of the cloud core shares (core.ts builds one and hands it to each part): the
// ports, the options, the output log, the per-process budgets, and the two things every part does
// the same way: audit (text bounded, records placed in the output, relay-caused and sign-in
// failure records rationed) and send (to a client, to a console's relay, to a console's viewers).
// Nothing is decided here.
import { randomBytes } from 'node:crypto';
import { encode } from '../../protocol/codec.ts';
import { CLOUD_STREAM } from '../../protocol/names.ts';
import type { CloudToClient, CloudToRelay, Out } from '../../protocol/messages.ts';
import { principalLabel } from '../../protocol/principal.ts';
import { boundedRecord, cutText } from './audit-text.ts';
import type { CoreOptions } from './core-options.ts';
import { LogStore, type LogStoreOptions } from './log-store.ts';
import type { AuditRecord, CloudPorts, ConsoleRecord, Principal, Session } from './ports.ts';
import { AuditRation } from './audit-ration.ts';
import { QuerySlots } from './slots.ts';

/** What an audit record carries besides its console, type and session: `data`, input bytes in
 *  base64; `offset`, the console's output end if the caller has just read it (else it is read). */
export type AuditExtra = { data?: string; detail?: string; fence?: number; user?: string; session?: string; offset?: number };

export class CoreContext {
  /** Every console's output: sealed segments + hot tail. */
  readonly log: LogStore;
  /** Replay, export, grep and history work running in this process (slots.ts). */
  readonly queries: QuerySlots;
  /** The ration of audit records each relay, and each user, may cause (audit-ration.ts). */
  readonly relayAudits: AuditRation;
  readonly userAudits: AuditRation;
  private authFailures = { since: 0, count: 0, suppressed: 0 };

  constructor(readonly p: CloudPorts, readonly opts: CoreOptions, logOpts: Partial<LogStoreOptions> = {}) {
    this.log = new LogStore(p.segments, p.hot, logOpts);
    this.queries = new QuerySlots(opts.maxQueriesPerUser, opts.maxQueries);
    this.relayAudits = new AuditRation('relay', { perMin: opts.relayAuditsPerMin, burst: opts.relayAuditBurst }, () => this.now(),
      (relay, type, detail) => this.auditCloud(type, principalLabel({ kind: 'relay', name: relay }), detail));
    this.userAudits = new AuditRation('user', { perMin: opts.userAuditsPerMin, burst: opts.userAuditBurst }, () => this.now(),
      (user, type, detail) => this.auditCloud(type, user, detail));
  }

  now(): number { return this.p.clock.now(); }

  // ========================================================================================= audit

  /** Audits an event of `console` (its session's, if `s`), placed at the console's output end. */
  async audit(console: string, type: string, s: Session | undefined, extra: AuditExtra = {}): Promise<void> {
    const rec: AuditRecord = { time: this.now(), console, type, user: s?.user ?? extra.user, session: s?.id ?? extra.session, fence: extra.fence ?? s?.fence, detail: extra.detail };
    if (extra.data) rec.data = extra.data;
    // The cloud's own stream has no output to place its records in (nor a name a store takes for one).
    if (console !== CLOUD_STREAM) rec.offset = extra.offset ?? await this.log.end(console);
    await this.appendAudit(rec);
  }

  /** Every audit record the core writes goes through here: request-supplied text is bounded. */
  appendAudit(rec: AuditRecord): Promise<void> {
    return this.p.audit.append(boundedRecord(rec, this.opts.auditTextMax));
  }

  /** Audits something that happened to the cloud rather than to a console (sign-ins, tokens). */
  async auditCloud(type: string, user: string | undefined, detail: string): Promise<void> {
    await this.appendAudit({ time: this.now(), console: CLOUD_STREAM, type, user, detail });
  }

  /** Audits something relay `relay` caused, within its ration (relayAuditsPerMin, relayAuditBurst),
   *  as the relay's (`relay:edge1`) unless it is about session `s` (then the session's user's). */
  async relayAudit(relay: Principal, console: string, type: string, extra: AuditExtra = {}, s?: Session): Promise<void> {
    if (await this.relayAudits.admit(relay.name, type)) await this.audit(console, type, s, { user: principalLabel(relay), ...extra });
  }

  /** Audits a refusal of what user `who` asked (or a sign-in), within their ration
   *  (userAuditsPerMin, userAuditBurst): a user who hammers at what they may not do cannot flood
   *  the audit. `console` CLOUD_STREAM: the cloud's own stream. */
  async userAudit(who: string, console: string, type: string, s?: Session, extra: AuditExtra = {}): Promise<void> {
    if (await this.userAudits.admit(who, type)) await this.audit(console, type, s, { user: who, ...extra });
  }

  /** Writes what the rations held back a minute or more ago (a flood that stopped). */
  async flushAuditRations(): Promise<void> {
    await this.relayAudits.flushDue();
    await this.userAudits.flushDue();
  }

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

  // ========================================================================================== send

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
  async toRelay(console: string, conn: string, msg: Out<CloudToRelay>): Promise<boolean> {
    if (await this.sendRelay(conn, msg)) return true;
    const now = (await this.p.consoles.get(console))?.relayConn;
    return !!now && now !== conn && this.sendRelay(now, msg);
  }

  /** A notice to every session of `console` (but session `except`). */
  async notice(console: string, text: string, except?: string): Promise<void> {
    for (const s of await this.p.sessions.byConsole(console)) if (s.id !== except) await this.sendClient(s.conn, { t: 'notice', text });
  }

  /** Notes a fence handed out in the console's record as well: the embedded cloud's locks live in
   *  memory, and a relay's claim after a restart is checked against this (relay-side.ts
   *  fenceClaim). Returns the record as read. */
  async keepFence(console: string, fence: number): Promise<ConsoleRecord | undefined> {
    const rec = await this.p.consoles.get(console);
    if (rec && fence > (rec.fence ?? 0)) await this.p.consoles.putIf({ ...rec, fence }, rec.relay);
    return rec;
  }
}

export function newId(): string { return randomBytes(9).toString('base64url'); }

export const iso = (t: number) => new Date(t).toISOString();

/** "expired at <time>" once the principal's token (or ID token) has expired, else undefined. */
export function expiredAt(who: Principal, now: number): string | undefined {
  return who.expires !== undefined && now >= who.expires ? `expired at ${iso(who.expires)}` : undefined;
}

/** The first few of a list of names, and how many more (a refusal must fit in a frame). */
export function someOf(items: string[], n = 20): string {
  return items.length > n ? `${items.slice(0, n).join(', ')} and ${items.length - n} more` : items.join(', ');
}
