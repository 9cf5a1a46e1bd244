// The cloud core: sessions, the write lock, fan-out of live output, ingest and audit.
// Stateless between calls: every fact lives behind a port (ports.ts), so this class runs the same
// in the embedded server and in Lambda. Callers must hand it the messages of one connection in
// order (one at a time per connection); different connections may interleave.
import { randomBytes } from 'node:crypto';
import { chunks, encode, PROTOCOL_LIMITS } from '../../protocol/codec.ts';
import { CLOUD_STREAM, consoleNameProblem, isConsoleName } from '../../protocol/names.ts';
import { BadParameter, Conflict, Forbidden, NotFound, RateLimited } from '../../protocol/errors.ts';
import type { ClientToCloud, ConsoleInfo, CloudToClient, CloudToRelay, Out, RelayToCloud, Viewer } from '../../protocol/messages.ts';
import { ACTIONS, decide, explain, isAdmin, parseAccess, relayMayPublish, type AccessDoc, type Action, type Decision } from './acl.ts';
import { SecretPromptTracker } from './secret-prompt.ts';
import { LogStore, OutputConflict, type LogStoreOptions } from './log-store.ts';
import { QuerySlots } from './slots.ts';
import { PATTERN_DEFAULTS } from './grep-pattern.ts';
import { RelayAuditBudget } from './relay-audit.ts';
import type { AuditRecord, CloudPorts, ConsoleRecord, LapsedHolder, Lock, Principal, Session, TokenInfo } from './ports.ts';
import { SeeCache, sessionSubject } from './session-rights.ts';
import { principalLabel } from '../../protocol/principal.ts';
import { boundedRecord, cutText } from './audit-text.ts';

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
  /** Password prompts to recognise besides the built-in ones (secret-prompt.ts), matched against
   *  the console's line as shown. Default none. */
  secretPrompt?: RegExp;
  /** How long a process keeps the access rules it read before reading them again: a change made
   *  through another process (another Lambda) takes effect within this. Default 2000 ms. */
  accessCacheMs: number;
  /** Failed sign-ins audited per minute and process; more are counted and summed up in the next
   *  minute's first record (a flood of bad tokens must not flood the audit). Default 60. */
  authFailureAuditsPerMin: number;
  /** Sessions (writer and spies) one console takes; the next attach is refused. Default 64. */
  maxSessionsPerConsole: number;
  /** How often the server looks at every open connection again on its own clock: its token
   *  (revoked or expired: the connection is closed), its sessions' rights (taken away: the session
   *  ends, or the writer becomes a spy) and a writer's lease (lapsed: a spy). Embedded: a timer of
   *  the node server; Lambda: at the first message of a connection after this long. Input is
   *  checked at once anyway, and a revocation closes the token's connections at once where the
   *  cloud can find them (ports.connections). Default 30000 ms, at most 30000. */
  tokenRecheckMs: number;
  /** Replay, export, grep and history requests one user may have running at once, over all their
   *  WebSocket sessions and HTTP requests (slots.ts); more get RateLimited. Default 4. */
  maxQueriesPerUser: number;
  /** The same for all users together, in this process. Default 16. */
  maxQueries: number;
  /** Longest grep pattern accepted (characters). Default 1000. */
  maxPatternLength: number;
  /** Most matcher states a grep pattern may compile to (grep-pattern.ts). Default 4000. */
  maxPatternStates: number;
  /** How long one grep request may scan before it stops with a truncation notice (ms). Default 20000. */
  maxGrepMs: number;
  /** Consoles registered to one relay (a name stays its relay's until an admin removes it); a
   *  hello that would register more is refused for the new ones. Default 1024 (bench/ingest.sh
   *  runs 1000 on one relay). */
  maxConsolesPerRelay: number;
  /** Audit records one relay's messages may cause per minute, sustained (events, state changes,
   *  refusals of what it sent); more are counted in one record (relay-audit.ts). Default 600. */
  relayAuditsPerMin: number;
  /** ... and at once. Default 3000: a relay with maxConsolesPerRelay consoles that restarts
   *  (each goes down and up) is audited in full. */
  relayAuditBurst: number;
  /** How far above the highest fence this cloud handed out for a console a relay's hello may claim
   *  to have seen it (the embedded cloud keeps locks in memory, and the registry's copy is saved
   *  up to 200 ms late); a higher claim is refused and audited. Default 1000. */
  fenceClaimSlack: number;
  /** Longest free text (detail, user) an audit record keeps; longer text, which a request or a
   *  relay supplied, is cut with a marker (audit-text.ts). Default 1024 characters. */
  auditTextMax: number;
}
/** The longest tokenRecheckMs accepted (the CLI flag and the Lambda variable refuse more). */
export const TOKEN_RECHECK_MAX_MS = 30_000;

export const CORE_DEFAULTS: CoreOptions = {
  leaseMs: 30_000, maxHistoryBytes: 1024 * 1024, live: 'always', catchUpMs: 1500, quietBatchMs: 0,
  redactSecrets: true, accessCacheMs: 2000, authFailureAuditsPerMin: 60, maxSessionsPerConsole: 64, tokenRecheckMs: 30_000,
  maxQueriesPerUser: 4, maxQueries: 16, maxPatternLength: PATTERN_DEFAULTS.maxLength, maxPatternStates: PATTERN_DEFAULTS.maxStates, maxGrepMs: 20_000,
  maxConsolesPerRelay: 1024, relayAuditsPerMin: 600, relayAuditBurst: 3000, fenceClaimSlack: 1000,
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
    this.queries = new QuerySlots(this.opts.maxQueriesPerUser, this.opts.maxQueries);
    this.relayAudits = new RelayAuditBudget({ perMin: this.opts.relayAuditsPerMin, burst: this.opts.relayAuditBurst }, () => this.now(),
      (relay, type, detail) => this.auditCloud(type, principalLabel({ kind: 'relay', name: relay }), detail));
  }
  private readonly prompts: SecretPromptTracker;
  private readonly relayAudits: RelayAuditBudget;
  /** Replay, export, grep and history work running in this process (slots.ts). */
  readonly queries: QuerySlots;
  private readonly seeCache = new SeeCache();

  // ============================================================================ relay connections

  async relayMessage(conn: string, who: Principal, msg: RelayToCloud): Promise<void> {
    if (who.kind !== 'relay') throw new Forbidden('only relay tokens may speak the relay protocol');
    switch (msg.t) {
      case 'hello': return this.relayHello(conn, who, msg);
      case 'console': {
        const rec = await this.ownedConsole(conn, who, msg.info.name, msg.t);
        if (!rec) return;
        const changed = rec.state !== msg.info.state;
        // Only over its own record: an admin who moved the console meanwhile is not undone.
        if (!(await this.p.consoles.putIf({ ...rec, ...described(msg.info), state: msg.info.state, since: msg.info.since, reason: msg.info.reason }, rec.relay))) return;
        if (changed) await this.consoleStateChanged(rec.name, msg.info.state, msg.info.reason, who.name);
        return;
      }
      case 'out': {
        const rec = await this.ownedConsole(conn, who, msg.c, msg.t);
        if (!rec) return;
        const data = Buffer.from(msg.d, 'base64');
        // Only what was not stored before goes live: a resend after a reconnect is never shown twice.
        const { fresh } = await this.log.append(msg.c, msg.o, msg.ts, data);
        for (const f of fresh) await this.fanOut(msg.c, f.offset, f.data, f.data.length === data.length ? msg.d : undefined);
        await this.watchPrompt(rec, fresh);
        return;
      }
      case 'rejected': {
        if (!(await this.ownedConsole(conn, who, msg.c, msg.t))) return;
        // Only about a session of this console: a relay cannot put words in front of another
        // console's users, nor records in its trail.
        const s = await this.sessionOfConsole(who, msg.c, msg.session, msg.t);
        if (!s) return;
        await this.relayAudit(who, msg.c, msg.what === 'in' ? 'input.dropped' : `${msg.what}.dropped`, { fence: msg.fence, detail: `relay refused: ${msg.reason}` }, s);
        await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: the relay refused your ${msg.what === 'in' ? 'input' : msg.what}: ${msg.reason}]` });
        return;
      }
      case 'break-sent':
        if (!(await this.ownedConsole(conn, who, msg.c, msg.t))) return;
        if (!(await this.sessionOfConsole(who, msg.c, msg.session, msg.t))) return;
        await this.notice(msg.c, `[cloudcons: break ${msg.seq} sent]`);
        return;
      case 'event':
        if (!(await this.ownedConsole(conn, who, msg.c, msg.t))) return;
        await this.relayAudit(who, msg.c, `console.${msg.what}`, { detail: msg.detail });
        if (msg.what === 'flapping' || msg.what === 'idle') await this.notice(msg.c, `[cloudcons: ${msg.detail}]`);
        return;
      case 'ping':
        await this.sendRelay(conn, { t: 'pong', id: msg.id });
        return;
      case 'pong': return;
    }
  }

  private async relayHello(conn: string, who: Principal, msg: Extract<RelayToCloud, { t: 'hello' }>): Promise<void> {
    // A relay is who its token says: the name in its hello (from its config) is only compared.
    if (msg.relay.toLowerCase() !== who.name) {
      await this.relayAudit(who, CLOUD_STREAM, 'relay.name', { detail: `the token of relay ${who.name} said hello as ${msg.relay}` });
      await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message: `this token belongs to relay ${who.name}, not ${msg.relay}: its consoles are published as relay ${who.name}'s` });
    }
    const { doc } = await this.accessDoc();
    const ends: Record<string, number> = {};
    const watched: string[] = [];
    const refused: string[] = [];
    const capped: string[] = [];
    const downAgain: { c: string; by: string }[] = [];
    let owned: number | undefined; // consoles registered to this relay: counted when a new one comes
    for (const info of msg.consoles) {
      if (!relayMayPublish(doc, who.name, info.name)) { refused.push(`${info.name} (not assigned to relay ${who.name} in the access rules)`); continue; }
      // A name belongs to the relay that registered it until an admin moves or removes it, whether
      // or not that relay is connected: nobody else's keystrokes, and no output but its, go here.
      let old: ConsoleRecord | undefined;
      let stored = false;
      let fence = 0;
      for (let attempt = 0; attempt < 3 && !stored; attempt++) {
        old = await this.p.consoles.get(info.name);
        if (old && old.relay !== who.name) break;
        if (!old && (owned ??= await this.consolesOf(who.name)) >= this.opts.maxConsolesPerRelay) break;
        if (!attempt && info.fence) fence = await this.fenceClaim(conn, who, info.name, info.fence, old);
        const high = Math.max(old?.fence ?? 0, fence);
        stored = await this.p.consoles.putIf({
          ...described(info), state: info.state, since: info.since, reason: info.reason, relay: who.name, relayConn: conn,
          ...(old?.adminDown ? { adminDown: old.adminDown } : {}), ...(high ? { fence: high } : {}),
        }, old ? who.name : null);
      }
      if (!stored) {
        if (old && old.relay !== who.name) {
          refused.push(`${info.name} (registered to relay ${old.relay})`);
          await this.relayAudit(who, info.name, 'relay.refused', {
            detail: `relay ${who.name} tried to publish ${info.name}, which belongs to relay ${old.relay} (${old.relayConn ? 'connected' : 'not connected'}): refused (an admin moves a console to another relay with cloudcons console move)` });
        } else if (!old) capped.push(info.name);
        else refused.push(`${info.name} (changed by another writer meanwhile: say hello again)`);
        continue;
      }
      if (!old) owned = (owned ?? 0) + 1;
      if (fence) await this.reFence(info.name, fence);
      ends[info.name] = await this.log.end(info.name);
      if ((this.opts.live === 'watched' || info.ondemand) && (await this.p.sessions.byConsole(info.name)).length) watched.push(info.name);
      if (old?.adminDown) downAgain.push({ c: info.name, by: old.adminDown.by });
      if (!old || old.state !== info.state || !old.relayConn) await this.consoleStateChanged(info.name, info.state, info.reason, who.name);
    }
    const batch = this.opts.quietBatchMs ? { quietBatchMs: this.opts.quietBatchMs } : {};
    await this.sendRelay(conn, this.opts.live === 'watched' ? { t: 'welcome', ends, live: 'watched', watched, ...batch } : { t: 'welcome', ends, ...(watched.length ? { watched } : {}), ...batch });
    // Down by hand stays down across relay restarts.
    for (const d of downAgain) await this.sendRelay(conn, { t: 'ctl', c: d.c, op: 'down', by: d.by });
    if (refused.length) {
      await this.relayAudit(who, CLOUD_STREAM, 'relay.refused', { detail: `consoles refused: ${someOf(refused)}` });
      await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_CONFLICT', message: `consoles refused (ignored): ${someOf(refused)}` });
    }
    if (capped.length) {
      const why = `relay ${who.name} has ${owned} consoles registered, its limit (maxConsolesPerRelay ${this.opts.maxConsolesPerRelay}): ${capped.length} new consoles refused: ${someOf(capped)}; an admin frees names with cloudcons console rm NAME`;
      await this.relayAudit(who, CLOUD_STREAM, 'relay.refused', { detail: why });
      await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_RATE_LIMITED', message: why });
    }
  }

  /** The consoles registered to relay `relay`. */
  private async consolesOf(relay: string): Promise<number> {
    return (await this.p.consoles.list()).filter((r) => r.relay === relay).length;
  }

  /** The fence a relay's hello says it has seen for its console, if the cloud takes it (else 0,
   *  audited): at most fenceClaimSlack above the highest this cloud handed out. A relay that
   *  claimed 2^48 would make every later fence the same, and fencing stop on the console. */
  private async fenceClaim(conn: string, who: Principal, console: string, claim: number, rec: ConsoleRecord | undefined): Promise<number> {
    const known = Math.max((await this.p.locks.get(console)).fence, rec?.fence ?? 0);
    if (claim <= known + this.opts.fenceClaimSlack) return claim;
    const why = `relay ${who.name} claimed to have seen fence ${claim} for ${console}, but this cloud handed out at most ${known} (fenceClaimSlack ${this.opts.fenceClaimSlack}): the claim is ignored`;
    await this.relayAudit(who, console, 'relay.fence', { detail: why });
    await this.relayAudit(who, CLOUD_STREAM, 'relay.fence', { detail: why });
    await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_BAD_PARAMETER', message: `${why} (a relay that kept a fence from another cloud forgets it when restarted)` });
    return 0;
  }

  /** A relay has seen `fence` for a console (the cloud restarted and lost its lock state): make
   *  every later fence higher, and give a writer that re-attached in the meantime (with a fence the
   *  relay would now call stale) a fresh one. */
  private async reFence(console: string, fence: number): Promise<void> {
    await this.p.locks.seedFence(console, fence);
    const lock = await this.p.locks.get(console);
    if (!lock.session || lock.expiresAt <= this.now() || lock.fence > fence) return;
    const r = await this.p.locks.acquire(console, { session: lock.session, user: lock.user! }, { force: true, leaseMs: this.opts.leaseMs, now: this.now() });
    if (r.ok) await this.keepFence(console, r.lock.fence);
    const s = await this.p.sessions.get(lock.session);
    if (!r.ok || !s) return;
    s.fence = r.lock.fence;
    await this.p.sessions.put(s);
    await this.audit(console, 'lock.refence', s, { detail: `relay had seen fence ${fence}` });
  }

  /** Notes a fence handed out in the console's record as well: the embedded cloud's locks live in
   *  memory, and a relay's claim after a restart is checked against this (fenceClaim). Returns the
   *  record as read. */
  private async keepFence(console: string, fence: number): Promise<ConsoleRecord | undefined> {
    const rec = await this.p.consoles.get(console);
    if (rec && fence > (rec.fence ?? 0)) await this.p.consoles.putIf({ ...rec, fence }, rec.relay);
    return rec;
  }

  /** Only the relay a console belongs to may store its output: checked before an upload's body
   *  is read (http-app.ts), and again when it is stored. */
  async requireUploader(who: Principal, console: string): Promise<void> {
    if (who.kind !== 'relay') {
      // Refused at the door, as a user token on the relay WebSocket is (rationed: authFailureAuditsPerMin).
      await this.authFailed(`segment upload for ${console}`, `a ${who.kind} token (${who.name}) cannot upload segments`);
      throw new Forbidden('only relay tokens may upload segments');
    }
    const rec = await this.p.consoles.get(console);
    if (rec?.relay === who.name) return;
    const why = rec ? `console ${console} is published by relay ${rec.relay}, not ${who.name}` : `console ${console} is not registered: the relay must connect (hello) before uploading`;
    await this.relayAudit(who, CLOUD_STREAM, 'relay.refused', { detail: `segment upload refused: ${why}` });
    throw rec ? new Forbidden(why) : new NotFound(why);
  }

  /** Where a relay uploads segment `key`: straight to the segment store with a presigned PUT when
   *  the store has them (S3), else through this cloud (`PUT .../segments`). After a presigned PUT
   *  the relay calls commitSegment. */
  async segmentUploadUrl(who: Principal, console: string, req: { key: string; size: number; sha256?: Buffer }, maxBytes: number):
    Promise<{ mode: 'direct' } | { mode: 'presigned'; url: string; headers: Record<string, string> }> {
    await this.requireUploader(who, console);
    if (!this.p.segments.presignPut) return { mode: 'direct' };
    if (!Number.isInteger(req.size) || req.size < 1 || req.size > maxBytes) {
      throw new BadParameter(`size: must be 1..${maxBytes} bytes (--max-segment-bytes), got ${req.size}`);
    }
    await this.log.checkUpload(console, req.key);
    return { mode: 'presigned', ...await this.p.segments.presignPut(req.key, { size: req.size, sha256: req.sha256 }) };
  }

  /** A segment the relay PUT to the store itself: verified, indexed and made part of the log. */
  async commitSegment(who: Principal, console: string, key: string): Promise<{ key: string; start: number; end: number; created: boolean }> {
    await this.requireUploader(who, console);
    return this.segmentStored(console, await this.conflictAudited(who, () => this.log.commitSegment(console, key)));
  }

  async ingestSegment(who: Principal, console: string, body: Buffer): Promise<{ key: string; start: number; end: number; created: boolean }> {
    await this.requireUploader(who, console);
    return this.segmentStored(console, await this.conflictAudited(who, () => this.log.putSegment(console, body)));
  }

  /** Stores a segment; one that would change output stored before is refused (409) and audited in
   *  the console's trail (`output.conflict`): an honest relay never sends one. */
  private async conflictAudited<T>(who: Principal, store: () => Promise<T>): Promise<T> {
    try {
      return await store();
    } catch (e) {
      if (e instanceof OutputConflict) {
        await this.relayAudit(who, e.console, 'output.conflict', { detail: `${e.message} (relay ${who.name}'s upload refused)` });
      }
      throw e;
    }
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
    // A password prompt may have come only this way (live mode `watched`: printed while nobody
    // watched), and someone may be about to type at it.
    if (r.fresh.length) { const rec = await this.p.consoles.get(console); if (rec) await this.watchPrompt(rec, r.fresh); }
    return { key: r.key, start: r.footer.start, end: r.footer.end, created: r.created };
  }

  /** Feeds output new to the log to the password-prompt tracker, and records in the registry when
   *  the console starts or stops showing a prompt (secret-prompt.ts). */
  private async watchPrompt(rec: ConsoleRecord, fresh: { offset: number; data: Buffer }[]): Promise<void> {
    if (!this.opts.redactSecrets || !fresh.length) return;
    let secret = !!rec.secretPrompt;
    for (const f of fresh) secret = this.prompts.feed(rec.name, f.data, f.offset, secret);
    if (secret === !!rec.secretPrompt) return;
    const now = await this.p.consoles.get(rec.name); // re-read: the fan-out awaited
    if (now) await this.p.consoles.putIf({ ...now, secretPrompt: secret || undefined }, now.relay);
  }

  /** `relay`: whose connection it was, where the caller knows (what it had held back of its audit
   *  is recorded now, also when it published nothing). */
  async relayClosed(conn: string, relay?: string): Promise<void> {
    const dropped = await this.p.consoles.dropRelayConn(conn, 'relay disconnected', this.now());
    for (const rec of dropped) await this.consoleStateChanged(rec.name, 'down', `relay ${rec.relay} disconnected`, rec.relay);
    for (const r of new Set([...dropped.map((x) => x.relay), ...(relay ? [relay] : [])])) await this.relayAudits.flush(r);
  }

  /** The console if `conn` is the relay connection that publishes it, or another connection of
   *  the same relay: during a make-before-break move, messages the old connection sent before the
   *  relay switched are still handled after the new one's hello (on API Gateway, in parallel).
   *  A message about another relay's console, or one never registered, is audited (`t` says what). */
  private async ownedConsole(conn: string, who: Principal, name: string, t: string): Promise<ConsoleRecord | undefined> {
    const rec = await this.p.consoles.get(name);
    if (rec?.relayConn && (rec.relayConn === conn || rec.relay === who.name)) return rec;
    await this.sendRelay(conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message: `console ${name} is not published by relay ${who.name}${rec?.relayConn ? '' : ' (or its relay is not connected)'}: send hello first` });
    // Its own console while it (re)connects is a race, not an attempt.
    if (rec?.relay !== who.name) {
      await this.relayAudit(who, CLOUD_STREAM, 'relay.refused', {
        detail: `relay ${who.name} sent '${t}' for console ${name}, which ${rec ? `belongs to relay ${rec.relay}` : 'is not registered'}: ignored` });
    }
    return undefined;
  }

  /** The session `id` if it is one of `console`'s; else undefined, and audited as what the relay
   *  sent (`t`) naming a session that is not there (it may just have left; or the relay lies). */
  private async sessionOfConsole(who: Principal, console: string, id: string, t: string): Promise<Session | undefined> {
    const s = await this.p.sessions.get(id);
    if (s?.console === console) return s;
    await this.relayAudit(who, CLOUD_STREAM, 'relay.ignored', {
      detail: `relay ${who.name} sent '${t}' for console ${console} naming session ${id}, ${s ? 'a session of another console' : 'which is not attached (it may have just left)'}: ignored` });
    return undefined;
  }

  /** `relay`: the relay whose message or connection caused it (its audit is rationed). */
  private async consoleStateChanged(name: string, state: 'up' | 'down', reason?: string, relay?: string): Promise<void> {
    if (!relay || await this.relayAudits.admit(relay, `console.${state}`)) {
      await this.appendAudit({ time: this.now(), console: name, type: `console.${state}`, detail: reason, offset: await this.log.end(name) });
    }
    for (const s of await this.p.sessions.byConsole(name)) await this.sendClient(s.conn, { t: 'state', state, reason });
  }

  // =========================================================================== client connections

  async clientMessage(conn: string, who: Principal, msg: ClientToCloud): Promise<void> {
    if (who.kind !== 'user') throw new Forbidden('relay tokens cannot attach to consoles');
    // What takes a lock or shows stored output asks the token too (input does in writeDenied): a
    // connection whose close is still on its way gets nothing more with a revoked token.
    if (msg.t === 'attach' || msg.t === 'lock' || msg.t === 'replay') {
      const gone = await this.tokenGone(who);
      if (gone) { await this.endConnection(conn, who, gone); return; }
    }
    if (msg.t === 'attach') return this.attach(conn, who, msg);
    if (msg.t === 'ping') {
      const s = await this.sessionOf(conn);
      if (s && !(await this.heartbeat(s))) return;
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
        // Resizing changes what the device sees: the same rights, lock and lease as input.
        const [rec, denied] = await Promise.all([this.p.consoles.get(s.console), this.writeDenied(s, who, 'attach')]);
        if (denied) {
          await this.audit(s.console, 'resize.denied', s, { detail: `${msg.cols}x${msg.rows}: ${denied}` });
          await this.sendClient(s.conn, { t: 'notice', text: `[cloudcons: resize not sent: ${denied}]` });
          return;
        }
        if (rec?.relayConn && rec.resizable && s.fence !== undefined) await this.toRelay(s.console, rec.relayConn, { t: 'resize', c: s.console, fence: s.fence, session: s.id, cols: msg.cols, rows: msg.rows });
        return;
      }
      // Rights are asked when the message is handled, not only at attach: they may have changed since.
      case 'who':
        await this.requireAccess(who, s.console, 'list');
        await this.sendClient(conn, { t: 'who', viewers: await this.who(s.console) });
        return;
      case 'replay':
        await this.requireAccess(who, s.console, 'replay');
        return this.sendHistory(s.conn, who, s.console, msg.lines, 'replay');
    }
  }

  private async attach(conn: string, who: Principal, msg: Extract<ClientToCloud, { t: 'attach' }>): Promise<void> {
    if ((await this.p.sessions.byConn(conn)).length) throw new Conflict('this connection is already attached; open another one');
    const rec = await this.requireVisible(who, msg.c, () => this.p.consoles.get(msg.c));
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
    const s: Session = { id: newId(), console: msg.c, user: who.name, mode: 'spy', since: this.now(), conn, client: msg.client, who };
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
    if (msg.from !== undefined) await this.sendSince(conn, who, msg.c, msg.from);
    else await this.sendHistory(conn, who, msg.c, msg.tail ?? 0, 'attach');
  }

  /** History from output offset `from` to the end (at most maxHistoryBytes; the rest is reported
   *  as missed), for a client that re-attaches after losing its connection. */
  private async sendSince(conn: string, who: Principal, console: string, from: number): Promise<void> {
    const end = await this.log.end(console);
    const start = Math.min(end, Math.max(from, end - this.opts.maxHistoryBytes));
    await this.sendRange(conn, who, console, start, end, 'attach', from);
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
    const rec = await this.keepFence(s.console, r.lock.fence);
    if (rec?.relayConn) await this.toRelay(s.console, rec.relayConn, { t: 'fence', c: s.console, fence: r.lock.fence });
    if (r.lapsed) await this.lapsedTaken(s, r.lapsed);
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
    // The console and the writer's standing are read in parallel: this is the echo path.
    const [rec, denied] = await Promise.all([this.p.consoles.get(s.console), this.writeDenied(s, who, 'attach')]);
    // At a password prompt the audit keeps who typed how much, not what (also when refused).
    const redacted = this.opts.redactSecrets && rec?.secretPrompt ? `[redacted: ${data.length} bytes typed at a password prompt]` : undefined;
    const typed = (detail?: string) => (redacted ? { detail: detail ? `${detail} ${redacted}` : redacted } : { data, detail });
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
    const [denied, rec] = await Promise.all([this.writeDenied(s, who, 'break'), this.p.consoles.get(s.console)]);
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

  /** Why `s` may not write now, or undefined if it may. Asked at every input, break and resize,
   *  all at once: the token (revoked or expired: the connection is closed), the access rules (from
   *  the cache, so taking a right away stops input within accessCacheMs; a writer who may no longer
   *  attach becomes a spy), and the lock (moved, or its lease lapsed: a spy). */
  private async writeDenied(s: Session, who: Principal, action: Action): Promise<string | undefined> {
    if (s.mode !== 'rw' || s.fence === undefined) return 'you are a spy (read-only): ^Eca takes the write lock if free, ^Ecf forces it';
    const now = this.now();
    const [gone, d, lock] = await Promise.all([this.tokenGone(who, now), this.may(who, s.console, action), this.p.locks.get(s.console)]);
    if (gone) {
      await this.endConnection(s.conn, who, gone);
      return `your token ${gone}`;
    }
    if (!d.allow) {
      const why = `you may not ${action === 'break' ? 'send a break to' : 'write to'} ${s.console} any more: ${d.why}`;
      const w = action === 'attach' ? d : await this.may(who, s.console, 'attach');
      if (!w.allow) await this.demote(s, w.why);
      return why;
    }
    if (lock.session !== s.id || lock.fence !== s.fence) return `the write lock moved to ${lock.user ?? 'nobody'} (fence ${lock.fence})`;
    if (lock.expiresAt <= now) return this.leaseLapsed(s, lock);
    return undefined;
  }

  /** The connection is gone (closed, or ended by the cloud: `why`): its sessions end, a writer's
   *  lock is released. Repeating it is harmless. */
  async clientClosed(conn: string, why?: string): Promise<void> {
    for (const s of await this.p.sessions.byConn(conn)) {
      if (s.mode === 'rw' && s.fence !== undefined && (await this.p.locks.release(s.console, s.id, s.fence))) {
        await this.audit(s.console, 'lock.release', s);
      }
      await this.p.sessions.delete(s.id);
      await this.audit(s.console, why ? 'session.ended' : 'session.detach', s, why ? { detail: why } : {});
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
   *  already streams, so repeating it (every 6th viewer ping) is how a lost `off`/`on` race heals. */
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

  /** The last `lines` lines of output as history, at most maxHistoryBytes of them: the search for
   *  their start looks back no further than that, so what is scanned is bounded by what is sent. */
  private async sendHistory(conn: string, who: Principal, console: string, lines: number, kind: 'attach' | 'replay'): Promise<void> {
    const end = await this.log.end(console);
    const start = lines > 0 ? await this.log.lineStart(console, lines, end, Math.max(0, end - this.opts.maxHistoryBytes)) : end;
    await this.sendRange(conn, who, console, start, end, kind);
  }

  /** Output [start, end) as history frames, read a block at a time and sent as the connection
   *  drains (the sender's `drained`), so a history never piles up in memory; it stops as soon as
   *  the connection is gone. Holds one of the user's query slots meanwhile: with none free, none of
   *  it is sent and the client is told (an attach still gets the last frame, whose `end` places
   *  the live output after it). `askedFrom`: where a re-attach asked to start (what it will not
   *  get is reported as missed, never silently). */
  private async sendRange(conn: string, who: Principal, console: string, start: number, end: number, kind: 'attach' | 'replay', askedFrom?: number): Promise<void> {
    let release = (): void => {};
    if (start < end) {
      try { release = this.queries.take(who.name); } catch (e) {
        if (!(e instanceof RateLimited)) throw e;
        await this.sendClient(conn, { t: 'notice', text: `[cloudcons: history not sent: ${e.message}]` });
        start = end;
      }
    }
    try {
      if (askedFrom !== undefined && start > askedFrom) await this.sendClient(conn, { t: 'missed', bytes: start - askedFrom });
      const frame = PROTOCOL_LIMITS.maxRawChunk;
      let acc: Buffer[] = [], size = 0;
      for await (const it of this.log.items(console, start, end)) {
        if (it.kind !== 'data') continue;
        acc.push(it.data);
        size += it.data.length;
        // Full frames go out as they fill; the rest waits for more (the last one carries `last`).
        while (size > frame) {
          const all = acc.length === 1 ? acc[0] : Buffer.concat(acc, size);
          if (!(await this.sendHistoryFrame(conn, { t: 'history', kind, d: all.subarray(0, frame).toString('base64'), last: false }))) return;
          acc = [all.subarray(frame)];
          size -= frame;
        }
      }
      const rest = acc.length === 1 ? acc[0] : Buffer.concat(acc, size);
      await this.sendClient(conn, { t: 'history', kind, d: rest.toString('base64'), last: true, end });
    } finally {
      release();
    }
  }

  /** Sends a history frame, then waits until the connection can take more; false once it is gone. */
  private async sendHistoryFrame(conn: string, msg: Out<CloudToClient>): Promise<boolean> {
    if (!(await this.sendClient(conn, msg))) return false;
    return this.p.sender.drained ? this.p.sender.drained(conn) : true;
  }

  // ======================================================================================= queries

  async who(console: string): Promise<Viewer[]> {
    const [lock, sessions] = await Promise.all([this.p.locks.get(console), this.p.sessions.byConsole(console)]);
    // A lapsed lease is nobody's: its holder is listed as a spy until it takes the lock again.
    const held = lock.expiresAt > this.now();
    return sessions.map((s) => ({
      session: s.id, user: s.user, since: s.since, client: s.client,
      mode: s.mode === 'rw' && lock.session === s.id && held ? 'rw' as const : 'spy' as const,
    }));
  }

  /** The consoles `who` may list (every console when `who` is omitted: internal use). */
  async listConsoles(who?: Principal): Promise<ConsoleView[]> {
    const out: ConsoleView[] = [];
    for (const rec of await this.listable(who)) out.push(await this.view(rec));
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The names of the consoles `who` may list (all when omitted), without their viewers and
   *  writer: what grep and audit verify start from, with no lookups per console. */
  async consoleNames(who?: Principal): Promise<string[]> {
    return (await this.listable(who)).map((r) => r.name).sort();
  }

  private async listable(who?: Principal): Promise<ConsoleRecord[]> {
    const out: ConsoleRecord[] = [];
    for (const rec of await this.p.consoles.list()) if (!who || (await this.may(who, rec.name, 'list')).allow) out.push(rec);
    return out;
  }

  /** `cloudcons console down|up NAME`: tells the console's relay to close it until `up` (or to
   *  bring it up now, also ending a flap hold). Remembered, so a relay that restarts keeps it down. */
  async consoleCtl(who: Principal, name: string, op: 'down' | 'up'): Promise<ConsoleView> {
    const rec = await this.requireVisible(who, name, () => this.p.consoles.get(name));
    await this.requireAccess(who, name, op);
    if (!rec.relayConn) throw new Conflict(`console ${name}: its relay ${rec.relay} is not connected, so it cannot be taken ${op} now`);
    const next: ConsoleRecord = { ...rec };
    if (op === 'down') next.adminDown = { by: who.name, at: this.now() }; else delete next.adminDown;
    if (!(await this.p.consoles.putIf(next, rec.relay))) throw new Conflict(`console ${name} changed meanwhile (moved or removed): look again (cloudcons ls) and retry`);
    await this.audit(name, `console.${op}.request`, undefined, { user: who.name, detail: `${op} requested by ${who.name}` });
    if (!(await this.toRelay(name, rec.relayConn, { t: 'ctl', c: name, op, by: who.name }))) throw new Conflict(`console ${name}: its relay ${rec.relay} went away; try again`);
    return this.view(next);
  }

  /** `cloudcons console rm NAME` (admins): frees the name, so another relay may register it. Its
   *  stored output and audit trail are evidence and stay (replay, audit and export still work).
   *  Refused while its relay is connected and publishes it: it would register it again at once;
   *  take it out of that relay's config first (or stop the relay), or move it. */
  async removeConsole(who: Principal, name: string): Promise<ConsoleView> {
    await this.requireAdmin(who, `remove console ${name}`);
    const rec = await this.p.consoles.get(name);
    if (!rec) throw new NotFound(await this.unknownConsoleMessage(name, who));
    const refuse = (owner: ConsoleRecord) => new Conflict(`console ${name}: relay ${owner.relay} is connected and publishes it, and would register it again at once: take it out of relay ${owner.relay}'s config (or stop that relay) first, or move it with cloudcons console move`);
    if (rec.relayConn) throw refuse(rec);
    if (!(await this.p.consoles.remove(name, rec.relay))) {
      const now = await this.p.consoles.get(name);
      if (now?.relayConn) throw refuse(now);
      throw new Conflict(`console ${name} changed meanwhile${now ? ` (it belongs to relay ${now.relay})` : ' (it was removed)'}: look again (cloudcons ls) and retry`);
    }
    const detail = `removed by ${who.name}: the name was relay ${rec.relay}'s and is free now; its output and audit are kept`;
    await this.audit(name, 'console.remove', undefined, { user: who.name, detail });
    await this.auditCloud('console.remove', who.name, `console ${name}: ${detail}`);
    await this.notice(name, `[cloudcons: console ${name} was removed by ${who.name}]`);
    return this.view({ ...rec, state: 'down', reason: `removed by ${who.name}` });
  }

  /** `cloudcons console move NAME --relay R` (admins): the name becomes relay R's, which publishes
   *  it at its next hello (its next connection). If the relay it belonged to is connected, the
   *  console is taken down there and its messages about it are refused from now on. */
  async moveConsole(who: Principal, name: string, to: string): Promise<ConsoleView> {
    await this.requireAdmin(who, `move console ${name}`);
    if (!isConsoleName(to)) throw new BadParameter(`relay: ${consoleNameProblem(to, 'relay name')}`);
    const rec = await this.p.consoles.get(name);
    if (!rec) throw new NotFound(await this.unknownConsoleMessage(name, who));
    if (rec.relay === to) throw new Conflict(`console ${name} already belongs to relay ${to}`);
    if (!relayMayPublish((await this.accessDoc()).doc, to, name)) throw new Conflict(`console ${name}: the access rules (relays:) do not let relay ${to} publish it: change them first (cloudcons access set)`);
    const reason = `moved from relay ${rec.relay} to relay ${to} by ${who.name}: up when relay ${to} connects with it`;
    const next: ConsoleRecord = { ...rec, relay: to, state: 'down', since: this.now(), reason };
    delete next.relayConn;
    if (!(await this.p.consoles.putIf(next, rec.relay))) throw new Conflict(`console ${name} changed meanwhile: look again (cloudcons ls) and retry`);
    await this.audit(name, 'console.move', undefined, { user: who.name, detail: reason });
    await this.auditCloud('console.move', who.name, `console ${name}: ${reason}`);
    // The old relay lets go of the device (a BMC takes one SOL session), and says no more about it.
    if (rec.relayConn) await this.sendRelay(rec.relayConn, { t: 'ctl', c: name, op: 'down', by: who.name });
    if (rec.state !== 'down' || rec.relayConn) await this.consoleStateChanged(name, 'down', reason);
    return this.view(next);
  }

  async getConsole(who: Principal, name: string): Promise<ConsoleView> {
    return this.view(await this.requireVisible(who, name, () => this.p.consoles.get(name)));
  }

  /** Console must be known (registered, or with stored output or audit records: a removed
   *  console's are evidence, and stay readable) and `who` allowed `action` on it.
   *  A console `who` may not list is reported as unknown (its name is not given away). */
  async requireKnown(who: Principal, name: string, action: Action): Promise<void> {
    await this.requireVisible(who, name, async () => !!(await this.p.consoles.get(name)) || (await this.log.consoles()).includes(name)
      || (name !== CLOUD_STREAM && (await this.p.audit.list(name, { limit: 1 })).length > 0));
    await this.requireAccess(who, name, action);
  }

  private async view(rec: ConsoleRecord): Promise<ConsoleView> {
    const viewers = await this.who(rec.name);
    const { relayConn: _hidden, fence: _internal, ...pub } = rec;
    return { ...pub, writer: viewers.find((v) => v.mode === 'rw')?.user, spies: viewers.filter((v) => v.mode === 'spy').length, viewers };
  }

  /** NotFound unless `who` may list the console and `lookup` finds it. The rules decide first,
   *  before any lookup: a name the user may not list costs exactly what an unknown one does, so
   *  neither the answer nor its time says whether it exists. */
  private async requireVisible<T>(who: Principal, name: string, lookup: () => Promise<T | undefined | false>): Promise<T> {
    if ((await this.may(who, name, 'list')).allow) {
      const found = await lookup();
      if (found) return found;
    }
    throw new NotFound(await this.unknownConsoleMessage(name, who));
  }

  private async unknownConsoleMessage(name: string, who: Principal): Promise<string> {
    const known = await this.consoleNames(who);
    return `console ${name} not found; known: ${known.length ? someOf(known, 50) : '(none)'}`;
  }

  // ================================================================================ access rules

  private accessCache?: { at: number; doc?: AccessDoc; version: number; problem?: string };

  /** The access rules (undefined: none set, everyone rw), read at most every accessCacheMs, or
   *  every `maxAgeMs` where a longer age will do. */
  async accessDoc(maxAgeMs = this.opts.accessCacheMs): Promise<{ doc?: AccessDoc; version: number; problem?: string }> {
    const c = this.accessCache;
    if (c && Date.now() - c.at < maxAgeMs) return c;
    const r = await this.p.access.get();
    let doc: AccessDoc | undefined;
    let problem: string | undefined;
    // The store holds checked documents only; one that no longer parses (a hand-edited file, or
    // rules stored before names were checked as strictly) allows nothing but admins rather than everything.
    try { doc = r.doc === undefined ? undefined : parseAccess(r.doc); } catch (e) {
      doc = parseAccess({ default: 'none' });
      problem = `the stored rules (version ${r.version}) do not load, so only admin tokens and admin groups may act until an admin stores them again (access show, access set): ${(e as Error).message}`;
      if (this.accessCache?.problem === undefined || this.accessCache.version !== r.version) console.error(`access: ${problem}`);
    }
    this.accessCache = { at: Date.now(), doc, version: r.version, problem };
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
    // Open sessions follow at once: whoever lost a right loses it now, not at their next message.
    this.sweptVersion = cur.version + 1;
    // The rules are stored: a failure here must not read as if they were not (the periodic
    // re-check and every input still apply them).
    await this.recheckAllSessions(doc).catch((e: Error) => console.error(`access rules version ${cur.version + 1}: re-checking open sessions failed: ${e.message}`));
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
    const { doc, version, problem } = await this.accessDoc();
    return { ...explain(doc, subject.name === who.name ? { name: who.name, groups: who.groups, admin: who.admin } : subject, console), version, rules: problem ?? (doc ? 'set' : 'none (every user may do everything)') };
  }

  // ===================================================== re-checks on the server's clock (issue 14)
  // A connection's token, its sessions' rights and a writer's lease are checked again by the
  // server, never only when the client chooses to say something: at every input, break and resize
  // (writeDenied), at every live message for the viewers of a console (fanOut: rights against
  // rules at most tokenRecheckMs old, and expiry), at the client's heartbeat, every tokenRecheckMs (recheckConnection: a timer
  // embedded, the next message on Lambda), when the access rules change (setAccess, or a new
  // version seen: recheckIfRulesChanged) and at once on revocation (tokenRevoked).

  /** Why `who`'s token no longer counts (revoked, expired, unknown), or undefined. One token
   *  lookup (none for an OpenID Connect ID token, whose expiry the principal carries). */
  async tokenGone(who: Principal, now = this.now()): Promise<string | undefined> {
    const expired = expiredAt(who, now);
    if (expired || who.via === 'oidc') return expired;
    const t = await this.p.tokens.info(who.tokenId);
    if (!t) return 'no longer exists';
    if (t.revoked) return `was revoked at ${iso(t.revoked.at)} by ${t.revoked.by}`;
    if (t.expires !== undefined && now >= t.expires) return `expired at ${iso(t.expires)}`;
    return undefined;
  }

  /** Connections and sessions being ended by this process: a second check meanwhile (a live
   *  message, the sweep) does not end them twice. */
  private readonly endingConns = new Set<string>();
  private readonly endingSessions = new Set<string>();

  /** Closes a connection whose token stopped counting (`why`): audited (`auth.ended`), told, closed
   *  with 4001; its sessions end now, not when the close lands (no more output or input). */
  async endConnection(conn: string, who: Principal, why: string): Promise<void> {
    if (this.endingConns.has(conn)) return;
    this.endingConns.add(conn);
    try {
      const message = `your token ${who.via === 'oidc' ? '(OpenID Connect)' : who.tokenId} ${why}: sign in again`;
      await this.auditCloud('auth.ended', principalLabel(who), `connection ${conn} closed: token ${why}`);
      await this.p.sender.send(conn, encode({ t: 'error', code: 'CC_ERR_UNAUTHORIZED', message }));
      await this.p.sender.close(conn, 4001, message);
      if (who.kind === 'relay') await this.relayClosed(conn, who.name);
      else await this.clientClosed(conn, `token ${why}`);
    } finally { this.endingConns.delete(conn); }
  }

  /** The periodic re-check of one open connection (every tokenRecheckMs): its token, then the
   *  rights and lease of its sessions. False if the connection was closed. */
  async recheckConnection(conn: string, who: Principal): Promise<boolean> {
    const gone = await this.tokenGone(who);
    if (gone) { await this.endConnection(conn, who, gone); return false; }
    if (who.kind !== 'user') return true;
    const { doc } = await this.accessDoc();
    for (const s of await this.p.sessions.byConn(conn)) await this.recheckSession(s, doc);
    return true;
  }

  /** A token was revoked: every open connection signed in with it is closed now, where the ports
   *  can find them (ports.connections; without it at the next re-check). Returns how many. */
  async tokenRevoked(t: TokenInfo): Promise<number> {
    if (!this.p.connections || !t.revoked) return 0;
    const why = `was revoked at ${iso(t.revoked.at)} by ${t.revoked.by}`;
    let n = 0;
    // Principals carry names in normal form (protocol/principal.ts); a token stored before names
    // were checked may hold capitals.
    for (const c of await this.p.connections.of({ kind: t.kind, name: t.name.toLowerCase() })) {
      if (c.who.tokenId !== t.id) continue;
      await this.endConnection(c.conn, c.who, why);
      n++;
    }
    return n;
  }

  private sweptVersion?: number;

  /** Every session against the access rules, if they changed since the last sweep (another
   *  process set them: seen once the cached rules are read again, within accessCacheMs). */
  async recheckIfRulesChanged(): Promise<void> {
    const { doc, version } = await this.accessDoc();
    if (version === this.sweptVersion) return;
    this.sweptVersion = version;
    await this.recheckAllSessions(doc);
  }

  /** Consoles are looked at 16 at a time: on AWS each is a query, and an admin waits for this. */
  private async recheckAllSessions(doc: AccessDoc | undefined): Promise<void> {
    const names = (await this.p.consoles.list()).map((r) => r.name);
    const worker = async () => {
      for (let name = names.pop(); name !== undefined; name = names.pop()) {
        for (const s of await this.p.sessions.byConsole(name)) await this.recheckSession(s, doc);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }

  /** One session against the rules and its lease: ended if its user may no longer see the console,
   *  a writer who may no longer attach or whose lease lapsed becomes a spy. False if it ended. */
  private async recheckSession(s: Session, doc: AccessDoc | undefined): Promise<boolean> {
    if (!(await this.rightsHold(s, doc))) return false;
    if (s.mode === 'rw' && s.fence !== undefined) await this.lapseIfExpired(s);
    return true;
  }

  /** The client's heartbeat: its session's rights, then the writer's lease is renewed; a lease that
   *  lapsed meanwhile is not revived (a spy now). False if the session ended. */
  private async heartbeat(s: Session): Promise<boolean> {
    if (!(await this.rightsHold(s, (await this.accessDoc(this.rulesAgeOnTheWay())).doc))) return false;
    if (s.mode !== 'rw' || s.fence === undefined) return true;
    if (!(await this.p.locks.renew(s.console, s.id, s.fence, this.opts.leaseMs, this.now()))) await this.lapseIfExpired(s);
    return true;
  }

  /** Whether `s` may still be attached as it is: a spy needs `spy`; a writer `attach` (else it
   *  becomes a spy, if it may spy). Ends the session otherwise; false then. */
  private async rightsHold(s: Session, doc: AccessDoc | undefined): Promise<boolean> {
    const who = sessionSubject(s);
    if (s.mode === 'rw' && s.fence !== undefined) {
      const w = decide(doc, who, s.console, 'attach');
      if (w.allow) return true;
      if (decide(doc, who, s.console, 'spy').allow) { await this.demote(s, w.why); return true; }
    }
    const d = decide(doc, who, s.console, 'spy');
    if (d.allow) return true;
    await this.endSession(s, `you may no longer see ${s.console}: ${d.why}`);
    return false;
  }

  /** Ends a session whose user may no longer see its console: its live output stops now, a
   *  writer's lock is released, audited (`session.ended`), told, and its connection closed (4003). */
  private async endSession(s: Session, why: string): Promise<void> {
    if (this.endingSessions.has(s.id) || !(await this.p.sessions.get(s.id))) return; // ended already
    this.endingSessions.add(s.id);
    try {
      const released = s.mode === 'rw' && s.fence !== undefined && (await this.p.locks.release(s.console, s.id, s.fence));
      await this.p.sessions.delete(s.id);
      await this.audit(s.console, 'session.ended', s, { detail: `${why}${released ? ' (write lock released)' : ''}` });
      const message = `your session on ${s.console} ended: ${why}`;
      await this.sendClient(s.conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message });
      await this.p.sender.close(s.conn, 4003, message);
      if (!(await this.p.sessions.byConsole(s.console)).length) await this.watch(s.console, false);
    } finally { this.endingSessions.delete(s.id); }
  }

  /** A writer who may no longer attach becomes a spy: lock released (`lock.revoked`), told. */
  private async demote(s: Session, why: string): Promise<void> {
    if (s.fence !== undefined && (await this.p.locks.release(s.console, s.id, s.fence))) {
      await this.audit(s.console, 'lock.revoked', s, { detail: `may no longer attach: ${why}` });
    }
    await this.toSpy(s, `[cloudcons: you may no longer write to ${s.console} (${why}); you are a spy now]`);
  }

  /** The writer `s` did not renew its lease (no heartbeat for leaseMs) and nobody took the lock:
   *  released and audited once (`lock.expired`: only the release that ends it succeeds; a take of
   *  the lapsed lock audits it instead, lapsedTaken), `s` is a spy now and told. Returns why. */
  private async leaseLapsed(s: Session, lock: Lock): Promise<string> {
    const at = this.lapsedAt(lock.expiresAt);
    if (await this.p.locks.release(s.console, s.id, lock.fence)) await this.audit(s.console, 'lock.expired', s, { detail: `lease lapsed at ${at}` });
    const why = `your write lock lapsed at ${at}: ^Eca takes it again if it is free`;
    await this.toSpy(s, `[cloudcons: ${why}]`);
    return why;
  }

  /** The writer `s` still holds the lock with its fence but past its lease: it lapses (leaseLapsed). */
  private async lapseIfExpired(s: Session): Promise<void> {
    const lock = await this.p.locks.get(s.console);
    if (lock.session === s.id && lock.fence === s.fence && lock.expiresAt <= this.now()) await this.leaseLapsed(s, lock);
  }

  /** `s` took a lock whose holder's lease had lapsed: `lock.expired` for that holder, who is told
   *  (a spy now), like a bump but saying why. */
  private async lapsedTaken(s: Session, l: LapsedHolder): Promise<void> {
    const at = this.lapsedAt(l.expiresAt);
    const old = l.session === s.id ? undefined : await this.p.sessions.get(l.session);
    await this.audit(s.console, 'lock.expired', old, { user: l.user, session: l.session, fence: l.fence, detail: `lease lapsed at ${at}; taken by ${s.user}` });
    if (old) await this.toSpy(old, `[cloudcons: your write lock lapsed at ${at} and ${s.user} took it; you are a spy now]`, s.user);
  }

  /** How old the rules may be that live output and heartbeats are checked against: they run all
   *  the time (on AWS every read costs), and a change through the API has swept the sessions
   *  already, so reading them again every tokenRecheckMs is enough (input, breaks and resizes
   *  keep accessCacheMs). */
  private rulesAgeOnTheWay(): number { return Math.max(this.opts.accessCacheMs, this.opts.tokenRecheckMs); }

  /** "<time> (no heartbeat for N s)": when and why a lease lapsed. */
  private lapsedAt(at: number): string { return `${iso(at)} (no heartbeat for ${this.opts.leaseMs / 1000} s)`; }

  private async toSpy(s: Session, text: string, writer?: string): Promise<void> {
    s.mode = 'spy';
    delete s.fence;
    await this.p.sessions.put(s);
    await this.sendClient(s.conn, { t: 'mode', mode: 'spy', ...(writer ? { writer } : {}) });
    await this.sendClient(s.conn, { t: 'notice', text });
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
    // The rules are read beside the sessions (cached: no I/O most of the time, never in sequence).
    const [sessions, { doc }] = await Promise.all([this.p.sessions.byConsole(console), this.accessDoc(this.rulesAgeOnTheWay())]);
    if (!sessions.length) return;
    const frame = encode({ t: 'out', o: offset, d: b64 ?? data.toString('base64') });
    const now = this.now();
    for (const s of sessions) {
      // A viewer whose token expired or who may no longer see the console gets no more output,
      // whether or not it ever speaks again (on Lambda no timer would find it).
      const expired = s.who && expiredAt(s.who, now);
      if (expired) { await this.endConnection(s.conn, s.who!, expired); continue; }
      if (!this.seeCache.sees(doc, s) && !(await this.rightsHold(s, doc))) continue;
      if (!(await this.p.sender.send(s.conn, frame, { live: { console, offset, bytes: data.length } }))) await this.clientClosed(s.conn);
    }
  }

  private async notice(console: string, text: string): Promise<void> {
    for (const s of await this.p.sessions.byConsole(console)) await this.sendClient(s.conn, { t: 'notice', text });
  }

  private async notifyOthers(s: Session, text: string): Promise<void> {
    for (const o of await this.p.sessions.byConsole(s.console)) if (o.id !== s.id) await this.sendClient(o.conn, { t: 'notice', text });
  }

  /** Audits something relay `relay` caused, within its ration (relayAuditsPerMin, relayAuditBurst),
   *  as the relay's (`relay:edge1`) unless it is about session `s` (then the session's user's). */
  private async relayAudit(relay: Principal, console: string, type: string, extra: AuditExtra = {}, s?: Session): Promise<void> {
    if (await this.relayAudits.admit(relay.name, type)) await this.audit(console, type, s, { user: principalLabel(relay), ...extra });
  }

  private async audit(console: string, type: string, s: Session | undefined, extra: AuditExtra = {}): Promise<void> {
    const rec: AuditRecord = { time: this.now(), console, type, user: s?.user ?? extra.user, session: s?.id ?? extra.session, fence: extra.fence ?? s?.fence, detail: extra.detail };
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

/** What an audit record carries besides its console, type and session. */
type AuditExtra = { data?: Buffer; detail?: string; fence?: number; user?: string; session?: string };

const iso = (t: number) => new Date(t).toISOString();

/** "expired at <time>" once the principal's token (or ID token) has expired, else undefined. */
function expiredAt(who: Principal, now: number): string | undefined {
  return who.expires !== undefined && now >= who.expires ? `expired at ${iso(who.expires)}` : undefined;
}

/** Why a message for a console's relay went nowhere (its connection closed under it). */
function undeliverable(rec: ConsoleRecord): string {
  return `relay ${rec.relay} is not connected (it may be reconnecting); try again`;
}

/** The first few of a list of names, and how many more (a refusal must fit in a frame). */
function someOf(items: string[], n = 20): string {
  return items.length > n ? `${items.slice(0, n).join(', ')} and ${items.length - n} more` : items.join(', ');
}

/** The parts of a relay's console description the registry keeps. */
function described(info: ConsoleInfo): Pick<ConsoleRecord, 'name' | 'type' | 'resizable' | 'ondemand' | 'breaks' | 'defaultBreak'> {
  return { name: info.name, type: info.type, resizable: info.resizable, ondemand: info.ondemand, breaks: info.breaks, defaultBreak: info.defaultBreak };
}
