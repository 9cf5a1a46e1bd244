// `cloudcons relays`: the relays as an operator sees them, from the relay registry (what each runs,
// whether it is connected, its spool's backlog, its last upload) and the console registry (its
// consoles). Admins see every relay; any other user sees the relays that publish a console they may
// list, each with only those consoles (the access rules' `list`, as `cloudcons ls` decides it), and
// nothing of the others: not even that they exist.
import type { AccessRules } from './access-rules.ts';
import type { CoreContext } from './core-context.ts';
import type { Principal, RelayRecord } from './ports.ts';

export interface RelayView {
  name: string;
  version?: string;
  protocol?: number;
  os?: string;
  arch?: string;
  connected: boolean;
  /** While connected: since when, without a break. Else: when it last connected. */
  connectedSince?: number;
  /** When it last said something (hello, status) or went away. */
  lastSeen?: number;
  /** Its consoles that the asker may list, sorted. */
  consoles: string[];
  /** The backlog its last status reported (`reportedAt`): output its spool holds that the cloud has
   *  not stored yet, and when the oldest of it was read and how long ago that is now. */
  spool?: { bytes: number; oldestUnsentAt?: number; oldestUnsentMs?: number; reportedAt: number };
  /** When the cloud last stored a segment it uploaded. */
  lastUpload?: number;
  /** Local SSH access at the relay turned off by an admin (`cloudcons relay-local off`): by whom, when. */
  localOff?: { by: string; at: number };
}

export class RelayList {
  constructor(private readonly c: CoreContext, private readonly access: AccessRules) {}

  async listRelays(who: Principal): Promise<RelayView[]> {
    const admin = await this.access.isAdmin(who);
    const consoles = new Map<string, string[]>();
    for (const rec of admin ? await this.c.p.consoles.list() : await this.access.listable(who)) {
      consoles.set(rec.relay, [...(consoles.get(rec.relay) ?? []), rec.name]);
    }
    const records = new Map((await this.c.p.relays.list()).map((r) => [r.name, r]));
    // A relay known only from its consoles (moved to it before it ever connected, or registered
    // before relays were recorded) is listed too, with nothing else known.
    const names = admin ? new Set([...records.keys(), ...consoles.keys()]) : new Set(consoles.keys());
    const now = this.c.now();
    return [...names].sort().map((name) => this.view(records.get(name) ?? { name }, (consoles.get(name) ?? []).sort(), now));
  }

  private view(r: RelayRecord, consoles: string[], now: number): RelayView {
    const s = r.spool;
    const spool = s && { bytes: s.bytes, ...(s.oldestAt !== undefined && s.bytes ? { oldestUnsentAt: s.oldestAt, oldestUnsentMs: Math.max(0, now - s.oldestAt) } : {}), reportedAt: s.at };
    return {
      name: r.name, version: r.version, protocol: r.protocol, os: r.os, arch: r.arch, connected: r.conn !== undefined,
      connectedSince: r.connectedSince, lastSeen: r.lastSeen, consoles, ...(spool ? { spool } : {}), lastUpload: r.lastUpload, ...(r.localOff ? { localOff: r.localOff } : {}),
    };
  }
}
