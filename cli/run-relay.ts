// `cloudcons relay --config relay.yaml --cloud URL --token-file F`: an edge relay as its own process.
import path from 'node:path';
import { BadParameter } from '../protocol/errors.ts';
import { pickTrust, trustFromEnv, type TlsTrust } from '../protocol/tls.ts';
import { loadRelayConfig, metricsListenProblem, parseListen } from '../edge-relay/config.ts';
import { Relay, type RelayOptions } from '../edge-relay/relay.ts';
import type { MetricsServer, RelayMetrics } from '../edge-relay/metrics.ts';
import { normalizeUrl } from './login-config.ts';
import { defined, stopOnSignals } from './run-cloud.ts';
import { configLogLevel, logger } from './log.ts';
import { relayToken } from '../protocol/token-file.ts';
import pkg from '../package.json' with { type: 'json' };

/** The trust options: --ca/--fingerprint/--insecure, else CLOUDCONS_CA/..., else the config's relay.cloud.
 *  Metrics: --metrics-listen (and --metrics-allow-remote), else the config's `metrics:`; off without. */
export async function runRelay(o: {
  config: string; cloud?: string; token?: string; tokenFile?: string; tls?: TlsTrust; limits?: Partial<RelayOptions>;
  metricsListen?: string; metricsAllowRemote?: boolean;
}): Promise<Relay> {
  let log = logger('relay');
  if (!o.cloud) throw new BadParameter('--cloud URL is required (or set CLOUDCONS_URL)');
  const tok = relayToken(o, process.env, (l) => log(l, { level: 'warn' }));
  if (!tok) throw new BadParameter('a relay token is required: --token-file FILE (or CLOUDCONS_TOKEN_FILE, or systemd\'s LoadCredential=relay-token:FILE); cloudcons relay-token create NAME makes one');
  const cfg = loadRelayConfig(o.config);
  configLogLevel(cfg.log?.level);
  log = logger('relay', { relay: cfg.relay.name });
  const c = cfg.relay.cloud;
  const tls = pickTrust({ trust: o.tls, from: 'flags' }, { trust: trustFromEnv(), from: 'environment' },
    { trust: c && { ...c, ca: c.ca && path.resolve(path.dirname(o.config), c.ca) }, from: `${o.config} relay.cloud` });
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
    relay = new Relay(cfg, { ...defined(o.limits ?? {}), cloudUrl: normalizeUrl(o.cloud), token: tok.token, tls, log, metrics });
    relay.start();
  } catch (e) { await served?.close(); throw e; }
  served?.setReady(true);
  log(`${relay.name} holding ${relay.consoles().map((x) => `${x.name} (${x.type})`).join(', ') || 'no consoles'}`);
  stopOnSignals(async () => { served?.setReady(false, 'stopping'); await relay.stop(); await served?.close(); }, log);
  return relay;
}
