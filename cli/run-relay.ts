// `cloudcons relay --config relay.yaml --cloud URL --token T`: an edge relay as its own process.
import { BadParameter } from '../protocol/errors.ts';
import { loadRelayConfig } from '../edge-relay/config.ts';
import { Relay, type RelayOptions } from '../edge-relay/relay.ts';
import { normalizeUrl } from './login-config.ts';
import { defined, stopOnSignals } from './run-cloud.ts';

export async function runRelay(o: { config: string; cloud?: string; token?: string; limits?: Partial<RelayOptions> }): Promise<Relay> {
  if (!o.cloud) throw new BadParameter('--cloud URL is required (or set CLOUDCONS_URL)');
  if (!o.token) throw new BadParameter('--token is required (or set CLOUDCONS_RELAY_TOKEN); cloudcons relay-token create NAME makes one');
  const cfg = loadRelayConfig(o.config);
  const relay = new Relay(cfg, { ...defined(o.limits ?? {}), cloudUrl: normalizeUrl(o.cloud), token: o.token, log: (l) => console.error(`relay: ${l}`) });
  relay.start();
  console.error(`relay: ${relay.name} holding ${relay.consoles().map((c) => `${c.name} (${c.type})`).join(', ') || 'no consoles'}`);
  stopOnSignals(() => relay.stop());
  return relay;
}
