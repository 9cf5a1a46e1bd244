// The embedded cloud's ports: filesystem stores under the data directory (segments/ unless an S3
// bucket holds them, hot/, audit/ and audit-heads/, consoles.json, relays.json, tokens,
// access.json, ssh-keys.json), in-memory lock and session state: sessions end with their connections, and fences
// are re-learned from relays, checked against the highest one the console registry kept
// (relay-side.ts fenceClaim).
// Who is signed in on each socket (ports.connections) is the node server's to say. The data
// disk's state (full or not: adapters/fs/data-disk.ts) is ports.health, for /healthz.
import type { CloudPorts, ConnectionSender, SegmentStore } from '../core/ports.ts';
import { FsAuditStore } from '../adapters/fs/audit-store.ts';
import { FsConsoleRegistry } from '../adapters/fs/console-registry.ts';
import { FsRelayRegistry } from '../adapters/fs/relay-registry.ts';
import { FsHotTail } from '../adapters/fs/hot-tail.ts';
import { FsSegmentStore } from '../adapters/fs/segment-store.ts';
import { FsTokenStore } from '../adapters/fs/token-store.ts';
import { FsAccessStore } from '../adapters/fs/access-store.ts';
import { FsKeyStore } from '../adapters/fs/key-store.ts';
import { MemoryLockStore } from '../adapters/memory/lock-store.ts';
import { MemorySessionStore } from '../adapters/memory/session-store.ts';
import { dataDisk } from '../adapters/fs/data-disk.ts';
import type { Log } from '../../protocol/log.ts';

/** `segments` replaces the filesystem segment store (`cloudcons cloud --s3-bucket`); `disk`: where
 *  the data disk's state is logged, how often a full one is probed for room (DISK_PROBE_MS). */
export function embeddedPorts(dataDir: string, sender: ConnectionSender, segments?: SegmentStore, disk: { log?: Log; probeMs?: number } = {}): { ports: CloudPorts; close(): void } {
  const dd = dataDisk(dataDir);
  if (disk.log) dd.log = disk.log;
  if (disk.probeMs !== undefined) dd.probeMs = disk.probeMs;
  dd.lookAtStart();
  const hot = new FsHotTail(dataDir);
  const consoles = new FsConsoleRegistry(dataDir);
  const relays = new FsRelayRegistry(dataDir);
  const audit = new FsAuditStore(dataDir);
  const ports: CloudPorts = {
    locks: new MemoryLockStore(),
    sessions: new MemorySessionStore(),
    consoles,
    relays,
    segments: segments ?? new FsSegmentStore(dataDir),
    hot,
    audit,
    tokens: new FsTokenStore(dataDir),
    access: new FsAccessStore(dataDir),
    keys: new FsKeyStore(dataDir),
    sender,
    clock: { now: () => Date.now() },
    health: { problems: () => { const p = dd.problem(); return p ? [p] : []; } },
  };
  return { ports, close: () => { hot.close(); audit.close(); consoles.close(); relays.close(); dd.close(); } };
}
