// The relay side of the cloud: what a relay's connection says (hello, its consoles' state, output,
// refusals, events) and the segments it uploads. A relay is trusted with its own consoles only: a
// console name belongs to the relay that registered it until an admin moves or removes it, what it
// claims (fences, sessions) is checked, its output is stored first and fanned out only where new,
// and what it makes the cloud audit is rationed (audit-ration.ts).
import { chunks } from '../../protocol/codec.ts';
import { BadParameter, Forbidden, NotFound } from '../../protocol/errors.ts';
import type { ConsoleInfo, RelayToCloud } from '../../protocol/messages.ts';
import { CLOUD_STREAM } from '../../protocol/names.ts';
import { formatPrincipal, parsePrincipal } from '../../protocol/principal.ts';
import { relayMayPublish } from './acl.ts';
import type { AccessRules } from './access-rules.ts';
import { someOf, type CoreContext } from './core-context.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { LiveOutput } from './live-output.ts';
import { ACCESS_FEATURE, type LocalAccess } from './local-access.ts';
import { OutputConflict, type LogStore } from './log-store.ts';
import type { ConsoleRecord, Principal, Session } from './ports.ts';

/** What the cloud answers a stored segment with. */
export interface SegmentStored { key: string; start: number; end: number; created: boolean }

export class RelaySide {
  constructor(private readonly c: CoreContext, private readonly access: AccessRules, private readonly life: Lifecycle, private readonly output: LiveOutput, private readonly local: LocalAccess) {}

  async relayMessage(conn: string, who: Principal, msg: RelayToCloud): Promise<void> {
    if (who.kind !== 'relay') throw new Forbidden('only relay tokens may speak the relay protocol');
    switch (msg.t) {
      case 'hello': return this.relayHello(conn, who, msg);
      case 'console': {
        const rec = await this.ownedConsole(conn, who, msg.info.name, msg.t);
        if (!rec) return;
        const changed = rec.state !== msg.info.state;
        // Only over its own record: an admin who moved the console meanwhile is not undone.
        const next: ConsoleRecord = { ...rec, ...described(msg.info), state: msg.info.state, since: msg.info.since, reason: msg.info.reason };
        // Taken out of the relay's config (a reload), its output uploaded: still the relay's name
        // (until an admin frees it with console rm, which no connection publishing it blocks any
        // more), down, and nothing more the relay says about it is taken until a hello has it again.
        if (msg.removed) { delete next.relayConn; next.state = 'down'; }
        if (!(await this.c.p.consoles.putIf(next, rec.relay))) return;
        if (msg.removed) await this.c.relayAudit(who, rec.name, 'console.unpublished', { detail: `relay ${who.name} no longer has ${rec.name} in its config: ${msg.info.reason ?? 'removed'}` });
        if (changed || (msg.removed && rec.state !== 'down')) await this.life.consoleStateChanged(rec.name, next.state, next.reason, who.name);
        return;
      }
      case 'out': {
        const rec = await this.ownedConsole(conn, who, msg.c, msg.t);
        if (!rec) return;
        const data = Buffer.from(msg.d, 'base64');
        // Only what was not stored before goes live: a resend after a reconnect is never shown twice.
        const { fresh } = await this.c.log.append(msg.c, msg.o, msg.ts, data);
        for (const f of fresh) await this.output.fanOut(msg.c, f.offset, f.data, f.data.length === data.length ? msg.d : undefined);
        await this.output.watchPrompt(rec, fresh);
        return;
      }
      case 'rejected': {
        if (!(await this.ownedConsole(conn, who, msg.c, msg.t))) return;
        // Only about a session of this console: a relay cannot put words in front of another
        // console's users, nor records in its trail.
        const s = await this.sessionOfConsole(who, msg.c, msg.session, msg.t);
        if (!s) return;
        await this.c.relayAudit(who, msg.c, msg.what === 'in' ? 'input.dropped' : `${msg.what}.dropped`, { fence: msg.fence, detail: `relay refused: ${msg.reason}` }, s);
        await this.c.sendClient(s.conn, { t: 'notice', text: `[cloudcons: the relay refused your ${msg.what === 'in' ? 'input' : msg.what}: ${msg.reason}]` });
        return;
      }
      case 'break-sent':
        if (!(await this.ownedConsole(conn, who, msg.c, msg.t))) return;
        if (!(await this.sessionOfConsole(who, msg.c, msg.session, msg.t))) return;
        await this.c.notice(msg.c, `[cloudcons: break ${msg.seq} sent]`);
        return;
      case 'event':
        if (!(await this.ownedConsole(conn, who, msg.c, msg.t))) return;
        await this.c.relayAudit(who, msg.c, `console.${msg.what}`, { detail: msg.detail });
        if (msg.what === 'flapping' || msg.what === 'idle') await this.c.notice(msg.c, `[cloudcons: ${msg.detail}]`);
        return;
      case 'status': {
        // Its oldest unsent byte's age made a time on this clock: the relay's may be off.
        const now = this.c.now();
        const o = msg.spool.oldestMs;
        await this.c.p.relays.status(who.name, { bytes: msg.spool.bytes, ...(o !== undefined ? { oldestAt: now - o } : {}) }, now, this.c.opts.relayStatusMinMs);
        return;
      }
      case 'audit': return this.localAudit(conn, who, msg);
      case 'ping':
        await this.c.sendRelay(conn, { t: 'pong', id: msg.id });
        return;
      case 'pong': return;
    }
  }

  private async relayHello(conn: string, who: Principal, msg: Extract<RelayToCloud, { t: 'hello' }>): Promise<void> {
    // A relay is who its token says: the name in its hello (from its config) is only compared, and
    // one that differs is refused whole (the relay's spool and its operator think it another
    // relay). A relay without a name in its config says none and takes its token's (the welcome).
    if (msg.relay !== undefined && msg.relay.toLowerCase() !== who.name) {
      const message = `this token belongs to relay ${who.name}, but the relay says it is ${msg.relay} (relay.name in its config, or the name its spool was first used under): nothing is published. Give the relay relay ${msg.relay}'s token, or set relay.name to ${who.name} (or leave it out: a relay without one takes its token's name) with a spool of its own`;
      await this.c.relayAudit(who, CLOUD_STREAM, 'relay.name', { detail: `the token of relay ${who.name} said hello as ${msg.relay}: refused` });
      await this.c.sendRelay(conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message });
      await this.c.p.sender.close(conn, 4003, `relay name: the token belongs to relay ${who.name}, not ${msg.relay}`);
      return;
    }
    await this.c.p.relays.connected(who.name, conn, { version: msg.version, protocol: msg.v, os: msg.os, arch: msg.arch, boot: msg.boot, ...(msg.features?.length ? { features: msg.features } : {}) }, this.c.now());
    const { doc } = await this.access.rules();
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
        old = await this.c.p.consoles.get(info.name);
        if (old && old.relay !== who.name) break;
        if (!old && (owned ??= await this.consolesOf(who.name)) >= this.c.opts.maxConsolesPerRelay) break;
        if (!attempt && info.fence) fence = await this.fenceClaim(conn, who, info.name, info.fence, old);
        const high = Math.max(old?.fence ?? 0, fence);
        stored = await this.c.p.consoles.putIf({
          ...described(info), state: info.state, since: info.since, reason: info.reason, relay: who.name, relayConn: conn,
          ...(old?.adminDown ? { adminDown: old.adminDown } : {}), ...(high ? { fence: high } : {}),
          ...(old?.localAudit ? { localAudit: old.localAudit } : {}), // what of its local audit is chained
        }, old ? who.name : null);
      }
      if (!stored) {
        if (old && old.relay !== who.name) {
          refused.push(`${info.name} (registered to relay ${old.relay})`);
          await this.c.relayAudit(who, info.name, 'relay.refused', {
            detail: `relay ${who.name} tried to publish ${info.name}, which belongs to relay ${old.relay} (${old.relayConn ? 'connected' : 'not connected'}): refused (an admin moves a console to another relay with cloudcons console move)` });
        } else if (!old) capped.push(info.name);
        else refused.push(`${info.name} (changed by another writer meanwhile: say hello again)`);
        continue;
      }
      if (!old) owned = (owned ?? 0) + 1;
      if (fence) await this.reFence(info.name, fence);
      ends[info.name] = await this.c.log.end(info.name);
      if ((this.c.opts.live === 'watched' || info.ondemand) && (await this.c.p.sessions.byConsole(info.name)).length) watched.push(info.name);
      if (old?.adminDown) downAgain.push({ c: info.name, by: old.adminDown.by });
      if (!old || old.state !== info.state || !old.relayConn) await this.life.consoleStateChanged(info.name, info.state, info.reason, who.name);
    }
    const batch = this.c.opts.quietBatchMs ? { quietBatchMs: this.c.opts.quietBatchMs } : {};
    await this.c.sendRelay(conn, this.c.opts.live === 'watched' ? { t: 'welcome', relay: who.name, ends, live: 'watched', watched, ...batch } : { t: 'welcome', relay: who.name, ends, ...(watched.length ? { watched } : {}), ...batch });
    // Down by hand stays down across relay restarts.
    for (const d of downAgain) await this.c.sendRelay(conn, { t: 'ctl', c: d.c, op: 'down', by: d.by });
    // Who may sign in at the relay while the cloud is away (local-access.ts), for its consoles as
    // registered now: after every welcome (a hello split in batches gets one each; the last wins).
    if (msg.features?.includes(ACCESS_FEATURE)) {
      await this.local.send(conn, who.name).catch((e: Error) => console.error(`local access: the snapshot for relay ${who.name} was not sent (it keeps the one it has until its next connection): ${e.message}`));
    }
    if (refused.length) {
      await this.c.relayAudit(who, CLOUD_STREAM, 'relay.refused', { detail: `consoles refused: ${someOf(refused)}` });
      await this.c.sendRelay(conn, { t: 'error', code: 'CC_ERR_CONFLICT', message: `consoles refused (ignored): ${someOf(refused)}` });
    }
    if (capped.length) {
      const why = `relay ${who.name} has ${owned} consoles registered, its limit (maxConsolesPerRelay ${this.c.opts.maxConsolesPerRelay}): ${capped.length} new consoles refused: ${someOf(capped)}; an admin frees names with cloudcons console rm NAME`;
      await this.c.relayAudit(who, CLOUD_STREAM, 'relay.refused', { detail: why });
      await this.c.sendRelay(conn, { t: 'error', code: 'CC_ERR_RATE_LIMITED', message: why });
    }
  }

  /** The consoles registered to relay `relay`. */
  private async consolesOf(relay: string): Promise<number> {
    return (await this.c.p.consoles.list()).filter((r) => r.relay === relay).length;
  }

  /** The fence a relay's hello says it has seen for its console, if the cloud takes it (else 0,
   *  audited): at most fenceClaimSlack above the highest this cloud handed out. A relay that
   *  claimed 2^48 would make every later fence the same, and fencing stop on the console. */
  private async fenceClaim(conn: string, who: Principal, console: string, claim: number, rec: ConsoleRecord | undefined): Promise<number> {
    const known = Math.max((await this.c.p.locks.get(console)).fence, rec?.fence ?? 0);
    if (claim <= known + this.c.opts.fenceClaimSlack) return claim;
    const why = `relay ${who.name} claimed to have seen fence ${claim} for ${console}, but this cloud handed out at most ${known} (fenceClaimSlack ${this.c.opts.fenceClaimSlack}): the claim is ignored`;
    await this.c.relayAudit(who, console, 'relay.fence', { detail: why });
    await this.c.relayAudit(who, CLOUD_STREAM, 'relay.fence', { detail: why });
    await this.c.sendRelay(conn, { t: 'error', code: 'CC_ERR_BAD_PARAMETER', message: `${why} (a relay that kept a fence from another cloud forgets it when restarted)` });
    return 0;
  }

  /** A relay has seen `fence` for a console (the cloud restarted and lost its lock state): make
   *  every later fence higher, and give a writer that re-attached in the meantime (with a fence the
   *  relay would now call stale) a fresh one. */
  private async reFence(console: string, fence: number): Promise<void> {
    await this.c.p.locks.seedFence(console, fence);
    const lock = await this.c.p.locks.get(console);
    if (!lock.session || lock.expiresAt <= this.c.now() || lock.fence > fence) return;
    const r = await this.c.p.locks.acquire(console, { session: lock.session, user: lock.user! }, { force: true, leaseMs: this.c.opts.leaseMs, now: this.c.now() });
    if (r.ok) await this.c.keepFence(console, r.lock.fence);
    const s = await this.c.p.sessions.get(lock.session);
    if (!r.ok || !s) return;
    s.fence = r.lock.fence;
    await this.c.p.sessions.put(s);
    await this.c.audit(console, 'lock.refence', s, { detail: `relay had seen fence ${fence}` });
  }

  /** Only the relay a console belongs to may store its output: checked before an upload's body
   *  is read (http-app.ts), and again when it is stored. */
  async requireUploader(who: Principal, console: string): Promise<void> {
    if (who.kind !== 'relay') {
      // Refused at the door, as a user token on the relay WebSocket is (rationed: authFailureAuditsPerMin).
      await this.c.authFailed(`segment upload for ${console}`, `a ${who.kind} token (${who.name}) cannot upload segments`);
      throw new Forbidden('only relay tokens may upload segments');
    }
    const rec = await this.c.p.consoles.get(console);
    if (rec?.relay === who.name) return;
    const why = rec ? `console ${console} is published by relay ${rec.relay}, not ${who.name}` : `console ${console} is not registered: the relay must connect (hello) before uploading`;
    await this.c.relayAudit(who, CLOUD_STREAM, 'relay.refused', { detail: `segment upload refused: ${why}` });
    throw rec ? new Forbidden(why) : new NotFound(why);
  }

  /** Where a relay uploads segment `key`: straight to the segment store with a presigned PUT when
   *  the store has them (S3), else through this cloud (`PUT .../segments`). After a presigned PUT
   *  the relay calls commitSegment. */
  async segmentUploadUrl(who: Principal, console: string, req: { key: string; size: number; sha256?: Buffer }, maxBytes: number):
    Promise<{ mode: 'direct' } | { mode: 'presigned'; url: string; headers: Record<string, string> }> {
    await this.requireUploader(who, console);
    if (!this.c.p.segments.presignPut) return { mode: 'direct' };
    if (!Number.isInteger(req.size) || req.size < 1 || req.size > maxBytes) {
      throw new BadParameter(`size: must be 1..${maxBytes} bytes (--max-segment-bytes), got ${req.size}`);
    }
    await this.c.log.checkUpload(console, req.key);
    return { mode: 'presigned', ...await this.c.p.segments.presignPut(req.key, { size: req.size, sha256: req.sha256 }) };
  }

  /** A segment the relay PUT to the store itself: verified, indexed and made part of the log. */
  async commitSegment(who: Principal, console: string, key: string): Promise<SegmentStored> {
    await this.requireUploader(who, console);
    return this.segmentStored(who, console, await this.conflictAudited(who, () => this.c.log.commitSegment(console, key)));
  }

  async ingestSegment(who: Principal, console: string, body: Buffer): Promise<SegmentStored> {
    await this.requireUploader(who, console);
    return this.segmentStored(who, console, await this.conflictAudited(who, () => this.c.log.putSegment(console, body)));
  }

  /** Stores a segment; one that overlaps stored output is refused (409, with what is stored: the
   *  relay then sends the rest), and one that would change output stored before is audited in
   *  the console's trail too (`output.conflict`): an honest relay never sends one. */
  private async conflictAudited<T>(who: Principal, store: () => Promise<T>): Promise<T> {
    try {
      return await store();
    } catch (e) {
      if (e instanceof OutputConflict && !e.overlap?.same) {
        await this.c.relayAudit(who, e.console, 'output.conflict', { detail: `${e.message} (relay ${who.name}'s upload refused)` });
      }
      throw e;
    }
  }

  /** Whether the console's recent trail records a loss at `offset` (gaps are rare: the last
   *  thousand records reach back far enough for a relay's retry). */
  private async gapAudited(console: string, offset: number): Promise<boolean> {
    return (await this.c.p.audit.list(console, { limit: 1000 })).some((x) => x.type === 'output.gap' && x.offset === offset);
  }

  private async segmentStored(who: Principal, console: string, r: Awaited<ReturnType<LogStore['putSegment']>>): Promise<SegmentStored> {
    await this.c.p.relays.uploaded(who.name, this.c.now()); // stored (or had it already): `cloudcons relays` shows when
    const g = r.footer.gap;
    // The loss goes on the console's trail. A gap sent again (its first upload stored the gap but
    // could not audit it, say on a full disk, and the relay was told to retry) is audited then,
    // unless the trail already has it: the record is what an auditor sees of the loss.
    const loss = g && r.created && r.lost ? { lost: r.lost, lostAt: r.lostAt } : g && !r.created ? r.recorded : undefined;
    if (g && loss && (r.created || !(await this.gapAudited(console, loss.lostAt)))) {
      const kept = g.bytes - loss.lost ? ` (${g.bytes - loss.lost} of the relay's ${g.bytes} dropped bytes had already arrived live and are kept)` : '';
      const why = `${loss.lost} bytes lost at offset ${loss.lostAt} (${new Date(g.t0).toISOString()} to ${new Date(g.t1).toISOString()}): ${g.reason}${kept}`;
      await this.c.appendAudit({ time: this.c.now(), console, type: 'output.gap', detail: why, offset: loss.lostAt });
      await this.c.notice(console, `[cloudcons: console output was lost: ${why}]`);
    }
    // Output the live path has not brought (its message is slower than the upload, or the console
    // was not streamed): viewers get it now, in frame-sized pieces; they place output by offset,
    // so a live copy arriving later is not shown twice.
    for (const f of r.fresh) {
      let o = f.offset;
      for (const part of chunks(f.data)) { await this.output.fanOut(console, o, part); o += part.length; }
    }
    // A password prompt may have come only this way (live mode `watched`: printed while nobody
    // watched), and someone may be about to type at it.
    if (r.fresh.length) { const rec = await this.c.p.consoles.get(console); if (rec) await this.output.watchPrompt(rec, r.fresh); }
    return { key: r.key, start: r.footer.start, end: r.footer.end, created: r.created };
  }

  /** The console if `conn` is the relay connection that publishes it, or another connection of
   *  the same relay: during a make-before-break move, messages the old connection sent before the
   *  relay switched are still handled after the new one's hello (on API Gateway, in parallel).
   *  A message about another relay's console, or one never registered, is audited (`t` says what). */
  /** Records of the relay's local audit journal (issue 17): chained in their order, each journal
   *  seq once, marked `via: local`; then `audit-ok` up to the last one. What was chained already
   *  is the console's registry mark (ConsoleRecord.localAudit). It says `pending` while a batch is
   *  being chained: a batch a crash cut short leaves it, and the next upload then looks through
   *  the newest LOCAL_AUDIT_LOOKBACK records of the chain for what that batch got in (only then:
   *  the fs store reads a console's whole audit file to list it). */
  private async localAudit(conn: string, who: Principal, msg: Extract<RelayToCloud, { t: 'audit' }>): Promise<void> {
    const rec = await this.ownedConsole(conn, who, msg.c, msg.t);
    if (!rec) return;
    const first = msg.recs[0].seq;
    const last = first + msg.recs.length - 1;
    if (msg.recs.some((r, i) => r.seq !== first + i)) {
      await this.c.sendRelay(conn, { t: 'error', code: 'CC_ERR_BAD_PARAMETER', message: `audit of ${msg.c}: the records' seqs are not consecutive (${someOf(msg.recs.map((r) => String(r.seq)), 10)}): nothing chained` });
      return;
    }
    const mark = rec.localAudit?.journal === msg.journal ? rec.localAudit : undefined;
    let done = mark?.seq ?? 0;
    if (last > done) {
      if (rec.localAudit?.pending) {
        for (const r of await this.c.p.audit.list(msg.c, { limit: LOCAL_AUDIT_LOOKBACK })) {
          if (r.via === 'local' && r.journal === msg.journal && r.relay === who.name && (r.jseq ?? 0) > done) done = r.jseq!;
        }
      }
      const fresh = msg.recs.filter((r) => r.seq > done);
      if (fresh.length && !(await this.markLocalAudit(msg.c, { journal: msg.journal, seq: done, pending: last }))) return;
      for (const r of fresh) {
        await this.c.appendAudit({
          time: this.c.now(), console: msg.c, type: r.what, user: localUser(r, who.name), session: r.session, detail: r.detail,
          ...(r.d ? { data: r.d } : {}), offset: r.o ?? await this.c.log.end(msg.c),
          via: 'local', relayTime: r.ts, relay: who.name, fingerprint: r.fp, journal: msg.journal, jseq: r.seq,
        });
      }
      if (!(await this.markLocalAudit(msg.c, { journal: msg.journal, seq: last }))) return;
    }
    await this.c.sendRelay(conn, { t: 'audit-ok', c: msg.c, journal: msg.journal, seq: last });
  }

  /** Sets the console's local audit mark (over the registry record as it is now, the relay's). */
  private async markLocalAudit(console: string, mark: NonNullable<ConsoleRecord['localAudit']>): Promise<boolean> {
    const now = await this.c.p.consoles.get(console);
    return !!now && this.c.p.consoles.putIf({ ...now, localAudit: mark }, now.relay);
  }

  private async ownedConsole(conn: string, who: Principal, name: string, t: string): Promise<ConsoleRecord | undefined> {
    const rec = await this.c.p.consoles.get(name);
    if (rec?.relayConn && (rec.relayConn === conn || rec.relay === who.name)) return rec;
    await this.c.sendRelay(conn, { t: 'error', code: 'CC_ERR_FORBIDDEN', message: `console ${name} is not published by relay ${who.name}${rec?.relayConn ? '' : ' (or its relay is not connected)'}: send hello first` });
    // Its own console while it (re)connects is a race, not an attempt.
    if (rec?.relay !== who.name) {
      await this.c.relayAudit(who, CLOUD_STREAM, 'relay.refused', {
        detail: `relay ${who.name} sent '${t}' for console ${name}, which ${rec ? `belongs to relay ${rec.relay}` : 'is not registered'}: ignored` });
    }
    return undefined;
  }

  /** The session `id` if it is one of `console`'s; else undefined, and audited as what the relay
   *  sent (`t`) naming a session that is not there (it may just have left; or the relay lies). */
  private async sessionOfConsole(who: Principal, console: string, id: string, t: string): Promise<Session | undefined> {
    const s = await this.c.p.sessions.get(id);
    if (s?.console === console) return s;
    await this.c.relayAudit(who, CLOUD_STREAM, 'relay.ignored', {
      detail: `relay ${who.name} sent '${t}' for console ${console} naming session ${id}, ${s ? 'a session of another console' : 'which is not attached (it may have just left)'}: ignored` });
    return undefined;
  }
}

/** The parts of a relay's console description the registry keeps. */
function described(info: ConsoleInfo): Pick<ConsoleRecord, 'name' | 'type' | 'resizable' | 'ondemand' | 'breaks' | 'defaultBreak'> {
  return { name: info.name, type: info.type, resizable: info.resizable, ondemand: info.ondemand, breaks: info.breaks, defaultBreak: info.defaultBreak };
}

/** How many of a console's newest audit records an upload of local records looks through for
 *  ones a crash kept out of the registry's mark (relay-side.ts localAudit). */
export const LOCAL_AUDIT_LOOKBACK = 256;

/** The audit's name for a local user: the cloud's user of that name when the relay had the key
 *  from the cloud (`alice`, `sso:alice`); else `local:<name>@<relay>` (relay.yaml's emergency
 *  users are no cloud users, and another relay's `root` is not this one's). */
export function localUser(r: { user: string; source?: string }, relay: string): string {
  if (r.source === 'cloud') {
    const p = parsePrincipal(r.user);
    if (p.ref && (p.ref.kind === 'user' || p.ref.kind === 'sso')) return formatPrincipal(p.ref);
  }
  return `local:${r.user.toLowerCase()}@${relay}`;
}
