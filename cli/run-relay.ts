// `cloudcons relay --config relay.yaml --cloud URL --token-file F`: an edge relay as its own process.
// SIGHUP reloads relay.yaml, the token file and the certificate trust (Relay.reload says what a
// reload changes); `--check-config FILE` checks a config without running anything.
import path from 'node:path';
import { BadParameter, ConfigError } from '../protocol/errors.ts';
import { checkPlainUrl, CloudTls, pickTrust, trustFromEnv, type TlsTrust } from '../protocol/tls.ts';
import { loadRelayConfig, metricsListenProblem, parseListen, type RelayConfig } from '../edge-relay/config.ts';
import { Relay, type ReloadReport, type RelayOptions } from '../edge-relay/relay.ts';
import { ConfigAccess } from '../edge-relay/local/config-access.ts';
import type { MetricsServer, RelayMetrics } from '../edge-relay/metrics.ts';
import { normalizeUrl } from './login-config.ts';
import { defined, relayLog, stopOnSignals } from './run-cloud.ts';
import { configLogLevel, logger } from './log.ts';
import { err, line, out } from './print.ts';
import { relayToken } from '../protocol/token-file.ts';
import { Reloader, type ReloadOutcome } from './reload.ts';
import { systemd } from '../protocol/sd-notify.ts';
import pkg from '../package.json' with { type: 'json' };

/** Metrics: --metrics-listen (and --metrics-allow-remote), else the config's `metrics:`; off without. */
interface RelayRun {
  config: string; cloud?: string; token?: string; tokenFile?: string; tls?: TlsTrust; limits?: Partial<RelayOptions>;
  metricsListen?: string; metricsAllowRemote?: boolean;
}

/** What a relay reload read and did (the `data` of its ReloadOutcome, for onReload hooks). */
export interface RelayReloaded { cfg: RelayConfig; report: ReloadReport }

const NO_TOKEN = 'a relay token is required: --token-file FILE (or CLOUDCONS_TOKEN_FILE, or systemd\'s LoadCredential=relay-token:FILE); cloudcons relay-token create NAME makes one';
const NO_CONSOLES = 'the config has no consoles: this relay holds none (it stays connected to the cloud; add consoles and reload)';

/** The trust options: --ca/--fingerprint/--insecure, else CLOUDCONS_CA/..., else the config's relay.cloud
 *  (its CA file relative to the config's folder). */
function trustOf(o: RelayRun, cfg: RelayConfig): TlsTrust {
  const c = cfg.relay.cloud;
  return pickTrust({ trust: o.tls, from: 'flags' }, { trust: trustFromEnv(), from: 'environment' },
    { trust: c && { ...c, ca: c.ca && path.resolve(path.dirname(o.config), c.ca) }, from: `${o.config} relay.cloud` });
}

export async function runRelay(o: RelayRun): Promise<Relay> {
  const sd = systemd(relayLog); // first: takes NOTIFY_SOCKET out of the environment consoles inherit
  let log = logger('relay');
  if (!o.cloud) throw new BadParameter('--cloud URL is required (or set CLOUDCONS_URL)');
  const tok = relayToken(o, process.env, (l) => log(l, { level: 'warn' }));
  if (!tok) throw new BadParameter(NO_TOKEN);
  const cfg = loadRelayConfig(o.config);
  configLogLevel(cfg.log?.level);
  if (cfg.relay.name) log = logger('relay', { relay: cfg.relay.name });
  // Listening before the relay is made, so /healthz answers (and /readyz says not yet) while a
  // large spool is recovered.
  let metrics: RelayMetrics | undefined, served: MetricsServer | undefined;
  const listen = o.metricsListen ?? cfg.metrics?.listen;
  if (listen !== undefined) {
    const bad = metricsListenProblem(listen, o.metricsAllowRemote || cfg.metrics?.allowRemote);
    if (bad) throw new BadParameter(`${o.metricsListen !== undefined ? '--metrics-listen' : `${o.config}: metrics.listen`}: ${bad} (got ${JSON.stringify(String(listen))})`);
    const m = await import('../edge-relay/metrics.ts'); // prom-client only when asked for
    metrics = new m.RelayMetrics(pkg.version);
    served = await m.serveMetrics({ ...parseListen(listen)!, metrics, log });
  }
  let relay: Relay;
  try {
    relay = new Relay(cfg, { ...defined(o.limits ?? {}), configFile: o.config, cloudUrl: normalizeUrl(o.cloud), token: tok.token, tls: trustOf(o, cfg), log, metrics });
    relay.start();
  } catch (e) { await served?.close(); throw e; }
  served?.setReady(true);
  const name = relay.nameFrom === 'spool' ? `${relay.name} (the name its spool ${relay.opts.spoolDir} was first used under; relay.yaml names none)`
    : relay.name ?? '(no name in relay.yaml: it takes its token\'s, which the cloud says)';
  const holding = relay.consoles().map((c) => `${c.name} (${c.type})`).join(', ') || 'no consoles';
  log(`${name} holding ${holding}`);
  // SIGHUP: one reload at a time, one more after it if another came (cli/reload.ts). systemd
  // hears RELOADING=1 when one starts and READY=1 when it is applied or refused. The log level
  // follows relay.yaml's `log.level` unless a flag or the environment set it.
  const reloader = new Reloader<RelayReloaded>(() => reloadRelay(relay, o), log).onSighup();
  reloader.onReload(() => void sd.reloading('reloading relay.yaml'), (r) => {
    if (r.ok && r.data) configLogLevel(r.data.cfg.log?.level);
    void sd.ready(r.ok ? 'relay config reloaded' : 'relay config reload refused; running on the previous one');
  });
  relayReloader = reloader;
  stopOnSignals(async () => { served?.setReady(false, 'stopping'); await relay.stop(); await served?.close(); }, sd, log);
  // Config loaded, consoles opening: a cloud that is down does not hold this up (the relay spools).
  void sd.ready(`relay ${relay.name ?? '(name from the cloud)'} holding ${holding}`);
  return relay;
}

/** The running relay's reloader (set by runRelay), for hooks wired elsewhere. */
export let relayReloader: Reloader<RelayReloaded> | undefined;

/** One reload: relay.yaml, the token and the trust are read and checked first, all of them; any
 *  problem refuses the whole reload (every problem in its line) and the relay runs on as it was. */
export async function reloadRelay(relay: Relay, o: RelayRun): Promise<ReloadOutcome<RelayReloaded>> {
  const problems: string[] = [];
  const what = (e: unknown) => (e instanceof ConfigError ? e.problems.map((p) => `${o.config}: ${p}`) : [(e as Error).message]);
  let cfg: RelayConfig | undefined;
  try { cfg = loadRelayConfig(o.config); } catch (e) { problems.push(...what(e)); }
  let token: string | undefined;
  try { token = relayToken(o, process.env, relayLog)?.token; if (!token) problems.push(NO_TOKEN); } catch (e) { problems.push(...what(e)); }
  let tls: TlsTrust | undefined, net: CloudTls | undefined;
  if (cfg) {
    try {
      tls = trustOf(o, cfg);
      net = new CloudTls(tls); // reads the CA file now: a broken one is a problem of this reload
      checkPlainUrl(relay.opts.cloudUrl, tls.insecure);
      if (relay.opts.wsUrl) checkPlainUrl(relay.opts.wsUrl, tls.insecure);
    } catch (e) { problems.push(...what(e)); }
  }
  if (problems.length || !cfg || !token || !tls || !net) {
    return { ok: false, detail: `reload refused, nothing changed (the running config stays): ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}` };
  }
  if (!Object.keys(cfg.consoles).length) relayLog(`warning: ${o.config}: ${NO_CONSOLES}`);
  const report = await relay.reload(cfg, { token, tls, net });
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');
  const parts = [`added ${list(report.added)}`, `removed ${list(report.removed)}`, `changed ${list(report.changed)}`, `unchanged ${list(report.unchanged)}`];
  if (report.link) parts.push(report.link);
  if (report.restart.length) parts.push(`NOT applied, needs a restart: ${report.restart.join('; ')} (the rest is applied)`);
  return { ok: true, detail: `reloaded ${o.config}: ${parts.join('; ')}`, data: { cfg, report } };
}

/** `cloudcons relay --check-config FILE`: the checks a start and a reload make of the file (every
 *  problem, then exit 2 by main.ts's ConfigError), without a cloud, token or spool. */
export function checkRelayConfig(file: string): void {
  const cfg = loadRelayConfig(file);
  const ca = cfg.relay.cloud?.ca;
  if (ca) {
    try { new CloudTls({ ca: path.resolve(path.dirname(file), ca) }); } catch (e) { throw new ConfigError(file, [`relay: cloud: ca: ${(e as Error).message}`]); }
  }
  if (cfg.local?.users) new ConfigAccess(cfg.local.users, file); // its authorizedKeys files: every problem at once
  const cons = Object.entries(cfg.consoles);
  out(line`${file}: ok: relay ${cfg.relay.name}, ${cons.length} console${cons.length === 1 ? '' : 's'}${cons.length ? `: ${cons.map(([n, c]) => `${n} (${c.type})`).join(', ')}` : ''}`);
  if (!cons.length) err(line`warning: ${file}: ${NO_CONSOLES}`);
}
