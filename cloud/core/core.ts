// The cloud core: sessions, the write lock, fan-out of live output, ingest and audit.
// Stateless between calls: every fact lives behind a port (ports.ts), so this class runs the same
// in the embedded server and in Lambda. Callers must hand it the messages of one connection in
// order (one at a time per connection); different connections may interleave.
//
// CloudCore is what the entry points (cloud/server, cloud/lambda) and the HTTP app call; the work
// is done by its parts, each a class over one shared CoreContext (core-context.ts: ports, options,
// log, audit and send):
//   relay-side.ts       a relay's messages (hello, state, output, refusals, events) and uploads
//   client-sessions.ts  a user's session messages (attach, lock, input, break, resize, replay)
//   live-output.ts      fan-out of new output to the viewers, the password-prompt tracker
//   history.ts          history over a session (attach, re-attach, replay), replay catch-up
//   rechecks.ts         tokens, rights and leases checked again on the server's clock
//   console-admin.ts    who, the console list, down/up, rm and move
//   relay-list.ts       the relay list (cloudcons relays)
//   local-access.ts     SSH keys, relay-local, the relays' local-access snapshots
//   lifecycle.ts        how sessions and connections end or change standing
//   access-rules.ts     the rules as applied: cached document, decisions, refusals, visibility
// Each part uses only parts listed below it (no import cycles).
import type { ClientToCloud, CloudToClient, CloudToRelay, Out, RelayToCloud, Viewer } from '../../protocol/messages.ts';
import type { AccessDoc, Action, Decision } from './acl.ts';
import { AccessRules, type Rules } from './access-rules.ts';
import { ClientSessions } from './client-sessions.ts';
import { ConsoleAdmin, type ConsoleView } from './console-admin.ts';
import { CoreContext } from './core-context.ts';
import { CORE_DEFAULTS, type CoreOptions } from './core-options.ts';
import { History } from './history.ts';
import { Lifecycle } from './lifecycle.ts';
import { LiveOutput } from './live-output.ts';
import { LocalAccess, type KeyList } from './local-access.ts';
import type { LogStore, LogStoreOptions } from './log-store.ts';
import type { CloudPorts, Principal, RelayRecord, SshKeyRecord, TokenInfo } from './ports.ts';
import { principalLabel } from '../../protocol/principal.ts';
import { Rechecks } from './rechecks.ts';
import { RelayList, type RelayView } from './relay-list.ts';
import { RelaySide, type SegmentStored } from './relay-side.ts';
import type { QuerySlots } from './slots.ts';

export { CORE_DEFAULTS, TOKEN_RECHECK_MAX_MS, type CoreOptions } from './core-options.ts';
export { CLOUD_STREAM } from '../../protocol/names.ts';
export type { ConsoleView } from './console-admin.ts';
export type { RelayView } from './relay-list.ts';

export class CloudCore {
  readonly opts: CoreOptions;
  /** Every console's output: sealed segments + hot tail. */
  readonly log: LogStore;
  /** Replay, export, grep and history work running in this process (slots.ts). */
  readonly queries: QuerySlots;
  private readonly c: CoreContext;
  private readonly access: AccessRules;
  private readonly life: Lifecycle;
  private readonly rechecks: Rechecks;
  private readonly relays: RelaySide;
  private readonly clients: ClientSessions;
  private readonly history: History;
  private readonly consoles: ConsoleAdmin;
  private readonly relayList: RelayList;
  private readonly local: LocalAccess;

  constructor(p: CloudPorts, opts: Partial<CoreOptions> = {}, logOpts: Partial<LogStoreOptions> = {}) {
    this.opts = { ...CORE_DEFAULTS, ...opts };
    const c = this.c = new CoreContext(p, this.opts, logOpts);
    this.log = c.log;
    this.queries = c.queries;
    this.access = new AccessRules(c);
    this.life = new Lifecycle(c);
    this.rechecks = new Rechecks(c, this.access, this.life);
    this.history = new History(c);
    this.local = new LocalAccess(c, this.access);
    this.relays = new RelaySide(c, this.access, this.life, new LiveOutput(c, this.access, this.rechecks, this.life), this.local);
    this.clients = new ClientSessions(c, this.access, this.rechecks, this.life, this.history);
    this.consoles = new ConsoleAdmin(c, this.access, this.life);
    this.relayList = new RelayList(c, this.access);
  }

  // ============================================================================ relay connections

  relayMessage(conn: string, who: Principal, msg: RelayToCloud): Promise<void> { return this.relays.relayMessage(conn, who, msg); }

  /** `relay`: whose connection it was, where the caller knows (what it had held back of its audit
   *  is recorded now, also when it published nothing). */
  relayClosed(conn: string, relay?: string): Promise<void> { return this.life.relayClosed(conn, relay); }

  /** Only the relay a console belongs to may store its output: checked before an upload's body
   *  is read (http-app.ts), and again when it is stored. */
  requireUploader(who: Principal, console: string): Promise<void> { return this.relays.requireUploader(who, console); }

  /** Where a relay uploads segment `key`: straight to the segment store with a presigned PUT when
   *  the store has them (S3), else through this cloud (`PUT .../segments`). After a presigned PUT
   *  the relay calls commitSegment. */
  segmentUploadUrl(who: Principal, console: string, req: { key: string; size: number; sha256?: Buffer }, maxBytes: number):
    Promise<{ mode: 'direct' } | { mode: 'presigned'; url: string; headers: Record<string, string> }> {
    return this.relays.segmentUploadUrl(who, console, req, maxBytes);
  }

  /** A segment the relay PUT to the store itself: verified, indexed and made part of the log. */
  commitSegment(who: Principal, console: string, key: string): Promise<SegmentStored> { return this.relays.commitSegment(who, console, key); }

  /** A segment uploaded through this cloud: verified, stored, indexed and made part of the log. */
  ingestSegment(who: Principal, console: string, body: Buffer): Promise<SegmentStored> { return this.relays.ingestSegment(who, console, body); }

  // =========================================================================== client connections

  clientMessage(conn: string, who: Principal, msg: ClientToCloud): Promise<void> { return this.clients.clientMessage(conn, who, msg); }

  /** The connection is gone (closed, or ended by the cloud: `why`): its sessions end, a writer's
   *  lock is released. Repeating it is harmless. */
  clientClosed(conn: string, why?: string): Promise<void> { return this.life.clientClosed(conn, why); }

  /** In `watched` mode, before a replay up to now of a console nobody watches: asks its relay for
   *  the output it has not sealed yet and waits until the stored end stops moving. */
  catchUp(console: string): Promise<void> { return this.history.catchUp(console); }

  // ====================================================================================== consoles

  who(console: string): Promise<Viewer[]> { return this.consoles.who(console); }

  /** The consoles `who` may list (every console when `who` is omitted: internal use). */
  listConsoles(who?: Principal): Promise<ConsoleView[]> { return this.consoles.listConsoles(who); }

  /** The names of the consoles `who` may list (all when omitted), without their viewers. */
  consoleNames(who?: Principal): Promise<string[]> { return this.consoles.consoleNames(who); }

  getConsole(who: Principal, name: string): Promise<ConsoleView> { return this.consoles.getConsole(who, name); }

  /** `cloudcons console down|up NAME`. */
  consoleCtl(who: Principal, name: string, op: 'down' | 'up'): Promise<ConsoleView> { return this.consoles.consoleCtl(who, name, op); }

  /** `cloudcons console rm NAME` (admins). */
  removeConsole(who: Principal, name: string): Promise<ConsoleView> { return this.consoles.removeConsole(who, name); }

  /** `cloudcons console move NAME --relay R` (admins). */
  moveConsole(who: Principal, name: string, to: string): Promise<ConsoleView> { return this.consoles.moveConsole(who, name, to); }

  /** `cloudcons relays`: every relay for admins; for anyone else the relays of the consoles they
   *  may list, with only those consoles. */
  listRelays(who: Principal): Promise<RelayView[]> { return this.relayList.listRelays(who); }

  /** Console must be known (registered, or with stored output or audit records) and `who` allowed
   *  `action` on it; one `who` may not list is reported as unknown. */
  requireKnown(who: Principal, name: string, action: Action): Promise<void> { return this.consoles.requireKnown(who, name, action); }

  // ================================================================================ access rules

  /** The access rules (undefined: none set, everyone rw), read at most every accessCacheMs, or
   *  every `maxAgeMs` where a longer age will do. */
  accessDoc(maxAgeMs?: number): Promise<Rules> { return this.access.rules(maxAgeMs); }

  /** Replaces the access rules (admins only); open sessions follow at once. `expect`: the version
   *  the change was made against (Conflict if someone changed them since). */
  async setAccess(who: Principal, raw: unknown, expect?: number): Promise<{ version: number; doc: AccessDoc }> {
    const r = await this.access.store(who, raw, expect);
    await this.rechecks.rulesStored(r.version, r.doc);
    await this.local.pushAll(); // the relays' local-access snapshots follow
    return r;
  }

  /** The decision on `action`, for the user `who` (admin tokens and admins may do everything). */
  may(who: Principal, console: string, action: Action): Promise<Decision> { return this.access.may(who, console, action); }

  /** Throws Forbidden (and audits the refusal on the console) unless `who` may `action` `console`. */
  requireAccess(who: Principal, console: string, action: Action): Promise<void> { return this.access.requireAccess(who, console, action); }

  isAdmin(who: Principal): Promise<boolean> { return this.access.isAdmin(who); }

  requireAdmin(who: Principal, what: string): Promise<void> { return this.access.requireAdmin(who, what); }

  /** `cloudcons access check`: every action's decision for a user (with groups) on a console. */
  checkAccess(who: Principal, subject: { name: string; groups?: string[]; admin?: boolean }, console: string) { return this.access.checkAccess(who, subject, console); }

  // ================================================================ local access at the relays

  /** `cloudcons keys list [--user U]`: one's own SSH keys, or (admins) anyone's. */
  listKeys(who: Principal, user?: string): Promise<KeyList> { return this.local.listKeys(who, user); }

  /** `cloudcons keys add FILE [--user U]`: audited; connected relays get a new snapshot. */
  addKeys(who: Principal, text: string, user?: string): Promise<KeyList & { added: string[]; had: string[] }> { return this.local.addKeys(who, text, user); }

  /** `cloudcons keys remove FINGERPRINT [--user U]`: audited; connected relays get a new snapshot. */
  removeKey(who: Principal, fingerprint: string, user?: string): Promise<KeyList & { removed: SshKeyRecord }> { return this.local.removeKey(who, fingerprint, user); }

  /** `cloudcons relay-local on|off NAME` (admins): audited; the relay, if connected, hears at once. */
  setRelayLocal(who: Principal, relay: string, on: boolean): Promise<RelayRecord> { return this.local.setRelayLocal(who, relay, on); }

  // ============================================================= re-checks on the server's clock

  /** Why `who`'s token no longer counts (revoked, expired, unknown), or undefined. */
  tokenGone(who: Principal, now?: number): Promise<string | undefined> { return this.rechecks.tokenGone(who, now); }

  /** Closes a connection whose token stopped counting (`why`): audited, told, closed with 4001. */
  endConnection(conn: string, who: Principal, why: string): Promise<void> { return this.life.endConnection(conn, who, why); }

  /** The periodic re-check of one open connection (every tokenRecheckMs). False if it was closed. */
  recheckConnection(conn: string, who: Principal): Promise<boolean> { return this.rechecks.recheckConnection(conn, who); }

  /** A token was revoked: its open connections are closed now, where the ports can find them. */
  tokenRevoked(t: TokenInfo): Promise<number> { return this.rechecks.tokenRevoked(t); }

  /** Every session against the access rules, if another process changed them since the last sweep. */
  recheckIfRulesChanged(): Promise<void> { return this.rechecks.recheckIfRulesChanged(); }

  /** The access rules read again now (the embedded cloud's SIGHUP) rather than within
   *  accessCacheMs, open sessions re-checked against them; says what was read. Throws when the
   *  store cannot be read. */
  async reloadAccess(): Promise<string> {
    const r = await this.access.rules(0);
    await this.rechecks.recheckIfRulesChanged();
    return r.problem ? `access rules: ${r.problem}` : r.doc ? `access rules version ${r.version} (${r.doc.rules.length} rules) in force` : 'no access rules set (every user may do everything)';
  }

  // ========================================================================================= audit

  /** Audits an event of a console that is not a session's (an export, ...). */
  async auditEvent(console: string, type: string, user: string, detail: string): Promise<void> {
    await this.c.audit(console, type, undefined, { user, detail });
  }

  /** A sign-in that failed (bad, expired or revoked token; wrong endpoint): audited, up to
   *  authFailureAuditsPerMin a minute. */
  authFailed(where: string, why: string): Promise<void> { return this.c.authFailed(where, why); }

  /** Audits something that happened to the cloud rather than to a console (tokens, rules). */
  auditCloud(type: string, user: string | undefined, detail: string): Promise<void> { return this.c.auditCloud(type, user, detail); }

  /** Audits a sign-in of `who` (`auth.signin`), or a connection of theirs refused (`auth.refused`),
   *  within the ration of the relay or user (audit-ration.ts): one who opens connections in a
   *  loop cannot flood the audit; the count of what was held back is recorded. */
  async auditSignIn(who: Principal, type: 'auth.signin' | 'auth.refused', detail: string): Promise<void> {
    const label = principalLabel(who);
    const ration = who.kind === 'relay' ? this.c.relayAudits : this.c.userAudits;
    if (await ration.admit(who.kind === 'relay' ? who.name : label, type)) await this.c.auditCloud(type, label, detail);
  }

  /** Writes the counts the audit rations held back a minute or more ago (a flood that stopped):
   *  run now and then (the node server's sweep; each Lambda invocation). */
  flushAuditRations(): Promise<void> { return this.c.flushAuditRations(); }

  sendClient(conn: string, msg: Out<CloudToClient>): Promise<boolean> { return this.c.sendClient(conn, msg); }

  sendRelay(conn: string, msg: Out<CloudToRelay>): Promise<boolean> { return this.c.sendRelay(conn, msg); }
}
