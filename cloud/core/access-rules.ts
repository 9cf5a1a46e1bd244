// The access rules as the core applies them (acl.ts decides): the stored document, cached per
// process for accessCacheMs; the decision on an action; the refusals (audited); and what a user may
// know exists. A change is stored here; the sessions it affects are swept by rechecks.ts.
import { BadParameter, Conflict, Forbidden, NotFound } from '../../protocol/errors.ts';
import { CLOUD_STREAM } from '../../protocol/names.ts';
import { decide, explain, isAdmin, parseAccess, type AccessDoc, type Action, type Decision } from './acl.ts';
import { someOf, type CoreContext } from './core-context.ts';
import type { ConsoleRecord, Principal } from './ports.ts';
import { SessionDecisions } from './session-rights.ts';

/** The rules as read: `doc` undefined when none are set (everyone rw); `problem` when the stored
 *  ones do not load. */
export interface Rules { doc?: AccessDoc; version: number; problem?: string }

export class AccessRules {
  private cache?: Rules & { at: number };
  /** What open sessions may do, remembered per rules document (session-rights.ts): what runs per
   *  message (live output, input) matches no rules. */
  readonly sessions = new SessionDecisions();

  constructor(private readonly c: CoreContext) {}

  /** The rules if this process read them at most `maxAgeMs` ago, else undefined (then rules()
   *  reads them): what runs per message takes them from here without waiting for anything. */
  cached(maxAgeMs = this.c.opts.accessCacheMs): Rules | undefined {
    const c = this.cache;
    return c && Date.now() - c.at < maxAgeMs ? c : undefined;
  }

  /** The access rules, read at most every accessCacheMs, or every `maxAgeMs` where a longer age
   *  will do. */
  async rules(maxAgeMs = this.c.opts.accessCacheMs): Promise<Rules> {
    const cached = this.cached(maxAgeMs);
    if (cached) return cached;
    const r = await this.c.p.access.get();
    let doc: AccessDoc | undefined;
    let problem: string | undefined;
    // The store holds checked documents only; one that no longer parses (a hand-edited file, or
    // rules stored before names were checked as strictly) allows nothing but admins rather than everything.
    try { doc = r.doc === undefined ? undefined : parseAccess(r.doc); } catch (e) {
      doc = parseAccess({ default: 'none' });
      problem = `the stored rules (version ${r.version}) do not load, so only admin tokens and admin groups may act until an admin stores them again (access show, access set): ${(e as Error).message}`;
      if (this.cache?.problem === undefined || this.cache.version !== r.version) console.error(`access: ${problem}`);
    }
    this.cache = { at: Date.now(), doc, version: r.version, problem };
    return this.cache;
  }

  /** Replaces the access rules (admins only), audited. `expect`: the version the change was made
   *  against (Conflict if someone changed them since); omitted: whatever is stored. */
  async store(who: Principal, raw: unknown, expect?: number): Promise<{ version: number; doc: AccessDoc }> {
    await this.requireAdmin(who, 'change the access rules');
    let doc: AccessDoc;
    try { doc = parseAccess(raw); } catch (e) { throw new BadParameter(`access rules: ${(e as Error).message}`); }
    const cur = await this.c.p.access.get();
    if (expect !== undefined && expect !== cur.version) throw new Conflict(`the access rules changed meanwhile (version ${cur.version}, not ${expect}): read them again`);
    if (!(await this.c.p.access.put(raw, cur.version))) throw new Conflict('the access rules changed meanwhile: try again');
    this.cache = undefined;
    await this.c.audit(CLOUD_STREAM, 'access.change', undefined, { user: who.name, detail: `access rules version ${cur.version + 1}: ${doc.rules.length} rules, admins ${doc.admins.join(',') || '(none)'}, default ${doc.default}` });
    return { version: cur.version + 1, doc };
  }

  /** The decision on `action`, for the user `who` (admin tokens and admins may do everything). */
  async may(who: Principal, console: string, action: Action): Promise<Decision> {
    if (who.kind !== 'user') return { allow: false, why: 'relay tokens cannot use consoles' };
    return decide((await this.rules()).doc, who, console, action);
  }

  /** Throws Forbidden (and audits the refusal on the console) unless `who` may `action` `console`. */
  async requireAccess(who: Principal, console: string, action: Action): Promise<void> {
    const d = await this.may(who, console, action);
    if (d.allow) return;
    await this.c.userAudit(who.name, console, 'access.denied', undefined, { detail: `${action}: ${d.why}` });
    throw new Forbidden(`user ${who.name} may not ${action} ${console}: ${d.why}`);
  }

  async isAdmin(who: Principal): Promise<boolean> {
    return who.kind === 'user' && isAdmin((await this.rules()).doc, who);
  }

  async requireAdmin(who: Principal, what: string): Promise<void> {
    if (await this.isAdmin(who)) return;
    await this.c.userAudit(who.name, CLOUD_STREAM, 'access.denied', undefined, { detail: `${what}: not an admin` });
    throw new Forbidden(`user ${who.name} may not ${what}: only admins may (an admin token, or admins: in the access rules)`);
  }

  /** `cloudcons access check`: every action's decision for a user (with groups) on a console. */
  async checkAccess(who: Principal, subject: { name: string; groups?: string[]; admin?: boolean }, console: string) {
    if (subject.name !== who.name) await this.requireAdmin(who, `check the access of ${subject.name}`);
    const { doc, version, problem } = await this.rules();
    return { ...explain(doc, subject.name === who.name ? { name: who.name, groups: who.groups, admin: who.admin } : subject, console), version, rules: problem ?? (doc ? 'set' : 'none (every user may do everything)') };
  }

  // ================================================================== what a user may know exists

  /** The registered consoles `who` may list (all of them when `who` is omitted: internal use). */
  async listable(who?: Principal): Promise<ConsoleRecord[]> {
    const out: ConsoleRecord[] = [];
    for (const rec of await this.c.p.consoles.list()) if (!who || (await this.may(who, rec.name, 'list')).allow) out.push(rec);
    return out;
  }

  /** Their names, sorted: no lookups per console. */
  async listableNames(who?: Principal): Promise<string[]> {
    return (await this.listable(who)).map((r) => r.name).sort();
  }

  /** NotFound unless `who` may list the console and `lookup` finds it. The rules decide first,
   *  before any lookup: a name the user may not list costs exactly what an unknown one does, so
   *  neither the answer nor its time says whether it exists. */
  async requireVisible<T>(who: Principal, name: string, lookup: () => Promise<T | undefined | false>): Promise<T> {
    if ((await this.may(who, name, 'list')).allow) {
      const found = await lookup();
      if (found) return found;
    }
    throw new NotFound(await this.unknownConsoleMessage(name, who));
  }

  async unknownConsoleMessage(name: string, who: Principal): Promise<string> {
    const known = await this.listableNames(who);
    return `console ${name} not found; known: ${known.length ? someOf(known, 50) : '(none)'}`;
  }
}
