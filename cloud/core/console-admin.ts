// Consoles as users and admins see and manage them: who is attached, the list (what a user may
// see of it), one console, down and up by hand, and the admins' rm and move of a console's name.
import { BadParameter, Conflict, NotFound } from '../../protocol/errors.ts';
import type { Viewer } from '../../protocol/messages.ts';
import { CLOUD_STREAM } from '../../protocol/names.ts';
import { checkUserName } from '../../protocol/principal.ts';
import { relayMayPublish, type Action } from './acl.ts';
import type { AccessRules } from './access-rules.ts';
import type { CoreContext } from './core-context.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { ConsoleRecord, Principal } from './ports.ts';

export interface ConsoleView extends ConsoleRecord {
  writer?: string;
  spies: number;
  viewers: Viewer[];
}

/** Who is attached to `console`, writer or spy. */
export async function viewersOf(c: CoreContext, console: string): Promise<Viewer[]> {
  const [lock, sessions] = await Promise.all([c.p.locks.get(console), c.p.sessions.byConsole(console)]);
  // A lapsed lease is nobody's: its holder is listed as a spy until it takes the lock again.
  const held = lock.expiresAt > c.now();
  return sessions.map((s) => ({
    session: s.id, user: s.user, since: s.since, client: s.client,
    mode: s.mode === 'rw' && lock.session === s.id && held ? 'rw' as const : 'spy' as const,
  }));
}

export class ConsoleAdmin {
  constructor(private readonly c: CoreContext, private readonly access: AccessRules, private readonly life: Lifecycle) {}

  async who(console: string): Promise<Viewer[]> { return viewersOf(this.c, console); }

  /** The consoles `who` may list (every console when `who` is omitted: internal use). */
  async listConsoles(who?: Principal): Promise<ConsoleView[]> {
    const out: ConsoleView[] = [];
    for (const rec of await this.access.listable(who)) out.push(await this.view(rec));
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The names of the consoles `who` may list (all when omitted), without their viewers and
   *  writer: what grep and audit verify start from, with no lookups per console. */
  async consoleNames(who?: Principal): Promise<string[]> { return this.access.listableNames(who); }

  /** `cloudcons console down|up NAME`: tells the console's relay to close it until `up` (or to
   *  bring it up now, also ending a flap hold). Remembered, so a relay that restarts keeps it down. */
  async consoleCtl(who: Principal, name: string, op: 'down' | 'up'): Promise<ConsoleView> {
    const rec = await this.access.requireVisible(who, name, () => this.c.p.consoles.get(name));
    await this.access.requireAccess(who, name, op);
    if (!rec.relayConn) throw new Conflict(`console ${name}: its relay ${rec.relay} is not connected, so it cannot be taken ${op} now`);
    const next: ConsoleRecord = { ...rec };
    if (op === 'down') next.adminDown = { by: who.name, at: this.c.now() }; else delete next.adminDown;
    if (!(await this.c.p.consoles.putIf(next, rec.relay))) throw new Conflict(`console ${name} changed meanwhile (moved or removed): look again (cloudcons ls) and retry`);
    await this.c.audit(name, `console.${op}.request`, undefined, { user: who.name, detail: `${op} requested by ${who.name}` });
    if (!(await this.c.toRelay(name, rec.relayConn, { t: 'ctl', c: name, op, by: who.name }))) throw new Conflict(`console ${name}: its relay ${rec.relay} went away; try again`);
    return this.view(next);
  }

  /** `cloudcons console rm NAME` (admins): frees the name, so another relay may register it. Its
   *  stored output and audit trail are evidence and stay (replay, audit and export still work).
   *  Refused while its relay is connected and publishes it: it would register it again at once;
   *  take it out of that relay's config first (or stop the relay), or move it. */
  async removeConsole(who: Principal, name: string): Promise<ConsoleView> {
    await this.access.requireAdmin(who, `remove console ${name}`);
    const rec = await this.c.p.consoles.get(name);
    if (!rec) throw new NotFound(await this.access.unknownConsoleMessage(name, who));
    const refuse = (owner: ConsoleRecord) => new Conflict(`console ${name}: relay ${owner.relay} is connected and publishes it, and would register it again at once: take it out of relay ${owner.relay}'s config (or stop that relay) first, or move it with cloudcons console move`);
    if (rec.relayConn) throw refuse(rec);
    if (!(await this.c.p.consoles.remove(name, rec.relay))) {
      const now = await this.c.p.consoles.get(name);
      if (now?.relayConn) throw refuse(now);
      throw new Conflict(`console ${name} changed meanwhile${now ? ` (it belongs to relay ${now.relay})` : ' (it was removed)'}: look again (cloudcons ls) and retry`);
    }
    const detail = `removed by ${who.name}: the name was relay ${rec.relay}'s and is free now; its output and audit are kept`;
    await this.c.audit(name, 'console.remove', undefined, { user: who.name, detail });
    await this.c.auditCloud('console.remove', who.name, `console ${name}: ${detail}`);
    await this.c.notice(name, `[cloudcons: console ${name} was removed by ${who.name}]`);
    return this.view({ ...rec, state: 'down', reason: `removed by ${who.name}` });
  }

  /** `cloudcons console move NAME --relay R` (admins): the name becomes relay R's, which publishes
   *  it at its next hello (its next connection). If the relay it belonged to is connected, the
   *  console is taken down there and its messages about it are refused from now on. */
  async moveConsole(who: Principal, name: string, raw: string): Promise<ConsoleView> {
    await this.access.requireAdmin(who, `move console ${name}`);
    // A relay is who its token says, and token names are read in normal form (protocol/principal.ts):
    // `Edge1` is relay edge1, and a name no relay token could have would orphan the console.
    const c = checkUserName(raw);
    if (c.why !== undefined) throw new BadParameter(`relay: ${c.why}`);
    const to = c.name;
    const rec = await this.c.p.consoles.get(name);
    if (!rec) throw new NotFound(await this.access.unknownConsoleMessage(name, who));
    if (rec.relay === to) throw new Conflict(`console ${name} already belongs to relay ${to}`);
    if (!relayMayPublish((await this.access.rules()).doc, to, name)) throw new Conflict(`console ${name}: the access rules (relays:) do not let relay ${to} publish it: change them first (cloudcons access set)`);
    const reason = `moved from relay ${rec.relay} to relay ${to} by ${who.name}: up when relay ${to} connects with it`;
    const next: ConsoleRecord = { ...rec, relay: to, state: 'down', since: this.c.now(), reason };
    delete next.relayConn;
    if (!(await this.c.p.consoles.putIf(next, rec.relay))) throw new Conflict(`console ${name} changed meanwhile: look again (cloudcons ls) and retry`);
    await this.c.audit(name, 'console.move', undefined, { user: who.name, detail: reason });
    await this.c.auditCloud('console.move', who.name, `console ${name}: ${reason}`);
    // The old relay lets go of the device (a BMC takes one SOL session), and says no more about it.
    if (rec.relayConn) await this.c.sendRelay(rec.relayConn, { t: 'ctl', c: name, op: 'down', by: who.name });
    if (rec.state !== 'down' || rec.relayConn) await this.life.consoleStateChanged(name, 'down', reason);
    return this.view(next);
  }

  async getConsole(who: Principal, name: string): Promise<ConsoleView> {
    return this.view(await this.access.requireVisible(who, name, () => this.c.p.consoles.get(name)));
  }

  /** Console must be known (registered, or with stored output or audit records: a removed
   *  console's are evidence, and stay readable) and `who` allowed `action` on it.
   *  A console `who` may not list is reported as unknown (its name is not given away). */
  async requireKnown(who: Principal, name: string, action: Action): Promise<void> {
    await this.access.requireVisible(who, name, async () => !!(await this.c.p.consoles.get(name)) || (await this.c.log.consoles()).includes(name)
      || (name !== CLOUD_STREAM && (await this.c.p.audit.list(name, { limit: 1 })).length > 0));
    await this.access.requireAccess(who, name, action);
  }

  private async view(rec: ConsoleRecord): Promise<ConsoleView> {
    const viewers = await this.who(rec.name);
    const { relayConn: _hidden, fence: _internal, ...pub } = rec;
    return { ...pub, writer: viewers.find((v) => v.mode === 'rw')?.user, spies: viewers.filter((v) => v.mode === 'spy').length, viewers };
  }
}
