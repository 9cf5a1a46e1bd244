// Relay config: a YAML file naming the consoles this relay holds open.
//
//   relay:            # optional
//     name: edge1     # optional; without it the relay takes the name its token was made for
//     spool:          # optional: where output waits until the cloud stored it (see spool.ts)
//       dir: /var/lib/cloudcons/spool   # default: see RelayOptions.spoolDir (edge-relay/relay.ts)
//       segmentBytes: 1048576           # seal after this many bytes (default 1 MiB)
//       segmentMs: 60000                # ... or when the oldest byte is this old (default 60 s)
//       capBytes: 1073741824            # disk the spool may use (default 1 GiB)
//       memoryBytes: 16777216           # output held in memory while its disk refuses writes (default 16 MiB)
//       localAuditBytes: 16777216       # a console's local audit journal, at most (default 16 MiB; local/audit-journal.ts)
//     cloud:          # optional: how to trust the cloud's TLS certificate (flags and environment win)
//       ca: /etc/cloudcons/ca.pem       # only this CA (PEM); default: the system's CAs
//       fingerprint: 'SHA256:AB:CD:...' # or exactly this certificate, even self-signed
//       insecure: false                 # allow plain http:// to a cloud that is not on loopback
//   metrics:          # optional: serve /metrics (Prometheus), /healthz and /readyz (see metrics.ts)
//     listen: 127.0.0.1:9464          # HOST:PORT, or a port alone (127.0.0.1); loopback only unless
//     allowRemote: false              # ... this is true (the endpoints have no authentication)
//   log:              # optional
//     level: info                     # debug, info, warn, error; --log-level / CLOUDCONS_LOG_LEVEL win
//   breaks:           # optional: break sequences 1-9 a-z sent with ^Ecl<c> (see breaks.ts);
//     5: { string: '\r~^b', delayMs: 500 }   # 1-4 are conserver's defaults unless set here
//   local:            # optional: break-glass SSH access at the relay (edge-relay/local/, README "Local access")
//     ssh:
//       listen: 0.0.0.0:2222          # required to turn it on (HOST:PORT, or a port alone: 127.0.0.1)
//       hostKey: /var/lib/cloudcons/ssh_host_ed25519_key   # default: STATE/ssh_host_ed25519_key; made (0600) if missing
//       maxAuthTries: 6               # refused sign-in attempts per connection (then it is closed)
//       authPerSourcePerMinute: 20    # refused sign-in attempts per source address per minute
//       maxSessions: 16               # SSH sessions open at once
//       idleTimeout: 1h               # no keystroke for this long ends a session (0: never)
//       maxBufferBytes: 1048576       # output waiting for a slow SSH client; past it, it is skipped (and said)
//       loginGraceTime: 60s           # a connection not signed in after this long is closed (0: never)
//     users:
//       oncall:
//         keys: ['ssh-ed25519 AAAA... oncall@laptop']   # and/or authorizedKeys: /path/file
//         rw: ['*']                   # console globs this user may write to
//         ro: []                      # ... and watch only (rw wins)
//   consoles:
//     web01: { type: serial, device: /dev/ttyUSB0, baud: 115200 }
//     demo:  { type: exec, command: /bin/bash -l }
//     ts3:   { type: telnet, host: ts1.example, port: 7003, baud: 9600 }   # RFC 2217 if offered
//     sw1:   { type: tcp, host: 10.0.0.5, port: 2001 }
//     vm1:   { type: uds, path: /run/vm1/serial.sock }
//     bmc7:  { type: ipmi, host: 10.1.0.7, user: admin, passwordFile: /etc/cloudcons/bmc7.pw }
//     core1: { type: ssh, host: 10.2.0.1, user: admin, keyFile: ~/.ssh/id_ed25519, hostKey: 'SHA256:...' }
//
// Every console type also takes the options in `common` below: initcmd, idleTimeout/idleString,
// ondemand, break/breaklist, breakDelayMs.
//
// Loading never stops at the first mistake: every problem (YAML syntax, unknown field, bad value)
// is collected into ONE ConfigError so a user fixes the whole file in one go. Each problem names
// the console and the field. To add a console type, add a schema to `consoleSchemas`. A running
// relay reads it again on SIGHUP (edge-relay/relay.ts reload; a file with problems changes nothing),
// and `cloudcons relay --check-config FILE` runs these checks alone.
import fs from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../protocol/errors.ts';
import { breakStringProblem } from './breaks.ts';
import { isLoopbackHost, parseFingerprint } from '../protocol/tls.ts';
import { LOG_LEVELS, type LogLevel } from '../protocol/log.ts';
import { globProblem } from '../protocol/glob.ts';
import { parsePublicKeyLine } from './local/ssh-keys.ts';
import { isConsoleName, NAME_MAX, NAME_RE, NAME_RULE as RULE } from '../protocol/names.ts';

/** Every documented default in one place. */
export const RELAY_CONFIG_DEFAULTS = {
  /** How long a serial BREAK holds the line (ms). */
  breakDelayMs: 250,
  serial: { baud: 9600, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none' },
  /** Exec consoles: TERM unless `env` sets one, and the initial terminal size. */
  exec: { term: 'xterm-256color', cols: 80, rows: 24 },
  /** Break sequence `^Ecl0` sends (conserver's `break` option; 1 is a serial break). */
  defaultBreak: '1',
  /** String sent when a console was idle for idleTimeout (conserver's default `idlestring`). */
  idleString: '\\n',
  /** How long an initcmd may run before it is killed (ms). */
  initcmdTimeoutMs: 120_000,
  telnet: { port: 23 },
  ssh: { port: 22, keepaliveMs: 15_000, keepaliveCountMax: 3, term: 'xterm-256color', cols: 80, rows: 24 },
  ipmi: { port: 623, tool: 'ipmitool', privilege: 'ADMINISTRATOR' },
  /** Local SSH access (local.ssh): the limits. */
  localSsh: { maxAuthTries: 6, authPerSourcePerMinute: 20, maxSessions: 16, idleTimeoutMs: 3_600_000, maxBufferBytes: 1024 * 1024, loginGraceMs: 60_000 },
} as const;

const NAME_RULE = `must be ${RULE}`;

// serialport's unix binding only knows none/even/odd parity and 1 or 2 stop bits; mark/space and
// 1.5 fail at open on Linux/macOS. Reject them at load time instead of retrying forever.
const WINDOWS = process.platform === 'win32';

// Every leaf carries its own message so a problem reads "must be ..." rather than zod's default.
const err = (m: string) => ({ error: m });
const text = z.string(err('must be a non-empty string')).min(1, err('must be a non-empty string'));
const intIn = (lo: number, hi: number) =>
  z.custom<number>((v) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi, err(`must be one of ${lo}..${hi}`));

/** A duration: a number of seconds (as conserver.cf writes it) or a string with a unit, e.g.
 *  `500ms`, `30s`, `15m`, `2h`. Returns milliseconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
  return Math.round(Number(m[1]) * unit);
}
const duration = (max: string, maxMs: number) => z.union([z.number(), z.string()], err(`must be a duration like 30s, 15m or 2h`))
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be a duration like 30s, 15m or 2h, at most ${max}`, input: v });
      return z.NEVER;
    }
    return ms;
  });
const breakId = z.union([z.string(), z.number()]).transform(String)
  .refine((b) => /^[1-9a-z]$/.test(b), err('must name a break sequence: one of 1-9 a-z'));
/** Where a secret comes from: exactly one of these per console (checked in `secretRule`). */
const secret = {
  /** Inline (the relay config should then be readable by the relay only). */
  password: z.string(err('must be a string')).optional(),
  /** A file holding the secret (trailing newline ignored), e.g. /etc/cloudcons/bmc7.pw, mode 0600. */
  passwordFile: text.optional(),
  /** An environment variable of the relay process holding the secret. */
  passwordEnv: text.optional(),
};

const common = {
  breakDelayMs: intIn(1, 10_000).default(RELAY_CONFIG_DEFAULTS.breakDelayMs),
  /** Break sequence `^Ecl0` sends (default 1: a serial break). */
  break: breakId.optional(),
  /** Only these break sequences may be sent (default: all that are defined). */
  breaklist: z.array(breakId, err('must be a list of break sequences')).optional(),
  /** A shell command run each time the console comes up, stdin reading the console's output and
   *  stdout writing to the console (a login script); conserver's `initcmd`. */
  initcmd: text.optional(),
  /** Kill an initcmd still running after this long (default 120 s). */
  initcmdTimeout: duration('1h', 3_600_000).optional(),
  /** No traffic either way for this long sends `idleString` (keeps BMC and terminal-server
   *  sessions from timing out); conserver's `idletimeout`. Default: off. */
  idleTimeout: duration('30d', 30 * 86_400_000).optional(),
  /** What to send on idle, with break-string escapes (default `\n`). */
  idleString: z.string(err('must be a string')).optional(),
  /** Open the device only while someone is attached (conserver's `options ondemand`). Output while
   *  nobody is attached is then not recorded. */
  ondemand: z.boolean(err('must be true or false')).optional(),
};
const d = RELAY_CONFIG_DEFAULTS.serial;

const serialSchema = z.strictObject({
  type: z.literal('serial'),
  ...common,
  device: text,
  baud: intIn(50, 4_000_000).default(d.baud),
  dataBits: z.literal([5, 6, 7, 8], err('must be one of 5, 6, 7, 8')).default(d.dataBits),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space'], err('must be one of none, even, odd, mark, space'))
    .refine((p) => WINDOWS || (p !== 'mark' && p !== 'space'), err(`mark and space parity are not supported by serialport on ${process.platform}`))
    .default(d.parity),
  stopBits: z.literal([1, 1.5, 2], err('must be one of 1, 1.5, 2'))
    .refine((s) => WINDOWS || s !== 1.5, err(`1.5 stop bits are not supported by serialport on ${process.platform}`))
    .default(d.stopBits),
  flowControl: z.enum(['none', 'rtscts', 'xonxoff'], err('must be one of none, rtscts, xonxoff')).default(d.flowControl),
  /** Read coalescing on a busy, unattended line (see drivers/serial.ts); 0 turns it off. Default:
   *  the time the line needs for ~1 KiB at its baud, at most 50 ms. */
  readHoldoffMs: intIn(0, 1000).optional(),
}, err('must be a mapping'));

// YAML turns `PORT: 8080` into a number; an environment only holds strings, so convert.
const envValue = z.union([z.string(), z.number(), z.boolean()], err('must be a string')).transform(String);

const execSchema = z.strictObject({
  type: z.literal('exec'),
  ...common,
  command: z.union([text, z.array(text, err('must be a string or a list of strings')).min(1, err('must not be empty'))],
    err('must be a string or a list of strings')),
  cwd: text.optional(),
  env: z.record(z.string(), envValue, err('must be a mapping of names to values')).optional(),
  cols: intIn(1, 1000).optional(),
  rows: intIn(1, 1000).optional(),
}, err('must be a mapping'));

const host = text.regex(/^[^\s/]+$/, err('must be a host name or address'));
const port = intIn(1, 65535);
/** RFC 2217 line settings a telnet console asks the terminal server for, if it offers COM-PORT. */
const lineSettings = {
  baud: intIn(50, 4_000_000).optional(),
  dataBits: z.literal([5, 6, 7, 8], err('must be one of 5, 6, 7, 8')).optional(),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space'], err('must be one of none, even, odd, mark, space')).optional(),
  stopBits: z.literal([1, 1.5, 2], err('must be one of 1, 1.5, 2')).optional(),
  flowControl: z.enum(['none', 'rtscts', 'xonxoff'], err('must be one of none, rtscts, xonxoff')).optional(),
  /** Modem lines raised (true) or dropped (false) at connect; default: the server's setting. */
  dtr: z.boolean(err('must be true or false')).optional(),
  rts: z.boolean(err('must be true or false')).optional(),
};

const telnetSchema = z.strictObject({
  type: z.literal('telnet'),
  ...common,
  host,
  port: port.default(RELAY_CONFIG_DEFAULTS.telnet.port),
  ...lineSettings,
}, err('must be a mapping'));

const tcpSchema = z.strictObject({ type: z.literal('tcp'), ...common, host, port }, err('must be a mapping'));

const udsSchema = z.strictObject({ type: z.literal('uds'), ...common, path: text }, err('must be a mapping'));

const S = RELAY_CONFIG_DEFAULTS.ssh;
const sshSchema = z.strictObject({
  type: z.literal('ssh'),
  ...common,
  host,
  port: port.default(S.port),
  user: text,
  ...secret,
  /** A private key file (OpenSSH or PEM); `passphraseFile` if it is encrypted. */
  keyFile: text.optional(),
  passphraseFile: text.optional(),
  /** Pinned host key: its SHA256 fingerprint as `ssh-keygen -lf` prints it (SHA256:...). */
  hostKey: text.regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, err('must be a SHA256 fingerprint as ssh-keygen -l prints it (SHA256:...)')).optional(),
  /** known_hosts file to check the host key against, when no hostKey is pinned
   *  (default ~/.ssh/known_hosts). */
  knownHosts: text.optional(),
  /** Run this instead of a login shell (e.g. a BMC's `console` command). */
  command: text.optional(),
  keepaliveMs: intIn(0, 3_600_000).default(S.keepaliveMs),
  keepaliveCountMax: intIn(1, 100).default(S.keepaliveCountMax),
  term: text.default(S.term),
  cols: intIn(1, 1000).optional(),
  rows: intIn(1, 1000).optional(),
}, err('must be a mapping'));

const I = RELAY_CONFIG_DEFAULTS.ipmi;
const ipmiSchema = z.strictObject({
  type: z.literal('ipmi'),
  ...common,
  host,
  port: port.default(I.port),
  user: z.string(err('must be a string')).default(''),
  ...secret,
  /** Which client runs the SOL session. */
  tool: z.enum(['ipmitool', 'ipmiconsole'], err('must be one of ipmitool, ipmiconsole')).default(I.tool),
  privilege: z.enum(['CALLBACK', 'USER', 'OPERATOR', 'ADMINISTRATOR'], err('must be one of CALLBACK, USER, OPERATOR, ADMINISTRATOR')).default(I.privilege),
  /** RMCP+ cipher suite id (0-17); default: the tool's. */
  cipherSuite: intIn(0, 17).optional(),
  /** BMC key (K_g) in a file, for BMCs that require one. */
  kgFile: text.optional(),
  /** ipmiconsole `-W` workarounds; for ipmitool one OEM type (`-o`). */
  workarounds: z.array(text, err('must be a list of strings')).optional(),
  /** The BMC is pinged (RMCP presence ping) this often while the session is open, so a dropped
   *  BMC is noticed in seconds (ipmitool alone takes minutes); 0 turns it off. Default 1000 ms. */
  pingIntervalMs: intIn(0, 60_000).optional(),
  /** Unanswered pings in a row that end the session. Default 3. */
  pingMisses: intIn(1, 100).optional(),
  /** Give up opening when SOL is not up after this long. Default 30000 ms. */
  openTimeoutMs: intIn(1000, 600_000).optional(),
}, err('must be a mapping'));

const consoleSchemas = [serialSchema, execSchema, telnetSchema, tcpSchema, udsSchema, sshSchema, ipmiSchema] as const;
const consoleSchema = z.discriminatedUnion('type', consoleSchemas, err('must be a mapping with a "type" field'));

const spoolSchema = z.strictObject({
  dir: text.optional(),
  segmentBytes: intIn(1024, 256 * 1024 * 1024).optional(),
  segmentMs: intIn(100, 24 * 3600 * 1000).optional(),
  capBytes: intIn(1024 * 1024, Number.MAX_SAFE_INTEGER).optional(),
  memoryBytes: intIn(1024, Number.MAX_SAFE_INTEGER).optional(),
  localAuditBytes: intIn(64 * 1024, Number.MAX_SAFE_INTEGER).optional(),
}, err('must be a mapping'));

const breakDefSchema = z.strictObject({
  /** What to send, with conserver's escapes (see breaks.ts): \z serial break, \d pause for
   *  delayMs, \ooo octal, \r \n \t \\, ^c a control character. */
  string: z.string(err('must be a string')),
  delayMs: intIn(0, 60_000).optional(),
  /** Ask the user before sending (shown in ^Ecl?). */
  confirm: z.boolean(err('must be true or false')).optional(),
}, err('must be a mapping with "string"'));

const LISTEN_RULE = 'must be HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464) or a port alone (on 127.0.0.1)';

/** `HOST:PORT`, `[v6]:PORT` or a port alone (127.0.0.1); undefined if it is none of these. Port 0:
 *  any free port (tests). */
export function parseListen(v: string | number): { host: string; port: number } | undefined {
  const s = String(v).trim();
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^\s:[\]/]+):)?(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) return undefined;
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/** Why /metrics may not listen on `listen` (undefined: it may): only loopback, unless allowed. */
export function metricsListenProblem(listen: string | number, allowRemote: boolean | undefined): string | undefined {
  const a = parseListen(listen);
  if (!a) return LISTEN_RULE;
  if (allowRemote || isLoopbackHost(a.host)) return undefined;
  return `${a.host} is not a loopback address: /metrics, /healthz and /readyz have no authentication and name every console; ` +
    'listen on 127.0.0.1 (a scraper on this host, or a proxy in front), or set metrics.allowRemote: true (--metrics-allow-remote) to serve them on the network';
}

const metricsSchema = z.strictObject({
  listen: z.union([z.string(), z.number()], err(LISTEN_RULE)).refine((v) => parseListen(v) !== undefined, err(LISTEN_RULE)),
  allowRemote: z.boolean(err('must be true or false')).optional(),
}, err('must be a mapping with listen (and allowRemote)')).superRefine((m, ctx) => {
  const bad = metricsListenProblem(m.listen, m.allowRemote);
  if (bad && parseListen(m.listen)) ctx.addIssue({ code: 'custom', message: bad, path: ['listen'], input: m.listen });
});

/** One OpenSSH public key line (`ssh-ed25519 AAAA... comment`, options before it not taken). */
const keyLine = z.string(err('must be an OpenSSH public key line (ssh-ed25519 AAAA... comment)'))
  .refine((l) => parsePublicKeyLine(l) !== undefined, err('must be an OpenSSH public key line (ssh-ed25519 AAAA... comment), as in a .pub file'));
const glob = z.string(err('must be a console glob')).superRefine((g, ctx) => {
  const bad = globProblem(g);
  if (bad) ctx.addIssue({ code: 'custom', message: bad, input: g });
});
const globs = z.array(glob, err('must be a list of console globs (e.g. ["*"], ["web*", "db01"])'));
const L = RELAY_CONFIG_DEFAULTS.localSsh;
const localSchema = z.strictObject({
  ssh: z.strictObject({
    listen: z.union([z.string(), z.number()], err(LISTEN_RULE)).refine((v) => parseListen(v) !== undefined, err(LISTEN_RULE)),
    hostKey: text.optional(),
    maxAuthTries: intIn(1, 100).default(L.maxAuthTries),
    authPerSourcePerMinute: intIn(1, 100_000).default(L.authPerSourcePerMinute),
    maxSessions: intIn(1, 10_000).default(L.maxSessions),
    // zod's default skips the transform: given in ms, as the transform makes it.
    idleTimeout: duration('30d', 30 * 86_400_000).default(L.idleTimeoutMs),
    maxBufferBytes: intIn(16 * 1024, 256 * 1024 * 1024).default(L.maxBufferBytes),
    loginGraceTime: duration('10m', 600_000).default(L.loginGraceMs),
  }, err('must be a mapping with listen')).optional(),
  users: z.record(z.string(), z.strictObject({
    keys: z.array(keyLine, err('must be a list of OpenSSH public key lines')).optional(),
    authorizedKeys: text.optional(),
    rw: globs.optional(),
    ro: globs.optional(),
  }, err('must be a mapping with keys or authorizedKeys, and rw or ro')).refine((u) => u.keys?.length || u.authorizedKeys, err('needs keys or authorizedKeys (else nobody can sign in as this user)')),
  err('must be a mapping of user names to their keys and rights')).optional(),
}, err('must be a mapping with ssh and users'));

const relaySchema = z.strictObject({
  local: localSchema.optional(),
  metrics: metricsSchema.optional(),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS, err(`must be one of ${LOG_LEVELS.join(', ')}`)).optional(),
  }, err('must be a mapping with level')).optional(),
  breaks: z.record(z.string(), breakDefSchema, err('must be a mapping of 1-9 a-z to break sequences')).optional(),
  relay: z.strictObject({
    name: text.regex(NAME_RE, err(NAME_RULE)).max(NAME_MAX, err(NAME_RULE)).optional(),
    spool: spoolSchema.optional(),
    cloud: z.strictObject({
      ca: text.optional(),
      fingerprint: text.refine((v) => { try { parseFingerprint(v); return true; } catch { return false; } }, err('must be SHA256: followed by 64 hex digits (colons allowed) or 43 base64 characters')).optional(),
      insecure: z.boolean(err('must be true or false')).optional(),
    }, err('must be a mapping with ca, fingerprint or insecure')).refine((c) => !(c.ca && c.fingerprint), err('give ca or fingerprint, not both')).optional(),
  }, err('must be a mapping')).optional(),
  consoles: z.record(z.string(), consoleSchema, err('must be a mapping of console names to console settings')),
}, err('must be a mapping with a "consoles" key'));

export type SerialConsoleConfig = z.output<typeof serialSchema>;
export type ExecConsoleConfig = z.output<typeof execSchema>;
export type TelnetConsoleConfig = z.output<typeof telnetSchema>;
export type TcpConsoleConfig = z.output<typeof tcpSchema>;
export type UdsConsoleConfig = z.output<typeof udsSchema>;
export type SshConsoleConfig = z.output<typeof sshSchema>;
export type IpmiConsoleConfig = z.output<typeof ipmiSchema>;
export type ConsoleConfig = SerialConsoleConfig | ExecConsoleConfig | TelnetConsoleConfig | TcpConsoleConfig
  | UdsConsoleConfig | SshConsoleConfig | IpmiConsoleConfig;
export type BreakDef = z.output<typeof breakDefSchema>;
export type LocalConfig = z.output<typeof localSchema>;
export type LocalSshConfig = NonNullable<LocalConfig['ssh']>;
export type LocalUsersConfig = NonNullable<LocalConfig['users']>;
export interface SpoolConfig { dir?: string; segmentBytes?: number; segmentMs?: number; capBytes?: number; memoryBytes?: number; localAuditBytes?: number }
export interface RelayConfig {
  /** `name`: absent, the relay takes its token's (the cloud says it in its welcome). */
  relay: { name?: string; spool?: SpoolConfig; cloud?: { ca?: string; fingerprint?: string; insecure?: boolean } };
  /** Where /metrics, /healthz and /readyz listen (off without it); checked: loopback unless allowRemote. */
  metrics?: { listen: string | number; allowRemote?: boolean };
  log?: { level?: LogLevel };
  /** Local (break-glass) SSH access at the relay: off without `local.ssh`. */
  local?: LocalConfig;
  /** Break sequences defined in the file (merged over conserver's defaults by breaks.ts). */
  breaks?: Record<string, BreakDef>;
  consoles: Record<string, ConsoleConfig>;
}

/** Reads and validates a relay config file; throws ConfigError listing every problem. */
export function loadRelayConfig(file: string): RelayConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`cannot read file: ${(e as Error).message}`]);
  }
  return parseRelayConfig(text, file);
}

/** Validates config text; `file` only names the source in the error. */
export function parseRelayConfig(text: string, file: string): RelayConfig {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    // A broken YAML tree says nothing reliable about fields, so report only the syntax errors.
    throw new ConfigError(file, doc.errors.map((e) => {
      const line = e.linePos?.[0].line;
      const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      return `${line !== undefined ? `line ${line}: ` : ''}YAML syntax error: ${what}`;
    }));
  }
  let raw: unknown;
  try {
    raw = doc.toJS(); // throws e.g. on excessive alias expansion
  } catch (e) {
    throw new ConfigError(file, [`YAML error: ${(e as Error).message}`]);
  }
  const problems: string[] = [];
  // zod skips the value of a record entry whose key is invalid, so names are checked here to still
  // report both the bad name and what is wrong inside that console.
  const consoles = (raw as { consoles?: unknown } | null)?.consoles;
  if (consoles && typeof consoles === 'object' && !Array.isArray(consoles)) {
    for (const name of Object.keys(consoles)) {
      if (!isConsoleName(name)) problems.push(`console ${JSON.stringify(name)}: name ${NAME_RULE}`);
    }
  }
  const result = relaySchema.safeParse(raw, { reportInput: true });
  if (!result.success) problems.push(...result.error.issues.flatMap((i) => describe(i, consoles)));
  problems.push(...crossChecks(raw));
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  const data = result.data;
  return {
    relay: { ...(data.relay?.name ? { name: data.relay.name } : {}), spool: data.relay?.spool, ...(data.relay?.cloud ? { cloud: data.relay.cloud } : {}) },
    ...(data.breaks ? { breaks: data.breaks } : {}),
    ...(data.metrics ? { metrics: data.metrics } : {}),
    ...(data.log ? { log: data.log } : {}),
    ...(data.local ? { local: data.local } : {}),
    consoles: data.consoles,
  };
}

/** Rules that span fields, checked on the raw document so they are reported together with the
 *  schema's problems (values of the wrong type are left to the schema). */
function crossChecks(raw: unknown): string[] {
  const problems: string[] = [];
  const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined);
  const doc = obj(raw);
  const breaks = obj(doc?.breaks) ?? {};
  for (const [k, b] of Object.entries(breaks)) {
    if (!/^[1-9a-z]$/.test(k)) problems.push(`breaks: ${JSON.stringify(k)}: must be one of 1-9 a-z`);
    const str = obj(b)?.string;
    if (typeof str === 'string') { const bad = breakStringProblem(str); if (bad) problems.push(`breaks: ${k}: string: ${bad}`); }
  }
  for (const [name, v] of Object.entries(obj(doc?.consoles) ?? {})) {
    const c = obj(v);
    if (!c) continue;
    const given = ['password', 'passwordFile', 'passwordEnv'].filter((f) => c[f] !== undefined);
    if (given.length > 1) problems.push(`console ${name}: give only one of password, passwordFile, passwordEnv (got ${given.join(', ')})`);
    if (c.type === 'ssh' && given.length === 0 && c.keyFile === undefined) {
      problems.push(`console ${name}: ssh needs keyFile or one of password, passwordFile, passwordEnv`);
    }
    if (typeof c.idleString === 'string') { const bad = breakStringProblem(c.idleString); if (bad) problems.push(`console ${name}: idleString: ${bad}`); }
    const ids = [c.break, ...(Array.isArray(c.breaklist) ? c.breaklist : [])].filter((b) => b !== undefined).map(String);
    for (const b of ids) {
      if (/^[1-9a-z]$/.test(b) && !/^[1-4]$/.test(b) && !breaks[b]) problems.push(`console ${name}: break ${b} is not defined (1-4 are built in; define others under breaks:)`);
    }
  }
  return problems;
}

/** Turns one zod issue into "console web01: baud: must be ... (got "fast")" lines; `consoles` is
 *  the raw consoles mapping, to name the type in "required for type exec". */
function describe(issue: z.core.$ZodIssue, consoles: unknown): string[] {
  const path = issue.path.map(String);
  let where: string;
  let field: string[];
  let type: unknown;
  if (path[0] === 'consoles' && path.length >= 2) {
    where = `console ${path[1]}`;
    field = path.slice(2);
    type = (consoles as Record<string, { type?: unknown } | undefined>)[path[1]]?.type;
  } else if (path[0] === 'local' && path[1] === 'users' && path.length >= 3) {
    where = `local: user ${path[2]}`;
    field = path.slice(3);
  } else if (path[0] === 'relay') {
    where = 'relay';
    field = path.slice(1);
  } else {
    where = path.length ? path.join('.') : 'top level';
    field = [];
  }
  const prefix = [where, ...(field.length ? [field.join('.')] : [])].join(': ');
  const input = (issue as { input?: unknown }).input;

  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${prefix}: unknown field "${k}"`);
  if (issue.code === 'invalid_union' && (issue as { note?: string }).note === 'No matching discriminator') {
    const types = consoleSchemas.map((s) => s.shape.type.value).join(', ');
    return [type === undefined ? `${prefix}: required (one of ${types})` : `${prefix}: must be one of ${types}${got(type)}`];
  }
  if (input === undefined && path.length > 0) {
    return [`${prefix}: required${typeof type === 'string' ? ` for type ${type}` : ''}`];
  }
  return [`${prefix}: ${issue.message}${got(input)}`];
}

function got(v: unknown): string {
  if (v === undefined) return '';
  let s: string;
  // A YAML alias inside its own anchor (`a: &x [*x]`) makes a value that contains itself.
  try { s = JSON.stringify(v) ?? String(v); } catch { s = 'a value that contains itself (a YAML alias inside its own anchor)'; }
  if (s.length > 60) s = s.slice(0, 57) + '...';
  return ` (got ${s})`;
}
