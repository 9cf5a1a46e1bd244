// The embedded cloud's ports: filesystem stores under the data directory, in-memory lock and
// session state (sessions end with their connections; fences are re-learned from relays).
import type { CloudPorts, ConnectionSender } from '../core/ports.ts';
import { FsAuditStore } from '../adapters/fs/audit-store.ts';
import { FsConsoleRegistry } from '../adapters/fs/console-registry.ts';
import { FsOutputStore } from '../adapters/fs/output-store.ts';
import { FsTokenStore } from '../adapters/fs/token-store.ts';
import { MemoryLockStore } from '../adapters/memory/lock-store.ts';
import { MemorySessionStore } from '../adapters/memory/session-store.ts';

export function embeddedPorts(dataDir: string, sender: ConnectionSender): { ports: CloudPorts; close(): void } {
  const output = new FsOutputStore(dataDir);
  const audit = new FsAuditStore(dataDir);
  const ports: CloudPorts = {
    locks: new MemoryLockStore(),
    sessions: new MemorySessionStore(),
    consoles: new FsConsoleRegistry(dataDir),
    output,
    audit,
    tokens: new FsTokenStore(dataDir),
    sender,
    clock: { now: () => Date.now() },
  };
  return { ports, close: () => { output.close(); audit.close(); } };
}
