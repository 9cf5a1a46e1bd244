// `cloudcons relay --config relay.yaml --cloud URL --token-file F`: an edge relay as its own process.
import path from 'node:path';
import { BadParameter } from '../protocol/errors.ts';
import { pickTrust, trustFromEnv, type TlsTrust } from '../protocol/tls.ts';
import { loadRelayConfig } from '../edge-relay/config.ts';
import { Relay, type RelayOptions } from '../edge-relay/relay.ts';
import { normalizeUrl } from './login-config.ts';
import { defined, relayLog, stopOnSignals } from './run-cloud.ts';
import { err, line } from './print.ts';
import { relayToken } from '../protocol/token-file.ts';
import { systemd } from '../protocol/sd-notify.ts';

/** The trust options: --ca/--fingerprint/--insecure, else CLOUDCONS_CA/..., else the config's relay.cloud. */
export async function runRelay(o: { config: string; cloud?: string; token?: string; tokenFile?: string; tls?: TlsTrust; limits?: Partial<RelayOptions> }): Promise<Relay> {
  const sd = systemd(relayLog); // first: takes NOTIFY_SOCKET out of the environment consoles inherit
  if (!o.cloud) throw new BadParameter('--cloud URL is required (or set CLOUDCONS_URL)');
  const tok = relayToken(o, process.env, (l) => err(line`relay: ${l}`));
  if (!tok) throw new BadParameter('a relay token is required: --token-file FILE (or CLOUDCONS_TOKEN_FILE, or systemd\'s LoadCredential=relay-token:FILE); cloudcons relay-token create NAME makes one');
  const cfg = loadRelayConfig(o.config);
  const c = cfg.relay.cloud;
  const tls = pickTrust({ trust: o.tls, from: 'flags' }, { trust: trustFromEnv(), from: 'environment' },
    { trust: c && { ...c, ca: c.ca && path.resolve(path.dirname(o.config), c.ca) }, from: `${o.config} relay.cloud` });
  const relay = new Relay(cfg, { ...defined(o.limits ?? {}), cloudUrl: normalizeUrl(o.cloud), token: tok.token, tls, log: relayLog });
  relay.start();
  const name = relay.nameFrom === 'spool' ? `${relay.name} (the name its spool ${relay.opts.spoolDir} was first used under; relay.yaml names none)`
    : relay.name ?? '(no name in relay.yaml: it takes its token\'s, which the cloud says)';
  const holding = relay.consoles().map((c) => `${c.name} (${c.type})`).join(', ') || 'no consoles';
  err(line`relay: ${name} holding ${holding}`);
  stopOnSignals(() => relay.stop());
  // Config loaded, consoles opening: a cloud that is down does not hold this up (the relay spools).
  void sd.ready(`relay ${relay.name ?? "(name from the cloud)"} holding ${holding}`);
  return relay;
}
