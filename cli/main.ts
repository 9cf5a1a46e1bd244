// The `cloudcons` command line. Exit codes: 0 ok, 1 error, 2 not found / bad usage, 3 not logged in.
import { Command, Option } from 'commander';
import { BadParameter, CcError, ConfigError } from '../protocol/errors.ts';
import { tokenName } from '../protocol/principal.ts';
import type { ConsoleView, RelayView } from '../cloud/core/core.ts';
import type { AuditRecord } from '../cloud/core/ports.ts';
import type { Viewer } from '../protocol/messages.ts';
import { api, apiJson } from './api.ts';
import { registerAuditReseal, registerAuditVerify } from './audit-verify.ts';
import { attach } from './attach.ts';
import { parseEscapeSpec } from './escape.ts';
import { resolveLogin, saveLogin, userLoginFile } from './login-config.ts';
import { readable } from './readable.ts';
import { err, json, line, out, safe, safeLines, table, write, type Shown } from './print.ts';
import { parseExpiry, registerAccess, registerTokenAdmin } from './access.ts';
import { registerKeys } from './keys.ts';
import { LOG_LEVELS } from '../protocol/log.ts';
import pkg from '../package.json' with { type: 'json' };

const program = new Command('cloudcons')
  .version(pkg.version, '-V, --version')
  .description('Serial console management through the cloud: attach, spy, replay and audit consoles held by edge relays.')
  .showHelpAfterError()
  .addHelpText('after', `
Examples:
  npm start                                   # embedded cloud + local relay + demo console
  cloudcons attach demo                       # interactive; ^Ec? for help, ^Ec. to leave
  cloudcons attach web01 -s                   # read-only spy
  cloudcons ls --json
  cloudcons replay web01 --tail 50
  cloudcons login https://cloud.example:7420 --token ccu_...`);

const tlsOpts = (c: Command, saved = ' (default: from cloudcons login, else the system\'s CAs)') => c
  .option('--ca <file>', `trust the cloud's certificate only if this CA (PEM) signed it (or CLOUDCONS_CA)${saved}`)
  .option('--fingerprint <sha256>', `accept exactly the cloud certificate with this SHA-256 fingerprint, even self-signed (SHA256:... or hex; or CLOUDCONS_FINGERPRINT)${saved}`)
  .option('--insecure', 'allow plain http:// to a host that is not loopback (or CLOUDCONS_INSECURE=1)');
const loginOpts = (c: Command) => tlsOpts(c.option('--url <url>', 'cloud URL (default: from cloudcons login or CLOUDCONS_URL)')
  .option('--token-file <file>', 'file holding the user token (default: from cloudcons login, CLOUDCONS_TOKEN_FILE or CLOUDCONS_TOKEN)')
  .option('--token <token>', 'user token; warned: `ps` shows a command line, use --token-file'));
/** How long from `from` to `to`, the way `relays` shows ages: 45s, 12m, 3h, 2d. */
const age = (from: number | undefined, to: number) => {
  if (from === undefined) return '?';
  const s = Math.max(0, Math.round((to - from) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
};
const bytes = (n: number) => (n < 10_240 ? `${n} B` : n < 10 * 1024 ** 2 ? `${Math.round(n / 1024)} KiB` : `${Math.round(n / 1024 ** 2)} MiB`);
const warnLogin = (l: string) => err(line`cloudcons: ${l}`);
/** The log of a long-running command (cli/log.ts); set up first, before anything logs. */
const logOpts = (c: Command) => c
  .addOption(new Option('--log-level <level>', 'log only this level and above (or CLOUDCONS_LOG_LEVEL; default info)').choices(LOG_LEVELS))
  .addOption(new Option('--log-format <format>', 'json (one object a line, with time, level and fields) or pretty (readable lines); default: pretty on a terminal, else json (or CLOUDCONS_LOG_FORMAT)').choices(['json', 'pretty']));
const setupLog = async (o: { logLevel?: string; logFormat?: string }) => (await import('./log.ts')).setupLogging({ level: o.logLevel, format: o.logFormat });
const login = (o: { url?: string; token?: string; tokenFile?: string; ca?: string; fingerprint?: string; insecure?: boolean }) =>
  resolveLogin({ url: o.url, token: o.token, tokenFile: o.tokenFile, ca: o.ca, fingerprint: o.fingerprint, insecure: o.insecure, warn: warnLogin });
const int = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CcError('CC_ERR_BAD_PARAMETER', `${name}: expected an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}, got ${JSON.stringify(v)}`);
  return n;
};
const duration = (name: string) => (v: string) => {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(v.trim());
  if (!m) throw new CcError('CC_ERR_BAD_PARAMETER', `${name}: expected a duration like 90d, 12h, 30m, got ${JSON.stringify(v)}`);
  return Math.round(Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 's']);
};
const float = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new CcError('CC_ERR_BAD_PARAMETER', `${name}: expected a number > 0, got ${JSON.stringify(v)}`);
  return n;
};

loginOpts(program.command('attach <console>')
  .description('attach to a console (read-write if the write lock is free, else spy)')
  .option('-f, --force', 'force the write lock (the current writer becomes a spy)')
  .option('-s, --spy', 'attach read-only')
  .option('-e, --escape <chars>', 'escape sequence, conserver notation', '^Ec')
  .option('--tail <lines>', 'show this many lines of history first', int('--tail'), 0))
  .action(async (name: string, o) => {
    const l = login(o);
    process.exitCode = await attach({ url: l.url, token: l.token, tls: l, console: name, mode: o.force ? 'force' : o.spy ? 'spy' : 'rw', escape: parseEscapeSpec(o.escape), tail: o.tail });
  });

loginOpts(program.command('ls').description('list consoles').option('--json', 'machine-readable output'))
  .action(async (o) => {
    const { consoles, cloud } = await apiJson<{ consoles: ConsoleView[]; cloud?: { problems: string[] } }>(login(o), '/v1/consoles');
    for (const p of cloud?.problems ?? []) err(line`cloudcons: the cloud is degraded: ${p}`);
    if (o.json) { out(json(consoles)); return; }
    const rows = consoles.map((c) => [c.name, c.state, c.type, c.relay, c.writer ?? '-', c.spies, c.reason ?? '']);
    table([['NAME', 'STATE', 'TYPE', 'RELAY', 'WRITER', 'SPIES', 'REASON'], ...rows]);
  });

loginOpts(program.command('relays').description('list relays: version, connection, consoles, spool backlog, last upload (admins see all; others the relays of consoles they may list)')
  .option('--json', 'machine-readable output (times in ms since the epoch)'))
  .action(async (o) => {
    const { relays } = await apiJson<{ relays: RelayView[] }>(login(o), '/v1/relays');
    if (o.json) { out(json(relays)); return; }
    const now = Date.now();
    const rows = relays.map((r) => [
      r.name, r.version ?? '-', [r.os, r.arch].filter(Boolean).join(' ') || '-',
      r.connected ? `up ${age(r.connectedSince, now)}` : r.lastSeen !== undefined ? `down, seen ${age(r.lastSeen, now)} ago` : 'never connected',
      r.consoles.length, r.spool ? bytes(r.spool.bytes) : '-', r.spool?.oldestUnsentMs !== undefined ? age(0, r.spool.oldestUnsentMs) : '-',
      r.lastUpload !== undefined ? `${age(r.lastUpload, now)} ago` : '-',
    ]);
    table([['NAME', 'VERSION', 'OS', 'CONNECTED', 'CONSOLES', 'BACKLOG', 'OLDEST UNSENT', 'LAST UPLOAD'], ...rows]);
  });

loginOpts(program.command('who <console>').description('users on a console and their modes').option('--json', 'machine-readable output'))
  .action(async (name: string, o) => {
    const c = await apiJson<ConsoleView>(login(o), `/v1/consoles/${encodeURIComponent(name)}`);
    if (o.json) { out(json(c.viewers)); return; }
    table([['USER', 'MODE', 'SINCE', 'CLIENT', 'SESSION'], ...c.viewers.map((v: Viewer) => [v.user, v.mode, new Date(v.since).toISOString(), v.client ?? '-', v.session])]);
  });

const consoleCmd = program.command('console').description('take a console down by hand or bring it up (also ends a flap hold); admins: remove a console\'s name, or move it to another relay');
for (const op of ['down', 'up'] as const) {
  loginOpts(consoleCmd.command(`${op} <console>`).description(op === 'down'
    ? 'close the console at its relay until `console up` (kept across relay restarts)'
    : 'reopen a console taken down, or retry a failing or flapping one now'))
    .action(async (name: string, o) => {
      const c = await apiJson<ConsoleView>(login(o), `/v1/consoles/${encodeURIComponent(name)}/${op}`, { method: 'POST' });
      out(op === 'down' ? line`console ${c.name}: taken down (relay ${c.relay})` : line`console ${c.name}: bringing up (relay ${c.relay})`);
    });
}
loginOpts(consoleCmd.command('rm <console>')
  .description('admins: free a console\'s name (it belongs to the relay that registered it until then); its output and audit are kept. Refused while its relay publishes it: take it out of that relay\'s config first'))
  .action(async (name: string, o) => {
    const c = await apiJson<ConsoleView>(login(o), `/v1/consoles/${encodeURIComponent(name)}`, { method: 'DELETE' });
    out(line`console ${c.name}: removed (it was relay ${c.relay}'s; its output and audit are kept)`);
  });
loginOpts(consoleCmd.command('move <console>')
  .description('admins: give a console to another relay, which publishes it when it next connects; the relay it belonged to is told to take it down')
  .requiredOption('--relay <name>', 'the relay that publishes it from now on'))
  .action(async (name: string, o) => {
    const c = await apiJson<ConsoleView>(login(o), `/v1/consoles/${encodeURIComponent(name)}/move`, { method: 'POST', body: JSON.stringify({ relay: o.relay }) });
    out(line`console ${c.name}: moved to relay ${c.relay} (up when it connects with it)`);
  });

loginOpts(program.command('replay <console>').description('print stored output (works while the console or relay is down)')
  .option('--tail <lines>', 'the last N lines of the range (default 20 when neither --since nor --from is given)', int('--tail', 0))
  .option('--since <time>', 'from this time: 2h, 30m, 1d (ago), 2026-11-25, "2026-11-25 14:00", ISO time')
  .option('--until <time>', 'up to this time (same forms)')
  .option('--from <offset>', 'the exact bytes from this output offset on (0 = everything)', int('--from'))
  .option('-f, --follow', 'then keep printing live output (no gap, no overlap at the seam), until Ctrl-C')
  .option('--timestamps', 'prefix each line with the time its first byte arrived (UTC)')
  .option('--raw', 'the exact bytes, no markers for lost or missing output')
  .option('--marks', 'interleave conserver-style [-- MARK --] lines and attach/lock/break/up/down events')
  .option('--speed <x>', 'play back in real time, scaled (2 = twice as fast)', float('--speed'))
  .option('--max-idle <s>', 'with --speed: longest pause between outputs (default 2)', float('--max-idle')))
  .action(async (name: string, o) => {
    const { replay } = await import('./replay.ts');
    if (o.from !== undefined) {
      // Exact bytes from an offset: what reconnecting clients and scripts use.
      const res = await api(login(o), `/v1/consoles/${encodeURIComponent(name)}/replay?from=${o.from}&format=raw`);
      await write(process.stdout, Buffer.from(await res.arrayBuffer()));
      return;
    }
    process.exitCode = await replay(login(o), name, { tail: o.tail, since: o.since, until: o.until, follow: o.follow, timestamps: o.timestamps, raw: o.raw, marks: o.marks, speed: o.speed, maxIdle: o.maxIdle });
  });

loginOpts(program.command('export <console>').description('write stored output as raw bytes, timestamped text or an asciicast v2 recording')
  .option('--since <time>', 'from this time (default: everything)').option('--until <time>', 'up to this time')
  .addOption(new Option('--format <f>', 'raw | text | asciicast').choices(['raw', 'text', 'asciicast']).default('text'))
  .option('-o, --output <file>', 'write here instead of stdout (a progress bar shows on a terminal)')
  .option('--width <cols>', 'asciicast terminal width (default 80)', int('--width', 1)).option('--height <rows>', 'asciicast terminal height (default 24)', int('--height', 1)))
  .action(async (name: string, o) => {
    const { exportLog } = await import('./replay.ts');
    process.exitCode = await exportLog(login(o), name, { since: o.since, until: o.until, format: o.format, output: o.output, width: o.width, height: o.height });
  });

loginOpts(program.command('grep <pattern>').description('search stored output of many consoles (regex); exit 1 when nothing matched')
  .option('--console <glob>', 'consoles to search (default *)').option('--since <time>', 'from this time').option('--until <time>', 'up to this time')
  .option('-i, --ignore-case', 'case-insensitive').option('--json', 'one JSON object per match')
  .option('--raw', 'print matched lines as the console sent them, escape sequences and all (default: control characters shown as ^[, ^M ...)')
  .option('--max <n>', 'stop after N matches (default 1000)', int('--max', 1)))
  .action(async (pattern: string, o) => {
    const { grep } = await import('./replay.ts');
    process.exitCode = await grep(login(o), pattern, { console: o.console, since: o.since, until: o.until, ignoreCase: o.ignoreCase, json: o.json, max: o.max, raw: o.raw });
  });

loginOpts(program.command('audit <console>').description('who typed what, and attach/detach/lock/break events')
  .option('--json', 'machine-readable output').option('--limit <n>', 'newest N records', int('--limit', 1)))
  .action(async (name: string, o) => {
    const q = o.limit ? `?limit=${o.limit}` : '';
    const { records } = await apiJson<{ records: AuditRecord[] }>(login(o), `/v1/consoles/${encodeURIComponent(name)}/audit${q}`);
    if (o.json) { out(json(records)); return; }
    for (const r of records) out(formatAudit(r));
  });
registerAuditVerify(program.commands.find((c) => c.name() === 'audit')!, loginOpts, login); // `audit verify [NAME]`
registerAuditReseal(program.commands.find((c) => c.name() === 'audit')!, loginOpts, login); // `audit reseal NAME`

loginOpts(program.command('whoami').description('who the stored login is, on which cloud').option('--show-token', 'also print the token (to sign in to the web viewer)'))
  .action(async (o) => {
    const l = login(o);
    const who = await apiJson<{ name: string; kind: string; admin?: boolean; groups?: string[]; via?: string; tokenId?: string }>(l, '/v1/whoami');
    out(line`${who.name}${who.admin ? ' (admin)' : ''} on ${l.url} (login from ${l.source})`);
    if (who.groups?.length) out(line`groups: ${who.groups.join(', ')}`);
    if (who.via === 'oidc') out(line`signed in via OpenID Connect: ${who.tokenId?.replace(/^oidc:/, '')}`);
    if (o.showToken) out(line`${l.token}`);
  });

tlsOpts(program.command('login <url>').description('store the cloud URL, a token and the certificate pin (--ca or --fingerprint) (file mode 0600)'), '')
  .option('--token-file <file>', 'file holding the user token (cloudcons token create makes one), or an OpenID Connect ID token when the cloud has single sign-on (or CLOUDCONS_TOKEN_FILE)')
  .option('--token <token>', 'the token itself; warned: `ps` shows a command line (or CLOUDCONS_TOKEN)')
  .action(async (url: string, o) => {
    const l = resolveLogin({ url, token: o.token, tokenFile: o.tokenFile, ca: o.ca, fingerprint: o.fingerprint, insecure: o.insecure, warn: warnLogin, noFiles: true }); // what it stores comes from this command
    const who = await apiJson<{ name: string; kind: string }>(l, '/v1/whoami?signin=cli');
    const file = userLoginFile();
    saveLogin(file, l);
    out(line`logged in to ${l.url} as ${who.name}${l.fingerprint ? ` (certificate pinned: ${l.fingerprint})` : l.ca ? ` (trusting CA ${l.ca})` : ''}; saved to ${file}`);
  });

const tokenCmd = program.command('token').description('user tokens');
loginOpts(tokenCmd.command('create').description('create a user token (prints the secret once)')
  .requiredOption('--user <name>', 'user name').option('--admin', 'may do everything: tokens, access rules, every console')
  .option('--expires <when>', 'never, a duration (90d, 12h, 2w) or a date; default: 90d')
  .option('--data <dir>', 'create it directly in this embedded cloud data directory (no login needed)')
  .option('--dynamodb-table <name>', 'create it directly in an AWS stack\'s table (output TableName) with your AWS credentials: the first admin token of a deployment'))
  .action(async (o) => printToken(await createToken(o, { kind: 'user', name: o.user, admin: !!o.admin, ...expiry(o.expires, 90 * 86_400_000) })));
registerTokenAdmin(tokenCmd, loginOpts, login);
registerAccess(program, loginOpts, login);
registerKeys(program, loginOpts, login);

const relayTokenCmd = program.command('relay-token').description('relay tokens');
loginOpts(relayTokenCmd.command('create <name>').description('create a token for a relay (prints the secret once)')
  .option('--data <dir>', 'create it directly in this embedded cloud data directory (no login needed)')
  .option('--dynamodb-table <name>', 'create it directly in an AWS stack\'s table (output TableName) with your AWS credentials')
  .option('--expires <when>', 'never (the default), a duration (90d, 12h, 2w) or a date: rotate by creating the next token before revoking this one'))
  .action(async (name: string, o) => printToken(await createToken(o, { kind: 'relay', name, ...expiry(o.expires) })));

logOpts(program.command('relay').description('run an edge relay (SIGHUP reloads its config, token file and certificate trust)')
  .option('--config <file>', 'relay config (YAML); required to run')
  .option('--check-config <file>', 'only check this relay config (every problem; exit 0 if it is good, 2 if not) and print its consoles; needs no cloud or token')
  .option('--cloud <url>', 'cloud URL (or CLOUDCONS_URL)')
  .option('--token-file <file>', 'file holding the relay token (or CLOUDCONS_TOKEN_FILE; under systemd, LoadCredential=relay-token:FILE is picked up by itself)')
  .option('--token <token>', 'relay token (or CLOUDCONS_RELAY_TOKEN); warned: `ps` shows a command line, use --token-file')
  .option('--spool <dir>', 'spool directory: output waits here until the cloud stored it (default: config relay.spool.dir, else STATE/spool/NAME, or STATE/spool/default when relay.yaml names no relay; STATE is $STATE_DIRECTORY under systemd, else ~/.local/state/cloudcons)')
  .option('--segment-bytes <n>', 'seal spool segments at this size (default 1048576)', int('--segment-bytes', 1024))
  .option('--segment-ms <ms>', 'seal spool segments when their oldest byte is this old (default 60000)', int('--segment-ms', 100))
  .option('--spool-cap-bytes <n>', 'disk the spool may use; past it the oldest unsent segments become recorded gaps (default 1 GiB)', int('--spool-cap-bytes', 1024 * 1024))
  .option('--spool-memory-bytes <n>', 'output held in memory (all consoles) while the spool disk refuses writes (full); past it the oldest becomes a recorded gap (default 16777216)', int('--spool-memory-bytes', 1024))
  .option('--heartbeat-ms <ms>', 'heartbeat to the cloud; the link is dropped after 3 silent intervals (default 20000)', int('--heartbeat-ms', 100))
  .option('--status-ms <ms>', 'tell the cloud the spool backlog this often, for cloudcons relays (default 30000)', int('--status-ms', 100))
  .option('--ws-url <url>', 'WebSocket URL when it is not CLOUD/v1/relay, e.g. an API Gateway stage (or CLOUDCONS_WS_URL)')
  .option('--max-connection-ms <ms>', 'move to a fresh connection (make-before-break) after this long on one; 0 never (default 6600000: API Gateway closes at 2 h)', int('--max-connection-ms', 0))
  .option('--batch-ms <ms>', 'under continuous output, gather reads this long into one message (default 1; 0 = never)', int('--batch-ms'))
  .option('--upload-concurrency <n>', 'segment uploads in flight at once, each for another console (default 4)', int('--upload-concurrency', 1))
  .option('--upload-timeout-ms <ms>', 'give up on one upload request after this long and retry it later (default 60000)', int('--upload-timeout-ms', 100))
  .option('--upload-max-backoff-ms <ms>', 'longest wait before retrying a failing upload; the first wait is 0.5-1 s, doubling (default 60000)', int('--upload-max-backoff-ms', 1000))
  .option('--conflict-keep <n>', 'segments the cloud refused as other output than it stored first, kept per console as SPOOL/NAME/*.seg.conflict for an operator (default 16)', int('--conflict-keep', 0))
  .option('--reconnect-max-backoff-ms <ms>', 'longest wait before dialling the cloud again; waits start at 250 ms and double, with full jitter (default 30000)', int('--reconnect-max-backoff-ms', 250))
  .option('--ca <file>', 'trust the cloud\'s certificate only if this CA (PEM) signed it (or CLOUDCONS_CA, or relay.cloud.ca in the config; default: the system\'s CAs)')
  .option('--fingerprint <sha256>', 'accept exactly the cloud certificate with this SHA-256 fingerprint, even self-signed (or CLOUDCONS_FINGERPRINT, or relay.cloud.fingerprint)')
  .option('--insecure', 'allow plain http:// to a cloud that is not on loopback (or CLOUDCONS_INSECURE=1, or relay.cloud.insecure)')
  .option('--metrics-listen <host:port>', 'serve /metrics (Prometheus), /healthz and /readyz here, e.g. 127.0.0.1:9464 (or metrics.listen in the config; default: off)')
  .option('--metrics-allow-remote', 'allow --metrics-listen on an address that is not loopback (they have no authentication; or metrics.allowRemote)'))
  .action(async (o) => {
    if (o.checkConfig !== undefined) { (await import('./run-relay.ts')).checkRelayConfig(o.checkConfig); return; }
    if (o.config === undefined) throw new BadParameter('--config FILE is required (the relay config, YAML); --check-config FILE only checks one');
    await setupLog(o);
    const { runRelay } = await import('./run-relay.ts');
    await runRelay({ metricsListen: o.metricsListen, metricsAllowRemote: o.metricsAllowRemote, config: o.config, cloud: o.cloud ?? process.env.CLOUDCONS_URL, token: o.token, tokenFile: o.tokenFile, tls: { ca: o.ca, fingerprint: o.fingerprint, insecure: o.insecure }, limits: { spoolDir: o.spool, segmentBytes: o.segmentBytes, segmentMs: o.segmentMs, spoolCapBytes: o.spoolCapBytes, spoolMemoryBytes: o.spoolMemoryBytes, heartbeatMs: o.heartbeatMs, statusMs: o.statusMs, batchMs: o.batchMs, maxConnectionMs: o.maxConnectionMs, uploadConcurrency: o.uploadConcurrency, uploadTimeoutMs: o.uploadTimeoutMs, uploadMaxBackoffMs: o.uploadMaxBackoffMs, conflictKeep: o.conflictKeep, maxBackoffMs: o.reconnectMaxBackoffMs, wsUrl: o.wsUrl ?? process.env.CLOUDCONS_WS_URL } });
  });

logOpts(program.command('cloud').description('run the embedded cloud (HTTP + WebSocket, filesystem store)')
  .requiredOption('--data <dir>', 'data directory')
  .option('--host <addr>', 'listen address; without TLS only loopback (127.0.0.1, ::1, localhost) unless --insecure-http', '127.0.0.1')
  .addOption(new Option('--port <port>', 'listen port (0 = any free port)').argParser(int('--port')).default(7420))
  .option('--tls-cert <file>', 'serve HTTPS and WSS with this certificate (PEM, chain after it); with --tls-key')
  .option('--tls-key <file>', 'the certificate\'s private key (PEM)')
  .option('--tls-self-signed', 'serve HTTPS with a self-signed certificate kept in DATA/tls (made on first start, reused after); prints the fingerprint clients pin')
  .option('--insecure-http', 'allow plain HTTP on an address that is not loopback (TLS ends in a proxy in front, or the network is trusted)')
  .option('--hsts-max-age <s>', 'over HTTPS, browsers keep to HTTPS this long after any answer (Strict-Transport-Security; 0 makes them forget it; default 31536000)', int('--hsts-max-age', 0))
  .option('--hsts-include-subdomains', 'over HTTPS, the same for every subdomain of the cloud\'s host name (default off)')
  .option('--lease-ms <ms>', 'write-lock lease, renewed by the writer\'s heartbeat (default 30000)', int('--lease-ms', 1000))
  .option('--max-frame-bytes <n>', 'largest WebSocket frame accepted (default 32768)', int('--max-frame-bytes', 1024))
  .option('--idle-timeout-ms <ms>', 'close connections silent this long (default 90000)', int('--idle-timeout-ms', 1000))
  .option('--viewer-high-water-bytes <n>', 'drop live output to a viewer with this much unsent (default 8 MiB)', int('--viewer-high-water-bytes', 1024))
  .option('--viewer-stall-ms <ms>', 'disconnect a viewer that is behind and reads nothing this long (default 60000)', int('--viewer-stall-ms', 100))
  .option('--max-segment-bytes <n>', 'largest segment upload a relay may send (default 16777216)', int('--max-segment-bytes', 1024))
  .option('--max-body-bytes <n>', 'largest request body of the other HTTP routes (default 1048576)', int('--max-body-bytes', 1024))
  .option('--session-msgs-per-sec <n>', 'messages a CLI or browser connection may send per second; past it the socket is read no faster (default 200)', int('--session-msgs-per-sec', 1))
  .option('--relay-msgs-per-sec <n>', 'the same for a relay connection (default 20000)', int('--relay-msgs-per-sec', 1))
  .option('--max-conns-per-user <n>', 'open WebSockets per user (default 32)', int('--max-conns-per-user', 1))
  .option('--max-conns-per-relay <n>', 'open WebSockets per relay (default 4)', int('--max-conns-per-relay', 1))
  .option('--max-sessions-per-console <n>', 'writer and spies one console takes (default 64)', int('--max-sessions-per-console', 1))
  .option('--max-queries-per-user <n>', 'replay, export, grep and history requests one user may have running at once, over all sessions and HTTP requests; more get 429 (default 4)', int('--max-queries-per-user', 1))
  .option('--max-queries <n>', 'the same for all users together (default 16)', int('--max-queries', 1))
  .option('--max-history-bytes <n>', 'most output sent as history on attach or replay; also how far back its line search looks (default 1048576)', int('--max-history-bytes', 1024))
  .option('--history-buffer-bytes <n>', 'history is sent to a connection while its send buffer is below this (default 262144)', int('--history-buffer-bytes', 1024))
  .option('--max-pattern-length <n>', 'longest grep pattern accepted, in characters (default 1000)', int('--max-pattern-length', 1))
  .option('--max-pattern-states <n>', 'most matcher states a grep pattern may compile to; counted repeats like x{100} multiply (default 4000)', int('--max-pattern-states', 10))
  .option('--max-grep-ms <ms>', 'one grep request scans this long at most, then ends with a truncation notice (default 20000)', int('--max-grep-ms', 100))
  .option('--max-consoles-per-relay <n>', 'consoles registered to one relay; a hello with more new ones is refused for those (default 1024)', int('--max-consoles-per-relay', 1))
  .option('--relay-audits-per-min <n>', 'audit records one relay\'s messages may cause per minute; more are counted in one record (default 600)', int('--relay-audits-per-min', 1))
  .option('--relay-audit-burst <n>', '... and at once (default 3000: a relay with 1024 consoles restarting)', int('--relay-audit-burst', 1))
  .option('--user-audits-per-min <n>', 'audit records one user may cause per minute by what is refused (denied input, actions, sessions) and by sign-ins; more are counted in one record (default 120)', int('--user-audits-per-min', 1))
  .option('--user-audit-burst <n>', '... and at once (default 300)', int('--user-audit-burst', 1))
  .option('--fence-claim-slack <n>', 'how far above the highest fence handed out a relay may claim to have seen one (default 1000)', int('--fence-claim-slack', 0))
  .option('--relay-status-min-ms <ms>', 'shortest time between two relay status reports (spool backlog, for cloudcons relays) that are stored; sooner ones are ignored (default 5000)', int('--relay-status-min-ms', 0))
  .option('--max-keys-per-user <n>', 'SSH public keys one user may keep for local access at the relays (default 16)', int('--max-keys-per-user', 1, 1000))
  .option('--max-key-file-bytes <n>', 'largest key file cloudcons keys add takes (default 65536)', int('--max-key-file-bytes', 1024))
  .option('--max-uploads-per-relay <n>', 'segment uploads in progress at once per relay; more get 429 before their body is read (default 8)', int('--max-uploads-per-relay', 1))
  .option('--max-uploads <n>', 'segment uploads in progress at once over all relays (default 32; each holds up to --max-segment-bytes)', int('--max-uploads', 1))
  .option('--user-token-ttl <age>', 'lifetime of user tokens created without --expires (default 90d; 0d = never)', (v: string) => (v === '0' || /^0[smhdw]?$/.test(v) ? 0 : duration('--user-token-ttl')(v)))
  .option('--audit-text-max <n>', 'longest text (detail, user) an audit record keeps of what a request or relay sent; longer is cut with a marker (default 1024)', int('--audit-text-max', 64))
  .option('--access-cache-ms <ms>', 'how long the access rules read are used before reading them again (default 2000)', int('--access-cache-ms', 0))
  .option('--token-recheck-ms <ms>', 'every open connection\'s token, rights and write lease are checked again this often (default 30000, at most 30000)', int('--token-recheck-ms', 100, 30_000)) // core.ts TOKEN_RECHECK_MAX_MS (not imported: the CLI loads the core lazily)
  .option('--retention <age>', 'delete stored output older than this (e.g. 90d, 12h; default: keep forever)', duration('--retention'))
  .option('--disk-probe-ms <ms>', 'while the data disk is full, look for room again this often; storing resumes by itself then (default 1000)', int('--disk-probe-ms', 50))
  .addOption(new Option('--live <mode>', 'which output relays stream live: every console\'s (always), or only consoles someone is attached to (watched; the AWS stack\'s mode: replay of an unwatched console then lags by up to the relays\' segment time)').choices(['always', 'watched']).default('always'))
  .option('--quiet-batch-ms <ms>', 'relays gather live output of a console nobody typed on in the last 2 s this long into one message (default 0; the AWS stack uses 2000)', int('--quiet-batch-ms', 0))
  .option('--no-redact-passwords', 'audit input typed at a password prompt in clear (default: redacted, only its length is kept)')
  .option('--secret-prompt <regex>', 'another password prompt to recognise besides the built-in ones (password, PIN, passphrase ... in many languages, ending in ":"), matched case-insensitively against the console\'s line as shown', (v: string) => {
    try { return new RegExp(v, 'i'); } catch (e) { throw new CcError('CC_ERR_BAD_PARAMETER', `--secret-prompt: ${(e as Error).message}`); }
  })
  .option('--s3-bucket <name>', 'keep sealed segments in this S3 bucket instead of DATA/segments (region, credentials, endpoint: AWS_REGION, AWS_* keys or profile, AWS_ENDPOINT_URL)')
  .option('--s3-prefix <prefix>', 'key prefix inside the bucket (e.g. site1/)')
  .option('--oidc-issuer <url>', 'single sign-on: also accept OpenID Connect ID tokens from this issuer (exactly its tokens\' iss)')
  .option('--oidc-audience <client-id>', 'the client id ID tokens must be issued to (required with --oidc-issuer)')
  .option('--oidc-user-claim <claim>', 'claim naming the user (default preferred_username; no fallback)')
  .option('--oidc-groups-claim <claim>', 'claim listing the user\'s groups, a dotted path for nested ones (default groups)')
  .option('--oidc-admin-group <group>', 'members of this group are admins (repeatable)', (v: string, all: string[] = []) => [...all, v])
  .option('--oidc-clock-tolerance <s>', 'leeway for exp, nbf and iat in seconds (default 30)', int('--oidc-clock-tolerance'))
  .option('--oidc-max-lifetime <s>', 'refuse ID tokens valid for longer than this, exp - iat, in seconds (default 86400)', int('--oidc-max-lifetime', 60))
  .option('--oidc-jwks-cache-ms <ms>', 'use the issuer\'s keys this long before fetching them again (default 600000)', int('--oidc-jwks-cache-ms', 1000))
  .option('--oidc-scopes <scopes>', 'scopes the web viewer asks for (default "openid profile email")'))
  .action(async (o) => {
    await setupLog(o);
    const { runCloud } = await import('./run-cloud.ts');
    if (!!o.oidcIssuer !== !!o.oidcAudience) throw new BadParameter('--oidc-issuer and --oidc-audience go together');
    await runCloud({
      oidc: o.oidcIssuer ? { issuer: o.oidcIssuer, audience: o.oidcAudience, userClaim: o.oidcUserClaim, groupsClaim: o.oidcGroupsClaim, adminGroups: o.oidcAdminGroup,
        clockToleranceS: o.oidcClockTolerance, maxLifetimeS: o.oidcMaxLifetime, jwksCacheMs: o.oidcJwksCacheMs, scopes: o.oidcScopes } : undefined,
      tls: { cert: o.tlsCert, key: o.tlsKey, selfSigned: o.tlsSelfSigned }, insecureHttp: o.insecureHttp,
      dataDir: o.data, host: o.host, port: o.port, core: { leaseMs: o.leaseMs, live: o.live, quietBatchMs: o.quietBatchMs, redactSecrets: o.redactPasswords, ...(o.secretPrompt ? { secretPrompt: o.secretPrompt } : {}),
        maxSessionsPerConsole: o.maxSessionsPerConsole, accessCacheMs: o.accessCacheMs, maxQueriesPerUser: o.maxQueriesPerUser, maxQueries: o.maxQueries,
        maxHistoryBytes: o.maxHistoryBytes, maxPatternLength: o.maxPatternLength, maxPatternStates: o.maxPatternStates, maxGrepMs: o.maxGrepMs,
        maxConsolesPerRelay: o.maxConsolesPerRelay, relayAuditsPerMin: o.relayAuditsPerMin, relayAuditBurst: o.relayAuditBurst, userAuditsPerMin: o.userAuditsPerMin, userAuditBurst: o.userAuditBurst, fenceClaimSlack: o.fenceClaimSlack,
        relayStatusMinMs: o.relayStatusMinMs, tokenRecheckMs: o.tokenRecheckMs, auditTextMax: o.auditTextMax, maxKeysPerUser: o.maxKeysPerUser, maxKeyFileBytes: o.maxKeyFileBytes },
      s3: o.s3Bucket ? { bucket: o.s3Bucket, prefix: o.s3Prefix } : undefined,
      limits: { maxFrameBytes: o.maxFrameBytes, idleTimeoutMs: o.idleTimeoutMs, highWaterBytes: o.viewerHighWaterBytes, stallMs: o.viewerStallMs, maxSegmentBytes: o.maxSegmentBytes, retentionMs: o.retention, diskProbeMs: o.diskProbeMs,
        maxBodyBytes: o.maxBodyBytes, sessionMsgsPerSec: o.sessionMsgsPerSec, relayMsgsPerSec: o.relayMsgsPerSec, maxConnsPerUser: o.maxConnsPerUser, maxConnsPerRelay: o.maxConnsPerRelay, userTokenTtlMs: o.userTokenTtl,
        historyBufferBytes: o.historyBufferBytes, maxUploadsPerRelay: o.maxUploadsPerRelay, maxUploads: o.maxUploads,
        hstsMaxAgeS: o.hstsMaxAge, hstsIncludeSubdomains: o.hstsIncludeSubdomains },
    });
  });

logOpts(program.command('demo').description('embedded cloud + local relay + a demo console (what npm start runs)')
  .option('--dir <dir>', 'state directory', '.cloudcons')
  .addOption(new Option('--port <port>', 'listen port (0 = any free port)').argParser(int('--port')).default(7420))
  .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM); with --tls-key').option('--tls-key <file>', 'the certificate\'s private key (PEM)')
  .option('--tls-self-signed', 'serve HTTPS with a self-signed certificate kept in DIR/data/tls (the local relay and login pin it)'))
  .action(async (o) => {
    await setupLog(o);
    const { runDemo } = await import('./run-demo.ts');
    await runDemo({ dir: o.dir, port: o.port, tls: { cert: o.tlsCert, key: o.tlsKey, selfSigned: o.tlsSelfSigned } });
  });

program.command('import').description('convert another console server\'s configuration into a relay config')
  .command('conserver <file>').description('read a conserver.cf; write the relay config (YAML) to stdout, what did not map to stderr')
  .option('--strict', 'exit 1 when anything did not map')
  .option('--access <file>', 'also write the rw/ro lists as cloudcons access rules to FILE (for cloudcons access set)')
  .action(async (file: string, o) => {
    const { importConserverCf } = await import('../edge-relay/conserver-import.ts');
    const r = importConserverCf(file);
    if (o.access) {
      const { accessRulesFromImport } = await import('../edge-relay/conserver-access.ts');
      const a = accessRulesFromImport(r.acl, r.consoles, file);
      (await import('../protocol/atomic-file.ts')).writeFileAtomic(o.access, a.yaml); // whole or not at all
      err(line`cloudcons import: access rules (${(a.doc.rules ?? []).length} rules) written to ${o.access}${a.notes.length ? `; ${a.notes.length} did not map (listed in it)` : ''}`);
    }
    // A conserver.cf is often someone else's file: the YAML is shown line by line like any text. The
    // yaml library escapes C0 controls itself; a bidi or zero-width character it left raw then reads
    // `\u202e`: the same character inside a double-quoted string, those six characters elsewhere.
    await write(process.stdout, safeLines(r.yaml));
    for (const w of r.warnings) err(line`cloudcons import: ${w}`);
    if (o.strict && r.warnings.length > 0) process.exitCode = 1;
  });

/** `--expires` as the API takes it: absent (the cloud's default), null (never) or a time. Stores
 *  written directly (--data, --dynamodb-table) get `dflt` from now when the option is absent. */
function expiry(v: string | undefined, dflt?: number): { expires?: number | null; dfltMs?: number } {
  return v === undefined ? { dfltMs: dflt } : { expires: parseExpiry(v) };
}

async function createToken(o: { data?: string; dynamodbTable?: string; url?: string; token?: string }, req: { kind: 'user' | 'relay'; name: string; admin?: boolean; expires?: number | null; dfltMs?: number }) {
  const { dfltMs, ...asked } = req;
  // The cloud's own check (POST /v1/tokens), before anything is written: the same words either way.
  const p = { ...asked, name: tokenName(asked.name) };
  // Written straight into a store: no cloud applies its default, so the same default applies here.
  const direct = { kind: p.kind, name: p.name, admin: p.admin, expires: p.expires === undefined ? (dfltMs ? Date.now() + dfltMs : undefined) : p.expires ?? undefined };
  if (o.data && o.dynamodbTable) throw new BadParameter('give --data (embedded cloud) or --dynamodb-table (AWS stack), not both');
  if (o.dynamodbTable) {
    // Region, credentials and endpoint (AWS_ENDPOINT_URL for LocalStack) from the SDK's usual chain.
    const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
    const { DynamoTokenStore } = await import('../cloud/adapters/aws/dynamo-token-store.ts');
    const db = new DynamoDBClient({});
    try {
      return { ...(await new DynamoTokenStore(db, o.dynamodbTable).create(direct)), ...direct };
    } catch (e) {
      throw new Error(`could not write the token to DynamoDB table ${o.dynamodbTable}: ${(e as Error).message} (AWS credentials and region as for the aws CLI: AWS_PROFILE, AWS_REGION, ...)`);
    } finally { db.destroy(); }
  }
  if (o.data) {
    const { FsTokenStore } = await import('../cloud/adapters/fs/token-store.ts');
    return { ...(await new FsTokenStore(o.data).create(direct)), ...direct };
  }
  return apiJson<{ token: string; id: string; kind: string; name: string; expires?: number }>(login(o), '/v1/tokens', { method: 'POST', body: JSON.stringify(p) });
}

function printToken(t: { token: string; kind: string; name: string; id: string; expires?: number }) {
  err(line`created ${t.kind} token ${t.id} for ${t.name} (${t.expires ? `expires ${new Date(t.expires).toISOString()}` : 'never expires'}); it is shown only once:`);
  out(line`${t.token}`);
}

export function formatAudit(r: AuditRecord): Shown {
  const parts = [line`${new Date(r.time).toISOString()}`, safe(r.user ?? '-').padEnd(12), line`session ${r.session ?? '-'}`, line`fence ${r.fence ?? '-'}`, safe(r.type).padEnd(14)];
  // readable() shows typed bytes unambiguously and safely; JSON quoting keeps it one token.
  if (r.data !== undefined) parts.push(JSON.stringify(readable(Buffer.from(r.data, 'base64'))));
  if (r.detail) parts.push(safe(r.detail));
  // Typed at the relay while the cloud was away (issue 17): when, on the relay's clock.
  if (r.via === 'local') parts.push(line`(via local: relay ${r.relay ?? '-'} at ${r.relayTime === undefined ? '-' : new Date(r.relayTime).toISOString()})`);
  return parts.join('  ') as Shown;
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Error messages quote what the cloud, a relay or a file said: shown like everything else.
  if (e instanceof CcError) {
    err(e instanceof ConfigError ? safeLines(`cloudcons: ${e.message}`) : line`cloudcons: ${e.message}`); // a config's problems, one a line
    process.exitCode = e.code === 'CC_ERR_NOT_FOUND' || e.code === 'CC_ERR_BAD_PARAMETER' || e.code === 'CC_ERR_CONFIG' ? 2 : e.code === 'CC_ERR_UNAUTHORIZED' ? 3 : 1;
  } else {
    err(safeLines(String((e as Error)?.stack ?? e)));
    process.exitCode = 1;
  }
}
