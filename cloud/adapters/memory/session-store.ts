// In-memory SessionStore for the embedded cloud (sessions end with their connections anyway).
import type { Session, SessionStore } from '../../core/ports.ts';

export class MemorySessionStore implements SessionStore {
  private readonly byId = new Map<string, Session>();

  async put(s: Session): Promise<void> { this.byId.set(s.id, { ...s }); }
  async get(id: string): Promise<Session | undefined> { const s = this.byId.get(id); return s && { ...s }; }
  async delete(id: string): Promise<void> { this.byId.delete(id); }
  /** Oldest first, as the port says (insertion order is not: a session may be put again). */
  async byConsole(console: string): Promise<Session[]> {
    return [...this.byId.values()].filter((s) => s.console === console).sort((a, b) => a.since - b.since).map((s) => ({ ...s }));
  }
  async byConn(conn: string): Promise<Session[]> {
    return [...this.byId.values()].filter((s) => s.conn === conn).map((s) => ({ ...s }));
  }
}
