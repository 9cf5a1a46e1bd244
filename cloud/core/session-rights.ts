// What an open session may do, decided again with the access rules wherever it acts or is shown
// something: for every viewer at every live message (live-output.ts), at every input, break and
// resize of a writer (client-sessions.ts), at its heartbeat and the re-checks (rechecks.ts). So it
// costs no I/O and, for a rules document already seen, no rule matching. A session carries the
// principal it signed in with (Session.who) for this.
import { decide, type AccessDoc, type Action, type Decision, type Subject } from './acl.ts';
import type { Session } from './ports.ts';

/** Whom a session's rights are decided for: the principal it signed in with, or the bare user
 *  name for a session stored before sessions carried it (no groups, not admin: the stricter). */
export function sessionSubject(s: Session): Subject {
  return s.who ?? { name: s.user };
}

/** Stands for "no rules are set" as a key (a WeakMap takes objects only). */
const NO_RULES = {};

/** Decisions of the rules for open sessions, remembered per rules document and session. decide
 *  (acl.ts) is pure in the document, the subject, the console and the action; a document is never
 *  changed in place (a change, or the cache read again, brings a new object) and a session's
 *  principal and console never change; so a remembered decision is the one decide would make
 *  again. Looked up by session id: no key is built per message. At most `max` sessions per
 *  document; then it starts afresh. */
export class SessionDecisions {
  private readonly byDoc = new WeakMap<object, Map<string, Partial<Record<Action, Decision>>>>();
  constructor(private readonly max = 10_000) {}

  /** May session `s` `action` its console, by rules `doc` (undefined: none set)? */
  decide(doc: AccessDoc | undefined, s: Session, action: Action): Decision {
    let m = this.byDoc.get(doc ?? NO_RULES);
    if (!m) this.byDoc.set(doc ?? NO_RULES, (m = new Map()));
    let mine = m.get(s.id);
    if (!mine) {
      if (m.size >= this.max) m.clear();
      m.set(s.id, (mine = {}));
    }
    return (mine[action] ??= decide(doc, sessionSubject(s), s.console, action));
  }

  /** Whether `s` may still see its console: a spy needs `spy`; a writer `spy` or `attach`. */
  sees(doc: AccessDoc | undefined, s: Session): boolean {
    return this.decide(doc, s, 'spy').allow || (s.mode === 'rw' && s.fence !== undefined && this.decide(doc, s, 'attach').allow);
  }
}
