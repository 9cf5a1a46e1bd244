// Whether an open session may still see its console, decided again for every viewer at every live
// message (live-output.ts fanOut): so it costs no I/O and, for a rules document already seen, no rule
// matching. A session carries the principal it signed in with (Session.who) for this.
import { decide, type AccessDoc, type Subject } from './acl.ts';
import type { Session } from './ports.ts';

/** Whom a session's rights are decided for: the principal it signed in with, or the bare user
 *  name for a session stored before sessions carried it (no groups, not admin: the stricter). */
export function sessionSubject(s: Session): Subject {
  return s.who ?? { name: s.user };
}

/** Decisions "may this session still see its console" (a spy: `spy`; a writer: `spy` or
 *  `attach`), remembered per rules document: a new document (a change, or the cache read again)
 *  starts afresh. At most `max` remembered per document; then it starts afresh too. */
export class SeeCache {
  private readonly byDoc = new WeakMap<AccessDoc, Map<string, boolean>>();
  constructor(private readonly max = 10_000) {}

  sees(doc: AccessDoc | undefined, s: Session): boolean {
    const who = sessionSubject(s);
    if (!doc || who.admin) return true;
    const writer = s.mode === 'rw' && s.fence !== undefined;
    let m = this.byDoc.get(doc);
    if (!m) this.byDoc.set(doc, (m = new Map()));
    const key = JSON.stringify([s.console, writer, who.name, who.groups ?? []]);
    let v = m.get(key);
    if (v === undefined) {
      v = decide(doc, who, s.console, 'spy').allow || (writer && decide(doc, who, s.console, 'attach').allow);
      if (m.size >= this.max) m.clear();
      m.set(key, v);
    }
    return v;
  }
}
