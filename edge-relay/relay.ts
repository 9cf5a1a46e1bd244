// The edge relay: keeps every configured console open (one Supervisor each), appends every byte
// of output to its on-disk spool first (spool.ts), streams it live over ONE outbound WebSocket that
// multiplexes all consoles, and uploads the spool's sealed segments to the cloud over HTTP (a
// segment leaves the spool only once the cloud confirmed storing it). Input from the cloud is
// written to a device only if its fence is not older than the newest fence seen for that console.
// Consoles come and go at run time (`reload`, on SIGHUP from cli/run-relay.ts): the untouched ones
// are left alone, the others opened, reopened or closed with their output still uploaded.
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { decode, encode, PROTOCOL_LIMITS } from '../protocol/codec.ts';
import { cloudToRelay, type CloudToRelay, type ConsoleInfo, type Out, type RelayToCloud } from '../protocol/messages.ts';
import { parseListen, type ConsoleConfig, type RelayConfig } from './config.ts';
import { createDriver } from './drivers/index.ts';
import { Scratch, Spool, type ConsoleSpool, type SealedSegment, type SpoolOptions } from './spool.ts';
import { Supervisor } from './supervisor.ts';
import { breakTable, describeBreak } from './breaks.ts';
import { segmentKey, sliceSegment, type Chunk } from '../protocol/segment.ts';
import { isConsoleName } from '../protocol/names.ts';
import { checkPlainUrl, cloudTls, type CloudTls, type TlsTrust } from '../protocol/tls.ts';
import { relayAbout } from './about.ts';
import { defaultSpoolDir, NAME_FILE, recordName, relayName } from './relay-name.ts';
import { CloudAccess } from './local/cloud-access.ts';
import type { Log } from '../protocol/log.ts';
import { AuditJournal, DEFAULT_JOURNAL_BYTES } from './local/audit-journal.ts';
import { crashAtAuditOk, testAuditHook } from './local/test-audit-hook.ts';
import type { RelayHealth, RelayMetrics } from './metrics.ts';
import { combineSources, type AccessSource, type LocalAudit, type LocalAuditRecord } from './local/types.ts';
import { ConfigAccess } from './local/config-access.ts';
import { LocalLocks } from './local/local-lock.ts';
import { LocalSshServer, type LocalConsoles } from './local/ssh-server.ts';
import { loadHostKey, type HostKey } from './local/ssh-keys.ts';

export interface RelayOptions {
  cloudUrl: string;
  token: string;
  /** How to trust the cloud's certificate (CA file or fingerprint pin), and whether plain http:// to
   *  a host that is not loopback is allowed (protocol/tls.ts). Default: the system's CAs, no. */
  tls?: TlsTrust;
  /** Spool directory. Default: the config's relay.spool.dir, else STATE/spool/<relay name>, or
   *  STATE/spool/default without a name in the config (relay-name.ts defaultSpoolDir: STATE is
   *  systemd's $STATE_DIRECTORY, else $XDG_STATE_HOME/cloudcons). */
  spoolDir: string;
  /** Seal after this many bytes / when the oldest byte is this old; spool disk cap. Defaults (also
   *  from the config's relay.spool): 1 MiB, 60 s, 1 GiB. */
  segmentBytes: number;
  segmentMs: number;
  spoolCapBytes: number;
  /** Output held in memory (all consoles) while the spool's disk refuses writes; past it the
   *  oldest is dropped and recorded as a gap. Default (also from the config's relay.spool): 16 MiB. */
  spoolMemoryBytes: number;
  /** A console's local audit journal at most (local/audit-journal.ts: past it local input is
   *  refused). Default (also from the config's relay.spool.localAuditBytes): 16 MiB. */
  localAuditMaxBytes: number;
  /** An upload of local audit records the cloud has not confirmed is sent again after this long
   *  (ms; also at every welcome). Default 30 s. */
  localAuditRetryMs: number;
  /** Segment uploads in flight at once (different consoles). Default 4. */
  uploadConcurrency: number;
  /** One upload request (the cloud's answer, a presigned PUT) is given up after this long and
   *  retried later (ms). Default 60 s. */
  uploadTimeoutMs: number;
  /** Upload retry backoff bounds. Defaults 1 s and 60 s. */
  uploadMinBackoffMs: number;
  uploadMaxBackoffMs: number;
  /** Segments the cloud refused as different from output it stored first, kept per console as
   *  `<segment>.conflict` in the spool for an operator (the oldest deleted past it). Default 16. */
  conflictKeep: number;
  /** Pause sending output while the socket has more than this queued. Default 1 MiB. */
  sendHighWaterBytes: number;
  /** Under continuous output, gather reads this long into one message. Default 1 ms. */
  batchMs: number;
  /** WebSocket URL when it is not the cloud URL's /v1/relay (API Gateway's stage URL). */
  wsUrl?: string;
  /** Open a new connection and move over to it (make-before-break) after this long on one (ms);
   *  API Gateway closes WebSockets at 2 hours. 0 never. Default 110 minutes. */
  maxConnectionMs: number;
  /** Application heartbeat interval; the link is dropped after 3 silent intervals. Default 20 s. */
  heartbeatMs: number;
  /** Tell the cloud the spool's backlog (`status`, for `cloudcons relays`) this often, and once
   *  after each welcome. Default 30 s. */
  statusMs: number;
  /** Reconnect backoff bounds (full jitter). Defaults 250 ms and 30 s. The backoff starts over
   *  only after a connection was welcomed and lasted `maxBackoffMs`: one the cloud closes right
   *  after its welcome (or the relay gives up on) counts as a failed attempt. */
  minBackoffMs: number;
  maxBackoffMs: number;
  log: Log;
  /** Counted into (served by metrics.ts, when configured). */
  metrics?: RelayMetrics;
  /** relay.yaml's path: local.users' authorizedKeys files are relative to its folder. */
  configFile?: string;
  /** Who may sign in over local SSH (local.ssh), and with what rights. Default: relay.yaml's
   *  local.users (local/config-access.ts). */
  localAccess?: AccessSource;
  /** Where local sessions' actions are recorded before they take effect. Default: the log, at
   *  debug level (the durable journal in the spool is another part of issue 17). */
  localAudit?: LocalAudit;
}
/** Console infos per hello message (a frame may hold 32 KiB). */
const HELLO_BATCH_BYTES = 24 * 1024;
/** Input within this long makes a console "typed on": its output is never gathered (echo). */
const TYPING_MS = 2000;
/** Output waiting below this size is sent at once, never held for batching. */
const BATCH_MIN_BYTES = 2048;

/** Live output kept in memory per console while the socket is busy (at most 2 MiB, above the
 *  socket's high-water mark, so a flood to a fast viewer never leaves memory; and 8 MiB over all
 *  consoles); past it, it is read back from the spool instead. */
const MAX_QUEUED_BYTES = 2 * 1024 * 1024;
const MAX_QUEUED_TOTAL = 8 * 1024 * 1024;

export const RELAY_DEFAULTS = {
  segmentBytes: 1024 * 1024, segmentMs: 60_000, spoolCapBytes: 1024 ** 3, spoolMemoryBytes: 16 * 1024 * 1024,
  uploadConcurrency: 4, uploadTimeoutMs: 60_000, uploadMinBackoffMs: 1000, uploadMaxBackoffMs: 60_000, conflictKeep: 16,
  localAuditMaxBytes: DEFAULT_JOURNAL_BYTES, localAuditRetryMs: 30_000,
  sendHighWaterBytes: 1024 * 1024, batchMs: 1, maxConnectionMs: 110 * 60_000, heartbeatMs: 20_000, statusMs: 30_000, minBackoffMs: 250, maxBackoffMs: 30_000,
};

interface Con {
  name: string;
  sup: Supervisor;
  /** Its settings as they decide its supervisor (consoleKey): a reload reopens it when they change. */
  key: string;
  /** Taken out of the config by a reload: closed, and kept until what it captured is uploaded. */
  removed?: boolean;
  /** Found in the spool at start, not in the config: only its upload is left (adoptOrphans). */
  orphan?: boolean;
  /** The supervisor a reload replaced or removed, until its device is closed. */
  stopping?: Promise<void>;
  spool: ConsoleSpool;
  /** Output not sent yet on the current link, while it is contiguous from `sent` (else empty:
   *  the pump reads the spool). */
  queue: Chunk[];
  queued: number;
  info: ConsoleInfo;
  /** The spool disk refuses this console's writes (said as an up console's reason). */
  spoolTrouble?: string;
  /** Newest fence seen; input with an older fence is stale. */
  fence: number;
  /** Offset up to which output has been sent on the current link. */
  sent: number;
  /** The cloud welcomed this console on the current link (its offsets are confirmed). */
  live: boolean;
  /** Someone watches it (the cloud said so); only matters while the cloud's live mode is `watched`. */
  watched: boolean;
  /** Unwatched, send live up to this offset (the cloud asked once for what is not sealed yet). */
  onceTo: number;
  /** When input for it last arrived; the pump timer gathering a quiet console's output. */
  lastInput: number;
  quietTimer?: NodeJS.Timeout;
  /** Retries a confirm the spool could not do (its disk refused the move, spool.ts SHIFT). */
  confirmTimer?: NodeJS.Timeout;

  pumpSoon: boolean;
  lastSend: number;
  /** Upload state: in flight, consecutive failures, not before this time. */
  uploading: boolean;
  failures: number;
  retryAt: number;
  /** Bytes read from it (cloudcons_relay_bytes_read_total: a plain number on the hot path, read
   *  at scrape time; prom-client's labelled inc hashes its labels at every call, ~0.4 us). */
  read: number;
}

/** A relay's options for config `cfg`, the options given (`opts`, from flags) winning over the
 *  config's relay.spool and the defaults. */
export function relayOptions(cfg: RelayConfig, opts: Partial<RelayOptions> & { cloudUrl: string; token: string }): RelayOptions {
  const sc = cfg.relay?.spool ?? {};
  return {
    ...RELAY_DEFAULTS,
    // relay-name.ts: STATE/spool/<name>, or STATE/spool/default without a name in the config.
    spoolDir: sc.dir ?? (opts.spoolDir ? '' : defaultSpoolDir(cfg.relay?.name).dir),
    ...(sc.segmentBytes ? { segmentBytes: sc.segmentBytes } : {}),
    ...(sc.segmentMs ? { segmentMs: sc.segmentMs } : {}),
    ...(sc.capBytes ? { spoolCapBytes: sc.capBytes } : {}),
    ...(sc.memoryBytes ? { spoolMemoryBytes: sc.memoryBytes } : {}),
    ...(sc.localAuditBytes ? { localAuditMaxBytes: sc.localAuditBytes } : {}),
    log: (l) => console.error(l),
    ...opts,
  };
}

/** What decides a console's supervisor: its settings and the break sequences it offers (the
 *  config's `breaks:` as they apply to it), keys sorted (a mapping written in another order is
 *  the same). */
export function consoleKey(cc: ConsoleConfig, breaks: RelayConfig['breaks']): string {
  const sorted = (v: unknown): unknown => (Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object'
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, sorted(x)])) : v);
  return JSON.stringify(sorted({ cc, breaks: [...breakTable(breaks, cc.breaklist)] }));
}

/** What a reload did (Relay.reload). */
export interface ReloadReport {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** Relay-wide settings that changed in the file but apply only at a restart (each one line). */
  restart: string[];
  /** The token or the trust in the cloud's certificate changed: a new connection was opened with
   *  them (make-before-break), or the next one uses them. */
  link?: string;
}

export class Relay {
  readonly opts: RelayOptions;
  /** Its name: the config's, else the one its spool recorded, else undefined until the cloud's
   *  welcome says its token's (relay-name.ts). */
  name: string | undefined;
  /** Where the name came from (`cloud`: the welcome). */
  nameFrom: 'config' | 'spool' | 'cloud' | undefined;
  private nameRecorded = false;
  private readonly about = relayAbout();
  private statusTimer?: NodeJS.Timeout;
  private readonly boot = randomBytes(8).toString('hex');
  private readonly cons = new Map<string, Con>();
  private ws?: WebSocket;
  private stopped = false;
  private attempt = 0; // dial attempts since a connection last proved healthy
  private welcomedAt = 0; // when the current connection was welcomed (0: not yet)
  private reconnectTimer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private next?: WebSocket; // make-before-break: the connection being opened to replace `ws`
  private redialTimer?: NodeJS.Timeout;
  private redialFor?: WebSocket; // the connection the redial timer is for
  private pumpTimer?: NodeJS.Timeout;
  private lastHeard = 0;
  private dialled = false; // connect() ran before: the next plain dial is a reconnect
  private pingId = 0;
  readonly spool: Spool;
  /** The cloud's last local-access snapshot, kept in the spool folder (local/cloud-access.ts): an
   *  AccessSource for the relay's SSH server. */
  readonly cloudAccess: CloudAccess;
  /** What local (break-glass) sessions did (issue 17): on disk until the cloud chained it. */
  readonly localAudit: AuditJournal;
  /** Local audit uploads sent on the current link and not confirmed yet: console -> when sent. */
  private auditSent = new Map<string, number>();
  private auditTimer?: NodeJS.Timeout;
  private stopAuditHook = () => {};
  private uploadTimer?: NodeJS.Timeout;
  /** Consoles with output to send at the end of this event-loop turn. */
  private due: Con[] = [];
  /** Sends every console's pending output in one go: with many busy consoles, one socket write
   *  per turn instead of one per message. */
  private readonly pumpDue = (): void => {
    const list = this.due;
    this.due = [];
    this.corked(() => { for (const c of list) { c.pumpSoon = false; this.pump(c); } });
  };
  private inFlight = 0;
  private conList: Con[] = []; // the consoles in config order, for going round them
  private uploadNext = -1; // the console kickUploads looked at last
  private readonly uploadScratch: Scratch;
  private directUploads = false; // the cloud said it takes segment bodies itself (until reconnect)
  private presignedSaid = false; // logged that uploads go straight to the store
  private maxQueued = MAX_QUEUED_BYTES;
  /** The options given to the constructor (flags): a reload works out the rest from the config again. */
  private readonly given: Partial<RelayOptions>;
  /** The current connection's live mode (welcome): stream every console, or only watched ones. */
  private liveMode: 'always' | 'watched' = 'always';
  /** The current connection's wish (welcome): gather a quiet console's live output this long. */
  private quietBatchMs = 0;
  /** HTTP and WebSocket connections to the cloud, with its certificate checked as configured. */
  private net: CloudTls;
  /** Local SSH access (local.ssh), its host key and the settings it was started with. */
  private local?: { server: LocalSshServer; hostKey: HostKey; file: string; cfg: string };
  /** Output listeners of local sessions, per console (LocalConsoles.tap). */
  private readonly taps = new Map<string, Set<(d: Buffer) => void>>();
  /** A connection the cloud welcomed is open: the cloud's lock decides who writes. */
  private linkUp = false;

  constructor(cfg: RelayConfig, opts: Partial<RelayOptions> & { cloudUrl: string; token: string }) {
    this.given = opts;
    this.opts = relayOptions(cfg, opts);
    const dflt = opts.spoolDir || cfg.relay?.spool?.dir ? undefined : defaultSpoolDir(cfg.relay?.name);
    if (dflt?.legacy) this.opts.log(`spool: ${this.opts.spoolDir}, the one this relay used when it took the host's name (relay.yaml names none; it now takes its token's)`);
    const named = relayName(cfg.relay?.name, this.opts.spoolDir);
    this.name = named.name;
    this.nameFrom = named.from;
    this.nameRecorded = named.from === 'spool';
    checkPlainUrl(this.opts.cloudUrl, this.opts.tls?.insecure);
    if (this.opts.wsUrl) checkPlainUrl(this.opts.wsUrl, this.opts.tls?.insecure);
    this.net = cloudTls(this.opts.tls);
    this.uploadScratch = new Scratch(this.opts.uploadConcurrency);
    this.spool = new Spool({
      dir: this.opts.spoolDir, segmentBytes: this.opts.segmentBytes, segmentMs: this.opts.segmentMs, capBytes: this.opts.spoolCapBytes,
      memoryBytes: this.opts.spoolMemoryBytes, log: this.opts.log,
    });
    this.spool.onSealed = () => this.kickUploads();
    this.cloudAccess = new CloudAccess(this.opts.spoolDir, this.opts.log); // the spool made its folder
    this.cloudAccess.load(this.name);
    this.localAudit = new AuditJournal({
      dir: this.opts.spoolDir, maxBytes: this.opts.localAuditMaxBytes, log: (l) => this.opts.log(l, { level: 'warn' }),
      offsetOf: (c) => this.cons.get(c)?.spool.next,
    });
    this.localAudit.onRecord = () => this.sendAudit();
    const m = this.opts.metrics;
    m?.watch(() => this.health());
    if (m) this.spool.onLost = (cs, n) => m.lostBytes.inc({ console: cs.name }, n);
    // A disk that refuses the spool's writes: in the console's audit trail too, once, and once
    // when it is over (the log says it in both cases).
    // While it lasts, an up console's reason says so (`cloudcons ls`, the web viewer).
    this.spool.onTrouble = (cs, what) => {
      const c = this.cons.get(cs.name);
      if (!c || c.removed) return;
      this.send({ t: 'event', c: cs.name, what: what ? 'spool.full' : 'spool.ok', detail: what ? `the relay's spool disk refuses writes (${what}): output is held in memory and sent live until it takes them again` : 'the relay\'s spool disk takes writes again' });
      c.spoolTrouble = what ? `relay spool disk full since ${new Date().toISOString()}: output held in memory and sent live` : undefined;
      this.send({ t: 'console', info: this.infoOf(c) });
    };
    // Output waiting to go live (gathered for a quiet console) goes before its active log is
    // sealed: read back from there it would be gone with the segment's upload.
    this.spool.beforeSeal = (cs) => { const c = this.cons.get(cs.name); if (c?.quietTimer) this.flushQuiet(c); };
    for (const [name, cc] of Object.entries(cfg.consoles)) this.cons.set(name, this.newCon(name, cc, cfg.breaks));
    this.adoptOrphans(cfg);
    if (cfg.local?.ssh) this.local = this.localSsh(cfg);
    this.consolesChanged();
  }

  /** The local SSH server for config `cfg` (not listening yet). Its host key: local.ssh.hostKey
   *  (relative: to relay.yaml's folder), else in the spool folder; made at first start. Throws on a host key, an authorizedKeys file
   *  or an epoch counter it cannot use (the start fails, saying which). */
  private localSsh(cfg: RelayConfig): NonNullable<Relay['local']> {
    const s = cfg.local!.ssh!;
    // A relative path is relay.yaml's folder's, as for its other files.
    const file = s.hostKey ? path.resolve(path.dirname(this.opts.configFile ?? 'relay.yaml'), s.hostKey) : path.join(this.opts.spoolDir, 'ssh_host_ed25519_key');
    const hostKey = loadHostKey(file);
    const log = this.opts.log;
    // relay.yaml's own users first, then the cloud's last snapshot (kept in the spool for an outage).
    const access = this.opts.localAccess ?? combineSources(new ConfigAccess(cfg.local?.users, this.opts.configFile ?? 'relay.yaml'), this.cloudAccess);
    // A console's record is durable in its local audit journal (then uploaded and chained into the
    // console's audit), and a debug line. Sign-ins (no console) have no chain to join yet: only the
    // relay's log has them (a relay-wide audit of them is the next step).
    const journal = this.localAudit;
    const audit: LocalAudit = this.opts.localAudit ?? { record: (r) => {
      if (!r.console) { debugLine(r); return; } // the SSH server logs sign-ins at info itself
      journal.record(r);
      debugLine(r);
    } };
    const debugLine = (r: LocalAuditRecord) => log(`local audit: ${r.what} ${r.console || '-'} by ${r.user}${r.fingerprint ? ` (${r.fingerprint})` : ''} session ${r.session}${r.detail ? `: ${r.detail}` : ''}${r.data ? ` [${r.data.length} bytes]` : ''}`, { level: 'debug', event: `local.${r.what}` });
    const listen = parseListen(s.listen)!;
    const consoles: LocalConsoles = {
      relayName: () => this.name,
      list: () => this.consoles().filter((c) => !this.cons.get(c.name)?.removed),
      cloudConnected: () => this.linkUp,
      tap: (name, fn) => {
        let set = this.taps.get(name);
        if (!set) this.taps.set(name, set = new Set());
        set.add(fn);
        return () => { set.delete(fn); if (!set.size && this.taps.get(name) === set) this.taps.delete(name); };
      },
      write: async (name, data) => {
        const c = this.cons.get(name);
        if (!c || c.removed) throw new Error(`console ${name} is not on this relay any more`);
        if (c.info.state !== 'up') throw new Error(`console ${name} is down${c.info.reason ? `: ${c.info.reason}` : ''}`);
        c.lastInput = Date.now();
        await c.sup.write(data);
      },
      sendBreak: async (name, id) => {
        const c = this.cons.get(name);
        if (!c || c.removed) throw new Error(`console ${name} is not on this relay any more`);
        await c.sup.sendBreakSequence(id);
      },
      resize: (name, cols, rows) => { const c = this.cons.get(name); if (c && !c.removed) c.sup.resize(cols, rows); },
    };
    const server = new LocalSshServer({
      host: listen.host, port: listen.port, hostKey, maxAuthTries: s.maxAuthTries, authPerSourcePerMinute: s.authPerSourcePerMinute,
      maxSessions: s.maxSessions, idleTimeoutMs: s.idleTimeout, maxBufferBytes: s.maxBufferBytes, loginGraceMs: s.loginGraceTime,
      access, audit, consoles, locks: new LocalLocks(this.opts.spoolDir), log,
    });
    const users = access instanceof ConfigAccess ? access.summary() : [];
    log(`local ssh: host key ${hostKey.fingerprint} (${file}${hostKey.made ? ', made now' : ''})${users.length ? `; users in relay.yaml: ${users.join(', ')}` : ''}`);
    return { server, hostKey, file, cfg: JSON.stringify(cfg.local) };
  }

  /** Spool folders of consoles the config does not have, holding output the cloud confirmed but
   *  has not got (a reload removed them, and the relay stopped before their upload finished): that
   *  output is uploaded as a removed console's would be, then their spool is closed. Output of one
   *  the cloud never confirmed cannot be placed in its stream: it waits for the console to be in
   *  the config again (said once). */
  private adoptOrphans(cfg: RelayConfig): void {
    let names: string[];
    try { names = fs.readdirSync(this.opts.spoolDir, { withFileTypes: true }).filter((d) => d.isDirectory() && isConsoleName(d.name) && !cfg.consoles[d.name]).map((d) => d.name); } catch { return; }
    for (const name of names) {
      if (!fs.existsSync(path.join(this.opts.spoolDir, name, 'active.json'))) continue;
      const cs = this.spool.open(name);
      if (!cs.sealed.length && !cs.activeBytes) { void this.spool.closeConsole(cs); continue; }
      if (!cs.confirmed) {
        this.opts.log(`spool ${name}: holds ${cs.diskBytes} bytes of console ${name}, which is not in the config and whose offsets the cloud never confirmed: kept until it is in the config again`);
        void this.spool.closeConsole(cs);
        continue;
      }
      // Never started: its supervisor only stands in (the driver is never opened).
      const con = this.newCon(name, { type: 'exec', command: 'true', breakDelayMs: 250 }, undefined);
      con.removed = true;
      con.orphan = true;
      this.cons.set(name, con);
      this.opts.log(`spool ${name}: console ${name} is not in the config (removed by a reload before its upload finished): uploading the ${cs.sealed.length} segment(s) and ${cs.activeBytes} bytes it left`);
    }
  }

  /** A console's state: its spool, stream position and fence, and a supervisor for its settings. */
  private newCon(name: string, cc: ConsoleConfig, breaks: RelayConfig['breaks']): Con {
    const con = {
      name, spool: this.spool.open(name), queue: [], queued: 0, fence: 0, sent: 0, live: false, watched: false, onceTo: 0, lastInput: 0, pumpSoon: false, lastSend: 0,
      uploading: false, failures: 0, retryAt: 0, read: 0,
    } as unknown as Con;
    this.setSupervisor(con, cc, breaks);
    this.opts.metrics?.lostBytes.inc({ console: name }, 0); // a series from the start, at 0
    return con;
  }

  /** Gives `con` a supervisor (and driver) for settings `cc`: at construction, and when a reload
   *  reopens it with changed settings (the old one is stopped by the caller). Its output goes to
   *  the same spool at the same offsets either way. */
  private setSupervisor(con: Con, cc: ConsoleConfig, breaks: RelayConfig['breaks']): Supervisor {
    const name = con.name;
    const driver = createDriver(cc);
    const sup = new Supervisor(name, cc, driver, { breaks });
    con.sup = sup;
    con.key = consoleKey(cc, breaks);
    con.info = {
      name, type: cc.type, state: 'down', since: Date.now(), reason: 'starting', resizable: driver.resizable,
      ...(cc.ondemand ? { ondemand: true } : {}),
      breaks: sup.breakList.map((b) => ({ id: b.id, text: describeBreak(b.def), ...(b.def.confirm ? { confirm: true } : {}) })),
      defaultBreak: sup.defaultBreak,
    };
    // State and events only from the console's current supervisor: one being replaced or removed
    // says its own `stopped` while the relay has already said why. Its output still counts: bytes
    // the device sent while it closed are real output.
    const current = () => con.sup === sup && !con.removed;
    // initcmd runs, idle strings, flapping, manual down/up: the cloud puts them in the audit trail.
    sup.on('event', (ev) => {
      if (!current()) return;
      this.opts.log(`console ${name}: ${ev.detail}`, { console: name, level: ev.what === 'flapping' ? 'warn' : 'info', event: ev.what });
      this.send({ t: 'event', c: name, what: ev.what, detail: ev.detail.slice(0, 1024) });
    });
    // Reads that arrive in the same turn of the event loop go out as one message (a pty hands
    // over at most 4 KiB per read); an idle console's keystroke echo is not delayed by it.
    // Under bulk output (at least BATCH_MIN_BYTES waiting and the last message went out less
    // than `batchMs` ago) reads are gathered for up to `batchMs` into messages of up to 22 KiB:
    // fewer, larger messages.
    sup.on('data', (data: Buffer, ts: number) => {
      // On disk before anything else; if the disk refuses it, held in memory (with its offset)
      // until it takes it, and sent live meanwhile all the same (spool.ts).
      const offset = this.spool.append(con.spool, data, ts);
      // What the console shows decides whether local input is audited redacted.
      this.localAudit.output(name, data);
      con.read += data.length;
      // Local SSH sessions (each skips what its client is too slow for; never waited for).
      const taps = this.taps.get(name);
      if (taps && current()) for (const fn of taps) { try { fn(data); } catch (e) { this.opts.log(`console ${name}: a local session's output: ${(e as Error).message}`, { level: 'warn' }); } }
      if (!this.streams(con)) return;
      if (offset === con.sent + con.queued && con.queued < this.maxQueued) {
        con.queue.push({ offset, ts, data });
        con.queued += data.length;
      } else { con.queue = []; con.queued = 0; } // the pump reads the spool from `sent`
      if (con.pumpSoon) return;
      con.pumpSoon = true;
      const pending = con.spool.next - con.sent;
      // Only bulk output waits: keystroke echoes are small and go at once even back to back.
      const now = Date.now();
      if (this.quietBatchMs && now - con.lastInput > TYPING_MS && pending < PROTOCOL_LIMITS.maxRawChunk) {
        // Nobody types on it: gather (the cloud asked; each message costs there).
        con.quietTimer = setTimeout(() => this.flushQuiet(con), this.quietBatchMs);
        return;
      }
      const busy = pending >= BATCH_MIN_BYTES && pending < PROTOCOL_LIMITS.maxRawChunk && now - con.lastSend < this.opts.batchMs;
      if (busy) { setTimeout(() => { con.pumpSoon = false; this.corked(() => this.pump(con)); }, this.opts.batchMs); return; }
      this.due.push(con);
      if (this.due.length === 1) setImmediate(this.pumpDue);
    });
    sup.on('state', (st: { state: 'up' | 'down'; since: number; reason?: string; failed?: boolean }) => {
      if (!current()) return;
      if (st.state !== con.info.state) this.opts.metrics?.stateChanges.inc({ console: name, state: st.state });
      con.info = { ...con.info, state: st.state, since: st.since, reason: st.reason };
      // Down by a failure (device gone, refused, flapping) is a warning; closed on purpose
      // (stop, manual down, ondemand idle) is not.
      this.opts.log(`console ${name} ${st.state}${st.reason ? `: ${st.reason}` : ''}`, { console: name, level: st.failed ? 'warn' : 'info' });
      // Sent whenever the link is open (not only once welcomed): a change between our hello and
      // the cloud's welcome would otherwise be lost. The cloud handles messages in order.
      this.send({ t: 'console', info: this.infoOf(con) });
    });
    return sup;
  }

  /** After consoles came or went: the order uploads go round them, and each one's share of the
   *  memory for live output. */
  private consolesChanged(): void {
    this.conList = [...this.cons.values()];
    this.maxQueued = Math.min(MAX_QUEUED_BYTES, Math.floor(MAX_QUEUED_TOTAL / Math.max(1, this.conList.filter((c) => !c.removed).length)));
  }

  private started = false;
  start(): void {
    this.started = true;
    this.spool.start();
    for (const c of this.cons.values()) if (c.orphan) void this.spool.sealConsole(c.spool).catch(() => { /* the tick seals it */ }); else c.sup.start();
    this.connect();
    this.uploadTimer = setInterval(() => { this.dropDrained(); this.kickUploads(); }, 1000);
    this.uploadTimer.unref();
    this.statusTimer = setInterval(() => this.sendStatus(), this.opts.statusMs);
    this.statusTimer.unref();
    this.auditTimer = setInterval(() => this.sendAudit(), Math.min(this.opts.localAuditRetryMs, 5000));
    this.auditTimer.unref();
    this.stopAuditHook = testAuditHook(this.localAudit, (l) => this.opts.log(l, { level: 'warn' }));
    const local = this.local;
    if (local) {
      // A port that cannot be had does not stop the relay: capture and upload matter more.
      local.server.listen().then(
        (a) => this.opts.log(`local ssh: listening on ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port} (host key ${local.hostKey.fingerprint})`),
        (e: Error) => this.opts.log(`local ssh: cannot listen: ${e.message}; local access is off until a restart (local.ssh.listen)`, { level: 'error' }));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.local?.server.close();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    clearTimeout(this.pumpTimer);
    clearInterval(this.uploadTimer);
    clearInterval(this.statusTimer);
    clearTimeout(this.redialTimer);
    clearInterval(this.auditTimer);
    this.stopAuditHook();
    for (const c of this.cons.values()) { clearTimeout(c.quietTimer); clearTimeout(c.confirmTimer); }
    this.next?.close(1000, 'relay stopping');
    this.ws?.close(1000, 'relay stopping');
    await Promise.all([...this.cons.values()].map((c) => Promise.all([c.sup.stop(), c.stopping])));
    const left = [...this.cons.values()].filter((c) => c.removed);
    if (left.length) this.opts.log(`stopping before everything removed consoles captured was uploaded: ${left.map((c) => `${c.name} (${c.spool.sealed.length} segments waiting)`).join(', ')}; it stays in the spool and is uploaded at the next start`);
    await this.spool.close();
    this.localAudit.close();
  }

  /** Sends each console's oldest unconfirmed local audit records (once welcomed; one batch per
   *  console in flight, sent again after localAuditRetryMs or on the next welcome: the cloud chains
   *  each journal seq once). */
  private sendAudit(): void {
    if (!this.welcomedAt || this.stopped) return;
    const now = Date.now();
    for (const c of this.localAudit.pendingConsoles()) {
      const sent = this.auditSent.get(c);
      if (sent !== undefined && now - sent < this.opts.localAuditRetryMs) continue;
      const p = this.localAudit.pending(c);
      if (!p) continue;
      this.auditSent.set(c, now);
      this.send({ t: 'audit', c, journal: p.journal, recs: p.recs });
    }
  }

  // ------------------------------------------------------------------------------------- reload
  /** Applies config `cfg` read again (SIGHUP; run-relay.ts has checked it whole first), and the
   *  token and certificate trust read again with it (`link`; `net` built from that trust).
   *  Consoles whose settings (consoleKey) are the same are not touched: an exec console's process
   *  and a serial port stay open, and their capture goes on without a gap. Added ones open and are
   *  announced to the cloud with a `hello` of their own on the open connection (the cloud answers
   *  it with a welcome for them, as it does a hello split in batches), so they can be attached
   *  without reconnecting. Changed ones are closed and opened with the new settings; their
   *  stream, spool and offsets go on. Removed ones close: they are said down (`removed from the
   *  relay config`), what they captured is sealed and uploaded, and then the cloud is told they
   *  are gone (`console` with `removed`: it stops listing them as published, so `cloudcons
   *  console rm` may free the name). Relay-wide settings that only a restart applies (name, spool)
   *  are left as they run and listed in `restart`. Never throws for a console that fails to open:
   *  its supervisor retries it as at start. */
  async reload(cfg: RelayConfig, link?: { token: string; tls: TlsTrust; net: CloudTls }): Promise<ReloadReport> {
    const r: ReloadReport = { added: [], removed: [], changed: [], unchanged: [], restart: [] };
    if (this.stopped) return r;
    const want = relayOptions(cfg, { ...this.given, cloudUrl: this.opts.cloudUrl, token: this.opts.token });
    // A relay without a configured name keeps the one it took (its token's, or its spool's).
    const name = cfg.relay?.name;
    if (name && name !== this.name) r.restart.push(`relay.name changed from ${this.name ?? '(none: its token\'s, not yet learned)'} to ${name}`);
    const fixed: [keyof RelayOptions, string][] = [['spoolDir', 'the spool directory (relay.spool.dir)'], ['segmentBytes', 'relay.spool.segmentBytes'],
      ['segmentMs', 'relay.spool.segmentMs'], ['spoolCapBytes', 'relay.spool.capBytes'], ['spoolMemoryBytes', 'relay.spool.memoryBytes'],
      ['localAuditMaxBytes', 'relay.spool.localAuditBytes']];
    for (const [k, what] of fixed) if (want[k] !== this.opts[k]) r.restart.push(`${what} changed from ${String(this.opts[k])} to ${String(want[k])}`);
    if ((cfg.local?.ssh ? JSON.stringify(cfg.local) : undefined) !== this.local?.cfg) r.restart.push('local (SSH access: listen, host key, limits, users) changed');
    const stops: Promise<void>[] = [];
    for (const c of [...this.cons.values()]) {
      if (c.removed || cfg.consoles[c.name]) continue;
      r.removed.push(c.name);
      c.removed = true;
      c.info = { ...c.info, state: 'down', since: Date.now(), reason: 'removed from the relay config (reload): closed; what it captured is being uploaded' };
      this.send({ t: 'console', info: this.infoOf(c) });
      this.opts.log(`console ${c.name} down: ${c.info.reason}`);
      const p: Promise<void> = this.stopSup(c, c.sup).then(() => this.spool.sealConsole(c.spool)).catch(() => { /* the spool's tick seals it again */ })
        .finally(() => { if (c.stopping === p) c.stopping = undefined; });
      stops.push(c.stopping = p);
    }
    const announce: Con[] = [];
    const opens: (() => void)[] = [];
    for (const [n, cc] of Object.entries(cfg.consoles)) {
      const c = this.cons.get(n);
      if (!c) {
        const con = this.newCon(n, cc, cfg.breaks);
        this.cons.set(n, con);
        r.added.push(n);
        announce.push(con);
        opens.push(() => con.sup.start());
        continue;
      }
      const key = consoleKey(cc, cfg.breaks);
      if (!c.removed && c.key === key) { r.unchanged.push(n); continue; }
      // Changed, or removed by an earlier reload and back before its upload finished: a new
      // supervisor (its old one closes first: a serial port or a BMC takes one user) on the
      // same spool, stream and fence.
      (c.removed ? r.added : r.changed).push(n);
      const old = c.sup;
      const heldBy = c.removed ? undefined : old.heldDownBy;
      const wasRemoved = c.removed;
      // Back before its upload finished: the cloud hears of it again (a console found in the spool
      // at start is not published at all; one removed by a reload may be gone from it by now).
      if (wasRemoved) announce.push(c);
      c.removed = false;
      c.orphan = false;
      const sup = this.setSupervisor(c, cc, cfg.breaks);
      c.info = { ...c.info, reason: wasRemoved ? 'added to the relay config again (reload): opening' : 'its settings changed (reload): reopening' };
      if (!wasRemoved) this.send({ t: 'console', info: this.infoOf(c) });
      const closed = wasRemoved ? c.stopping ?? Promise.resolve() : this.stopSup(c, old);
      c.stopping = undefined;
      stops.push(closed);
      opens.push(() => { void closed.then(() => { if (this.stopped || c.sup !== sup) return; sup.start(heldBy); if (c.watched) sup.setDemand(true); }); });
    }
    this.consolesChanged();
    if (this.started) for (const open of opens) open();
    // The cloud learns of new consoles on the open connection, and on the one replacing it if
    // that one already said hello (one still opening says hello with them itself).
    for (const ws of [this.ws, this.next]) if (ws?.readyState === WebSocket.OPEN && announce.length) this.hello(ws, announce.map((c) => this.infoOf(c)));
    if (link) r.link = this.relink(link);
    await Promise.all(stops);
    this.kickUploads(true);
    return r;
  }

  /** Stops a supervisor a reload replaced or removed; its listeners go once the device is closed. */
  private async stopSup(c: Con, sup: Supervisor): Promise<void> {
    try { await sup.stop(); } catch (e) { this.opts.log(`console ${c.name}: closing it: ${(e as Error).message}`); }
    sup.removeAllListeners();
  }

  /** A reload's token and trust: used from now on (uploads at once). When they differ, a new
   *  connection is opened with them next to the current one (make-before-break): the relay moves
   *  over once the cloud welcomed it, and stays on the current one if the cloud refuses it (the
   *  log says why; tried again every 60 s). Returns what changed, or undefined. */
  private relink(link: { token: string; tls: TlsTrust; net: CloudTls }): string | undefined {
    const what = [link.token !== this.opts.token ? 'the token' : '', link.net.identity !== this.net.identity ? 'the trust in the cloud\'s certificate' : '',
      !!link.tls.insecure !== !!this.opts.tls?.insecure ? 'insecure' : ''].filter(Boolean);
    if (!what.length) return undefined;
    this.opts.token = link.token;
    this.opts.tls = link.tls;
    this.net = link.net;
    const ws = this.ws;
    if (ws?.readyState === WebSocket.OPEN && this.welcomedAt && !this.next) {
      this.connect(true);
      return `${what.join(' and ')} changed: opening a new connection with ${what.length > 1 ? 'them' : 'it'} (make-before-break; the current one stays until the cloud welcomes it)`;
    }
    return `${what.join(' and ')} changed: the next connection uses ${what.length > 1 ? 'them' : 'it'}`;
  }

  /** A console taken out of the config whose output is all uploaded: the cloud is told it is gone
   *  (if the link is up; else its record says `relay disconnected`, which the relay's next hello
   *  does not change), and its spool is closed (its folder stays: its offsets, should it come back). */
  private drained(c: Con): boolean {
    const s = c.spool;
    return !!c.removed && !c.stopping && !c.uploading && !s.sealed.length && !s.activeBytes && !s.heldBytes && !s.lost;
  }

  private dropDrained(): void {
    let dropped = false;
    for (const c of this.cons.values()) {
      if (!this.drained(c)) continue;
      this.cons.delete(c.name);
      this.opts.metrics?.forgetConsole(c.name);
      dropped = true;
      clearTimeout(c.quietTimer);
      clearTimeout(c.confirmTimer);
      // (One found in the spool at start was never published on this connection: nothing to say.)
      if (!c.orphan) this.send({ t: 'console', info: { ...this.infoOf(c), reason: 'removed from the relay config; what it captured is uploaded' }, removed: true });
      this.opts.log(`console ${c.name}: removed; everything it captured is uploaded`);
      void this.spool.closeConsole(c.spool);
    }
    if (dropped) this.consolesChanged();
  }

  /** Seals every console's spool now and waits until everything sealed is uploaded (or `ms`
   *  passed). For tests and orderly shutdowns. */
  async flush(ms = 10_000): Promise<boolean> {
    await Promise.all([...this.cons.values()].map((c) => this.spool.sealConsole(c.spool)));
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if ([...this.cons.values()].every((c) => !c.spool.sealed.length && !c.uploading)) return true;
      this.kickUploads(true);
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  // ------------------------------------------------------------------------------------ uploads
  /** Starts uploads until `uploadConcurrency` are in flight, going round the consoles from where
   *  the last call stopped (so each console gets its turn, not the first ones in the config). */
  private kickUploads(now = false): void {
    if (this.stopped) return;
    const t = Date.now();
    const cons = this.conList;
    for (let i = 0; i < cons.length && this.inFlight < this.opts.uploadConcurrency; i++) {
      const c = cons[this.uploadNext = (this.uploadNext + 1) % cons.length]!;
      if (c.uploading || (!now && c.retryAt > t)) continue;
      const s = c.spool.nextUpload();
      if (s) void this.upload(c, s);
    }
  }

  private async upload(c: Con, s: SealedSegment): Promise<void> {
    c.uploading = true;
    const t0 = performance.now();
    this.inFlight++;
    let buf: Buffer | undefined;
    try {
      // Read into a reused buffer (see Scratch); given back only after a clean answer, so a
      // request that was aborted mid-send can never see it change.
      let body: Buffer;
      const fh = await fs.promises.open(s.file, 'r');
      try {
        const size = (await fh.stat()).size;
        buf = this.uploadScratch.take(size);
        const { bytesRead } = await fh.read(buf, 0, size, 0);
        if (bytesRead !== size) throw new Error(`${s.file}: read ${bytesRead} of ${size} bytes`);
        body = buf.subarray(0, size);
      } finally { await fh.close(); }
      const res = await this.send1(c, s, body);
      const text = await res.text();
      const held = res.status === 409 ? overlapOf(text, s) : undefined;
      if (held) {
        // The cloud holds part of it already: only the rest goes (cut out of `body`, so before
        // the buffer is given back).
        if (await this.sendRest(c, s, body, held)) { c.failures = 0; c.retryAt = 0; }
        this.uploadScratch.give(buf);
      } else if (res.ok) {
        this.uploadScratch.give(buf);
        c.spool.uploaded(s);
        this.counted(s, t0);
        c.failures = 0;
        c.retryAt = 0;
      } else {
        this.uploadScratch.give(buf);
        const loud = res.status === 400 || res.status === 409 || res.status === 413;
        this.uploadFailed(c, `${res.status} ${text.trim().slice(0, 300)}`, loud);
      }
    } catch (e) {
      this.uploadFailed(c, (e as Error).message, false);
    } finally {
      c.uploading = false;
      this.inFlight--;
    }
    this.kickUploads(); // this console's next segment, or another console's: keep 4 in flight
  }

  /** One segment to the cloud's store. A cloud whose store takes presigned PUTs (S3) answers
   *  `upload-url` with one: the body goes straight there (S3 checks size and sha256; 412 means it
   *  is already there), then `commit` has the cloud verify and index it. A cloud that stores
   *  segments itself answers `direct`, and the body goes to `PUT .../segments` (remembered until
   *  the next connection, so an embedded cloud costs one extra request per relay start). The
   *  answer that decides is returned: the cloud's, or the store's refusal. */
  private async send1(c: Con, s: SealedSegment, body: Buffer): Promise<Response> {
    const base = `${this.opts.cloudUrl.replace(/\/+$/, '')}/v1/consoles/${encodeURIComponent(c.name)}/segments`;
    const auth = { authorization: `Bearer ${this.opts.token}` };
    const signal = () => AbortSignal.timeout(this.opts.uploadTimeoutMs);
    const json = (b: unknown) => ({ method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(b), signal: signal() });
    if (!this.directUploads) {
      const key = segmentKey({ console: c.name, start: s.start, end: s.end, t0: s.t0, t1: s.t1, gap: s.gap });
      const res = await this.net.fetch(`${base}/upload-url`, json({ key, size: body.length, sha256: createHash('sha256').update(body).digest('hex') }));
      if (!res.ok) return res;
      const how = await res.json() as { mode: 'direct' } | { mode: 'presigned'; url: string; headers: Record<string, string> };
      if (how.mode === 'presigned') {
        if (!this.presignedSaid) { this.presignedSaid = true; this.opts.log('segment uploads go straight to the cloud\'s segment store (presigned PUT)'); }
        const put = await fetch(how.url, { method: 'PUT', headers: presignedHeaders(how.headers, body.length), body, signal: signal() });
        if (!put.ok && put.status !== 412) {
          const why = (await put.text()).replace(/\s+/g, ' ').trim().slice(0, 300);
          return new Response(`segment store refused the presigned upload: ${put.status} ${why}`, { status: put.status === 403 ? 503 : put.status });
        }
        await put.arrayBuffer().catch(() => undefined);
        return this.net.fetch(`${base}/commit`, json({ key }));
      }
      this.directUploads = true;
      this.presignedSaid = false;
      this.opts.log('segment uploads go through the cloud (PUT /v1/consoles/NAME/segments)');
    }
    return this.net.fetch(base, { method: 'PUT', body, headers: { ...auth, 'content-type': 'application/octet-stream' }, signal: signal() });
  }

  /** The cloud refused segment `s` (409) because it holds some of its range (`o`: a relay restarted
   *  after a crash and sealed the same output again, say): the parts it lacks are cut out of the
   *  segment and sent. Where the cloud's bytes are not the same (two writers), the cloud keeps
   *  the ones it stored first: the segment is set aside as `.conflict` for an operator, said
   *  loudly once, and the console's later segments go on. True if `s` is done with; else the
   *  failure was handled (backoff; the next try asks again). */
  private async sendRest(c: Con, s: SealedSegment, body: Buffer, o: StoredOverlapFacts): Promise<boolean> {
    const rest: [number, number][] = [];
    let at = s.start;
    for (const r of o.stored) { if (r.start > at) rest.push([at, r.start]); at = Math.max(at, r.end); }
    if (at < s.end) rest.push([at, s.end]);
    for (const [a, b] of rest) {
      const piece = await sliceSegment(body, a, b);
      if (!piece) continue;
      const f = piece.footer;
      const res = await this.send1(c, { ...s, start: f.start, end: f.end, t0: f.t0, t1: f.t1 }, piece.body);
      const text = await res.text();
      if (!res.ok) {
        this.uploadFailed(c, `the part ${a}-${b} the cloud lacks of segment ${s.start}-${s.end}: ${res.status} ${text.trim().slice(0, 300)}`, [400, 409, 413].includes(res.status));
        return false;
      }
    }
    const had = o.stored.map((r) => `${r.start}-${r.end}${r.gap ? ' (recorded lost)' : ''}`).join(', ');
    const sent = rest.length ? `sent the rest (${rest.map(([a, b]) => `${a}-${b}`).join(', ')})` : 'nothing left to send';
    if (o.same) {
      this.opts.log(`segment ${s.start}-${s.end} of ${c.name}: the cloud already had ${had} with the same bytes; ${sent}`, { console: c.name });
      c.spool.uploaded(s);
      this.counted(s);
    } else {
      const file = c.spool.setAside(s, this.opts.conflictKeep);
      this.opts.metrics?.uploadConflicts.inc();
      this.opts.log(`UPLOAD CONFLICT for ${c.name}: the cloud holds other output at ${had} than this relay's segment ${s.start}-${s.end} (first difference at offset ${o.at ?? '?'}: two writers, or a relay that reused offsets); the cloud keeps what it stored first, ${sent}; this relay's segment is kept as ${file} for an operator (at most ${this.opts.conflictKeep} per console, --conflict-keep)`, { console: c.name, level: 'error' });
    }
    return true;
  }

  private uploadFailed(c: Con, why: string, loud: boolean): void {
    const delay = Math.min(this.opts.uploadMaxBackoffMs, this.opts.uploadMinBackoffMs * 2 ** c.failures++) * (0.5 + Math.random() / 2);
    c.retryAt = Date.now() + delay;
    this.opts.metrics?.uploadFailures.inc();
    if (loud || c.failures === 1 || c.failures % 10 === 0) {
      this.opts.log(`${loud ? 'UPLOAD REFUSED' : 'upload failed'} for ${c.name} (${c.spool.sealed.length} segments, ${c.spool.diskBytes} bytes waiting): ${why}; retrying in ${Math.round(delay)} ms`, { console: c.name, level: loud ? 'error' : 'warn' });
    }
  }

  /** Segment `s` is stored by the cloud (its upload started at `t0`, performance.now()). */
  private counted(s: SealedSegment, t0?: number): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.segmentsUploaded.inc();
    m.uploadedBytes.inc(s.size);
    if (t0 !== undefined) m.uploadSeconds.observe((performance.now() - t0) / 1000);
  }

  /** What the gauges of /metrics show (metrics.ts). */
  health(): RelayHealth {
    let segments = 0, oldest: number | undefined;
    for (const c of this.cons.values()) {
      segments += c.spool.sealed.length;
      const t = this.oldestUnsent(c);
      if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
    }
    return {
      relay: this.name, cloudConnected: this.ws?.readyState === WebSocket.OPEN,
      consoles: this.conList.map((c) => ({ name: c.name, up: c.info.state === 'up', read: c.read })),
      spoolBytes: this.spool.diskBytes, spoolCapBytes: this.opts.spoolCapBytes, segments, heldBytes: this.spool.heldBytes,
      diskFull: this.conList.some((c) => c.spoolTrouble !== undefined), oldestUnsent: oldest,
    };
  }

  /** When the oldest byte of `c` the cloud has not got was read: the first segment waiting for
   *  upload, else the first byte of the active log (or of what memory holds for the disk) that no
   *  link carried live (`sent`: the last link's, until the next welcome says where the cloud's
   *  stored output ends). That byte is dated by the live queue, else by the active log's first
   *  byte (the older one, so never too young). */
  private oldestUnsent(c: Con): number | undefined {
    const s = c.spool;
    let t = s.sealed[0]?.t0;
    const from = Math.max(c.sent, s.start);
    if (from < s.next) {
      const q = c.queue[0];
      const tail = q && q.offset <= from ? q.ts : from < s.start + s.activeBytes ? s.activeT0 : s.lost?.t0 ?? s.held[0]?.ts;
      if (tail !== undefined && (t === undefined || tail < t)) t = tail;
    }
    return t;
  }

  /** Console names and states, for status output. */
  consoles(): ConsoleInfo[] { return [...this.cons.values()].filter((c) => !c.orphan).map((c) => this.infoOf(c)); }

  private infoOf(c: Con): ConsoleInfo {
    return { ...c.info, fence: c.fence || undefined, ...(c.spoolTrouble && c.info.state === 'up' ? { reason: c.spoolTrouble } : {}) };
  }

  // ----------------------------------------------------------------------------------- the link
  /** Dials the cloud. `replace`: make-before-break: the current connection keeps carrying output
   *  and input until the new one is welcomed; then the relay moves over and closes the old one.
   *  The cloud's stored ends in that welcome say where live output resumes, and it drops bytes it
   *  already has, so nothing is lost or doubled at the switch. */
  private connect(replace = false): void {
    if (this.stopped) return;
    if (!replace && this.dialled) this.opts.metrics?.reconnects.inc();
    this.dialled = true;
    const url = this.opts.wsUrl ?? this.opts.cloudUrl.replace(/^http/, 'ws').replace(/\/+$/, '') + '/v1/relay';
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.opts.token}` }, perMessageDeflate: false, handshakeTimeout: 10_000, ...this.net.wsOptions(url) });
    if (replace) this.next = ws;
    else {
      this.ws = ws;
      this.directUploads = false; // ask again: the cloud may have restarted with another store
      for (const c of this.cons.values()) c.live = false;
    }
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => this.opts.log(`cloud refused the relay connection: ${res.statusCode} ${body.trim()}`, { level: 'error' }));
    });
    ws.on('open', () => {
      this.opts.log(replace ? `connected to ${this.opts.cloudUrl} again, to replace the current connection` : `connected to ${this.opts.cloudUrl}`);
      this.lastHeard = Date.now();
      this.hello(ws, this.consoles());
      if (!replace) this.startHeartbeat(ws);
    });
    ws.on('message', (data, isBinary) => {
      this.lastHeard = Date.now();
      const r = decode(cloudToRelay, isBinary ? data : data.toString(), Number.MAX_SAFE_INTEGER);
      if (!r.ok) { this.opts.log(`bad message from cloud: ${r.message}`, { level: 'warn' }); return; }
      if (r.msg.t === 'welcome' && ws === this.next) this.moveTo(ws);
      this.onMessage(r.msg);
    });
    let linkError = ''; // the socket's error, reported with its close
    ws.on('close', (code, reason) => {
      if (ws === this.next) { // the replacement failed: stay on the current one, try again later
        this.next = undefined;
        this.opts.log(`could not open a replacement connection (${code}${linkError ? `: ${linkError}` : ''}); trying again in 60 s`, { level: 'warn' });
        this.scheduleRedial(60_000);
        return;
      }
      if (this.ws !== ws) return;
      clearInterval(this.heartbeat);
      clearTimeout(this.redialTimer);
      this.redialFor = undefined;
      this.ws = undefined;
      for (const c of this.cons.values()) c.live = false;
      if (this.linkUp) { this.linkUp = false; this.local?.server.linkChanged(false); }
      if (this.stopped) return;
      // Only a connection that lasted proves the link healthy: one that is closed right after its
      // welcome (the cloud refusing something, the relay giving up on it) is a failed attempt,
      // and the backoff keeps growing.
      const lasted = this.welcomedAt ? Date.now() - this.welcomedAt : -1;
      this.welcomedAt = 0;
      if (lasted >= this.opts.maxBackoffMs) this.attempt = 0;
      const failed = this.attempt; // attempts in a row since the link last proved healthy
      const delay = Math.random() * Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** this.attempt++);
      const retry = `reconnecting in ${Math.round(delay)} ms`;
      const why = `${code}${reason.length ? ` ${reason}` : ''}${linkError ? `: ${linkError}` : ''}`;
      // During an outage: the first failure and every 10th, not every attempt.
      if (!failed) this.opts.log(`disconnected from cloud (${why}); ${retry}`, { level: 'warn' });
      else if (failed === 1 || failed % 10 === 0) {
        this.opts.log(lasted >= 0
          ? `the connection to the cloud closed again ${lasted} ms after its welcome (${why}), ${failed} attempt${failed === 1 ? '' : 's'} in a row; ${retry}`
          : `still cannot reach the cloud at ${this.opts.cloudUrl} after ${failed} failed attempt${failed === 1 ? '' : 's'}${linkError ? ` (${linkError})` : ''}; ${retry}`, { level: 'warn' });
      }
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    ws.on('error', (e) => { linkError = e.message; });
  }

  /** Says hello with `infos`: several hellos if need be (a frame holds at most 32 KiB, about 300
   *  consoles). The cloud answers each with a welcome for its consoles; also a hello on a
   *  connection already welcomed (consoles a reload added). */
  private hello(ws: WebSocket, infos: ConsoleInfo[]): void {
    let batch: ConsoleInfo[] = [], size = 0;
    // No name yet: it says none, and the welcome says its token's.
    // `access`: it keeps the cloud's local-access snapshots (local/cloud-access.ts).
    const hello = () => ws.send(encode({ t: 'hello', ...(this.name ? { relay: this.name } : {}), boot: this.boot, consoles: batch, ...this.about, features: ['access'] }));
    for (const info of infos) {
      const n = JSON.stringify(info).length + 1;
      if (batch.length && size + n > HELLO_BATCH_BYTES) { hello(); batch = []; size = 0; }
      batch.push(info);
      size += n;
    }
    hello();
  }

  /** The replacement connection was welcomed: it becomes the relay's connection. */
  private moveTo(ws: WebSocket): void {
    const old = this.ws;
    this.next = undefined;
    this.ws = ws;
    for (const c of this.cons.values()) c.live = false; // until the welcome says where to resume
    this.startHeartbeat(ws);
    old?.close(1000, 'replaced by a new connection');
    this.opts.log('moved to the new connection (make-before-break)');
  }

  private startHeartbeat(ws: WebSocket): void {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > 3 * this.opts.heartbeatMs) { ws.terminate(); return; }
      this.send({ t: 'ping', id: ++this.pingId });
    }, this.opts.heartbeatMs);
  }

  private scheduleRedial(ms = this.opts.maxConnectionMs): void {
    clearTimeout(this.redialTimer);
    if (ms > 0 && !this.stopped) this.redialTimer = setTimeout(() => { if (this.ws && !this.next) this.connect(true); }, ms);
  }

  private send(msg: Out<RelayToCloud>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  private onMessage(m: CloudToRelay): void {
    switch (m.t) {
      case 'welcome': {
        if (m.relay) this.learnName(m.relay);
        if (this.redialFor !== this.ws) { this.redialFor = this.ws; this.scheduleRedial(); this.welcomedAt = Date.now(); setImmediate(() => this.sendStatus()); } // once per connection
        if (!this.linkUp) { this.linkUp = true; this.local?.server.linkChanged(true); }
        const ws = this.ws;
        // The spool confirms (and on first contact moves) its offsets; live output resumes where
        // the cloud's stored stream ends, or after what is sealed (that comes by upload).
        const mine = Object.keys(m.ends).map((n) => this.cons.get(n)).filter((c): c is Con => !!c);
        const mode = m.live ?? 'always';
        if (mode !== this.liveMode) this.opts.log(mode === 'watched' ? 'the cloud takes live output only of consoles someone watches; the rest goes by segment upload' : 'the cloud takes live output of every console');
        this.liveMode = mode;
        this.quietBatchMs = m.quietBatchMs ?? 0;
        const watched = new Set(m.watched);
        for (const c of mine) { c.watched = watched.has(c.name); c.sup.setDemand(c.watched); }
        void Promise.all(mine.map((c) => this.confirmCon(c, m.ends[c.name], ws))).then(() => this.kickUploads(true));
        this.auditSent.clear(); // what the last link carried unconfirmed goes again
        this.sendAudit();
        return;
      }
      case 'watch': {
        const c = this.cons.get(m.c);
        if (c && m.once) {
          if (c.watched || this.liveMode === 'always' || !c.live) return; // streaming anyway, or not confirmed yet
          if (c.sent < c.onceTo) return; // still sending the last one
          c.sent = Math.max(c.spool.start, Math.min(m.from ?? c.sent, c.spool.next));
          c.onceTo = c.spool.next;
          c.queue = [];
          c.queued = 0;
          this.pump(c);
          return;
        }
        c?.sup.setDemand(m.on); // ondemand consoles open while watched
        if (!c || c.watched === m.on) return; // a repeated `on` must not rewind a stream
        c.watched = m.on;
        c.onceTo = 0;
        c.queue = [];
        c.queued = 0;
        // From the cloud's stored end: the rest of the active log goes now, what is sealed by upload.
        if (m.on && c.live) { c.sent = Math.max(c.spool.start, Math.min(m.from ?? c.sent, c.spool.next)); this.pump(c); }
        return;
      }
      case 'audit-ok':
        if (crashAtAuditOk) process.kill(process.pid, 'SIGKILL');
        try { this.localAudit.confirm(m.c, m.journal, m.seq); } catch (e) {
          this.opts.log(`local audit of ${m.c}: the cloud has it up to ${m.seq}, but the journal could not be rewritten: ${(e as Error).message}; sent again later (the cloud takes each record once)`, { level: 'warn' });
          return;
        }
        this.auditSent.delete(m.c);
        this.sendAudit();
        return;
      case 'fence': { const c = this.cons.get(m.c); if (c && m.fence > c.fence) c.fence = m.fence; return; }
      case 'in': case 'break': case 'resize': return this.deviceOp(m);
      case 'ctl': {
        const c = this.cons.get(m.c);
        if (!c || c.removed) { this.opts.log(`cloud asked to take ${m.c} ${m.op}, but it is not on this relay${c ? ' (removed from its config)' : ''}`, { level: 'warn' }); return; }
        if (m.op === 'down') void c.sup.adminDown(m.by); else c.sup.adminUp(m.by);
        return;
      }
      case 'access': this.cloudAccess.take(m, this.name); return;
      case 'ping': this.send({ t: 'pong', id: m.id }); return;
      case 'pong': return;
      case 'error':
        this.opts.log(`cloud: ${m.code}: ${m.message}`, { level: 'warn', code: m.code });
        if (m.code === 'CC_ERR_BAD_FRAME' && !this.name && !this.welcomedAt) this.opts.log('(a cloud older than this relay takes no hello without a name: set relay.name in relay.yaml to the name its token was made for)', { level: 'warn' });
        return;
    }
  }

  /** The welcome said the relay's name (its token's): one without a name takes it; the spool
   *  records it (relay-name.ts), once. */
  private learnName(name: string): void {
    if (!this.name) {
      this.name = name;
      this.nameFrom = 'cloud';
      this.opts.log(`this relay is ${name}: the name its token was made for (relay.yaml names none)`);
    } else if (this.name.toLowerCase() !== name) {
      this.opts.log(`the cloud calls this relay ${name}, not ${this.name}`);
      return;
    }
    if (this.nameRecorded) return;
    try {
      recordName(this.opts.spoolDir, name);
      this.nameRecorded = true;
    } catch (e) { this.opts.log(`could not record the relay's name in its spool (${path.join(this.opts.spoolDir, NAME_FILE)}): ${(e as Error).message}; tried again at the next welcome`); }
  }

  /** Tells the cloud the spool's backlog (once welcomed on the current connection). */
  private sendStatus(): void {
    if (!this.welcomedAt) return;
    const b = this.spool.backlog();
    this.send({ t: 'status', spool: { bytes: b.bytes, ...(b.oldest !== undefined ? { oldestMs: Math.max(0, Math.round(Date.now() - b.oldest)) } : {}) } });
  }

  /** Has the spool confirm (and, for a new console, move) `c`'s offsets to continue the cloud's
   *  stream at `end`, then streams it live. A confirm the spool cannot do now (its disk refuses
   *  the move) is tried again for this console alone, with backoff, while the link stays up for
   *  the others (closing it would interrupt every console's live output). Never rejects. */
  private async confirmCon(c: Con, end: number, ws: WebSocket | undefined, attempt = 0): Promise<void> {
    clearTimeout(c.confirmTimer);
    c.confirmTimer = undefined;
    let sent: number;
    try { sent = await c.spool.confirm(end); } catch (e) {
      if (this.ws !== ws || this.stopped) return;
      const delay = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
      if (attempt === 0 || attempt % 10 === 0) this.opts.log(`console ${c.name}: ${(e as Error).message}; its output waits in the spool; trying again in ${Math.round(delay)} ms`, { console: c.name, level: 'warn' });
      c.confirmTimer = setTimeout(() => void this.confirmCon(c, end, ws, attempt + 1).then(() => this.kickUploads(true)), delay);
      c.confirmTimer.unref();
      return;
    }
    if (this.ws !== ws) return;
    if (attempt) this.opts.log(`console ${c.name}: its offsets are confirmed after ${attempt} retries`, { console: c.name });
    c.sent = sent;
    c.queue = [];
    c.queued = 0;
    c.live = true;
    this.pump(c);
  }

  private deviceOp(m: Extract<CloudToRelay, { t: 'in' | 'break' | 'resize' }>): void {
    const c = this.cons.get(m.c);
    const reject = (reason: string) => this.send({ t: 'rejected', c: m.c, fence: m.fence, session: m.session, what: m.t, reason });
    if (!c) return reject(`console ${m.c} is not on relay ${this.name ?? '(unnamed)'}`);
    if (m.fence < c.fence) return reject(`stale fence ${m.fence} (newest is ${c.fence})`);
    c.fence = m.fence;
    if (m.t === 'resize') { c.sup.resize(m.cols, m.rows); return; }
    if (c.info.state !== 'up') return reject(`console ${m.c} is down${c.info.reason ? `: ${c.info.reason}` : ''}`);
    if (m.t === 'in') {
      c.lastInput = Date.now();
      if (c.quietTimer) this.flushQuiet(c); // the echo must not wait
      c.sup.write(Buffer.from(m.d, 'base64')).catch((e: Error) => reject(e.message));
    } else {
      c.sup.sendBreakSequence(m.seq).then(() => this.send({ t: 'break-sent', c: m.c, fence: m.fence, session: m.session, seq: m.seq }), (e: Error) => reject(e.message));
    }
  }

  /** Whether `c`'s output goes live on the current link. */
  private streams(c: Con): boolean { return c.live && (c.watched || this.liveMode === 'always' || c.sent < c.onceTo); }

  /** Runs `fn` with the socket corked: its frames leave in one write. */
  private corked(fn: () => void): void {
    // ws does not expose cork(); its socket does (ws's own cork/uncork pairs nest inside ours).
    const sock = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } } | undefined)?._socket;
    sock?.cork();
    try { fn(); } finally { sock?.uncork(); }
  }

  /** Sends live output the cloud has not got yet, as far as the socket's buffer allows: from the
   *  in-memory queue, else read back from the spool's active log. Output already sealed is left
   *  to the segment upload. */
  private pump(c: Con): void {
    const ws = this.ws;
    if (!ws || !this.streams(c) || ws.readyState !== WebSocket.OPEN) return;
    while (c.sent < c.spool.next && this.streams(c)) {
      if (ws.bufferedAmount > this.opts.sendHighWaterBytes) {
        if (!this.pumpTimer) this.pumpTimer = setTimeout(() => { this.pumpTimer = undefined; for (const x of this.cons.values()) this.pump(x); }, 5);
        return;
      }
      const part = this.take(c);
      // Sealed before it went out (the socket was full while a seal came due): it reaches the
      // cloud by upload, and the cloud sends viewers what a committed segment brought that never
      // arrived live (LogStore.putSegment's `fresh`).
      // Lost (dropped from memory while the disk refused it): a gap record says so; skipped.
      if (!part) { const to = c.spool.skip(c.sent); if (to > c.sent) { c.sent = to; continue; } break; }
      this.send({ t: 'out', c: c.name, o: c.sent, ts: part.ts, d: part.data.toString('base64') });
      c.sent += part.data.length;
      c.lastSend = Date.now();
    }
  }

  /** Sends a quiet console's gathered output now. */
  private flushQuiet(c: Con): void {
    clearTimeout(c.quietTimer);
    c.quietTimer = undefined;
    c.pumpSoon = false;
    this.corked(() => this.pump(c));
  }

  /** Up to 22 KiB from `c.sent`: joined from the queue when it starts there, else from the spool. */
  private take(c: Con): Chunk | undefined {
    const max = PROTOCOL_LIMITS.maxRawChunk;
    while (c.queue.length && c.queue[0].offset + c.queue[0].data.length <= c.sent) c.queued -= c.queue.shift()!.data.length;
    if (c.queue.length && c.queue[0].offset === c.sent) {
      const first = c.queue[0];
      if (first.data.length >= max || c.queue.length === 1) {
        const data = first.data.subarray(0, max);
        if (data.length === first.data.length) { c.queue.shift(); c.queued -= data.length; }
        else { c.queue[0] = { offset: first.offset + data.length, ts: first.ts, data: first.data.subarray(data.length) }; c.queued -= data.length; }
        return { offset: first.offset, ts: first.ts, data };
      }
      const parts: Buffer[] = [];
      let n = 0;
      while (c.queue.length && n + c.queue[0].data.length <= max) { const x = c.queue.shift()!; parts.push(x.data); n += x.data.length; c.queued -= x.data.length; }
      return { offset: first.offset, ts: first.ts, data: Buffer.concat(parts, n) };
    }
    c.queue = [];
    c.queued = 0;
    return c.spool.readActive(c.sent, max);
  }
}

/** What the cloud's 409 for an overlapping segment says it holds (cloud/core/log-store.ts
 *  StoredOverlap). */
interface StoredOverlapFacts { start: number; end: number; stored: { start: number; end: number; gap?: boolean }[]; same: boolean; at?: number }

/** The facts of a 409 answer about segment `s`, if it carries them and they fit `s` (stored ranges
 *  in order, inside its range); else undefined, and the refusal is retried as any other. */
function overlapOf(text: string, s: SealedSegment): StoredOverlapFacts | undefined {
  let o: StoredOverlapFacts;
  try { o = (JSON.parse(text) as { overlap?: StoredOverlapFacts }).overlap!; } catch { return undefined; }
  if (!o || o.start !== s.start || o.end !== s.end || typeof o.same !== 'boolean' || !Array.isArray(o.stored) || !o.stored.length) return undefined;
  let at = s.start;
  for (const r of o.stored) {
    if (!Number.isSafeInteger(r?.start) || !Number.isSafeInteger(r?.end) || r.start < at || r.end <= r.start || r.end > s.end) return undefined;
    at = r.end;
  }
  return o;
}

/** The headers a presigned PUT must carry, as the cloud signed them, checked first: a
 *  content-length other than the segment's size would leave the request hanging until its
 *  timeout (fetch waits for bytes that never come), and connection-level headers are not the
 *  cloud's to set. Throws an Error saying what was wrong; the upload is then retried. */
export function presignedHeaders(raw: unknown, size: number): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`the cloud's presigned upload has headers of type ${Array.isArray(raw) ? 'array' : typeof raw}, not an object`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new Error(`the cloud's presigned upload header ${JSON.stringify(k)} is not a string`);
    const name = k.toLowerCase();
    if (['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer'].includes(name)) throw new Error(`the cloud's presigned upload sets the connection header ${JSON.stringify(k)}`);
    if (name === 'content-length' && v.trim() !== String(size)) throw new Error(`the cloud's presigned upload expects ${JSON.stringify(v)} bytes, but the segment has ${size}`);
    out[k] = v;
  }
  return out;
}
