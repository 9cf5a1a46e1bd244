// `cloudcons cloud --data DIR`: the embedded cloud as its own process.
import fs from 'node:fs';
import path from 'node:path';
import { startCloudServer, type CloudServer, type ServerLimits } from '../cloud/server/node-server.ts';
import type { CoreOptions } from '../cloud/core/core.ts';
import { FsTokenStore } from '../cloud/adapters/fs/token-store.ts';
import type { OidcOptions } from '../cloud/adapters/oidc.ts';

/** On first start (no tokens yet) an admin token is written to DIR/admin-token, mode 0600. */
export async function bootstrapAdmin(dataDir: string): Promise<string | undefined> {
  if (fs.existsSync(path.join(dataDir, 'tokens.json'))) return undefined;
  const { token } = await new FsTokenStore(dataDir).create({ kind: 'user', name: 'admin', admin: true });
  const file = path.join(dataDir, 'admin-token');
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  return file;
}

export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.error(`${sig}: shutting down`);
    stop().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

/** Drops unset values so defaults apply. */
export function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export async function runCloud(o: {
  dataDir: string; host: string; port: number; core?: Partial<CoreOptions>; limits?: Partial<ServerLimits>; s3?: { bucket: string; prefix?: string };
  oidc?: Partial<OidcOptions> & Pick<OidcOptions, 'issuer' | 'audience'>;
}): Promise<CloudServer> {
  const dataDir = path.resolve(o.dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const adminFile = await bootstrapAdmin(dataDir);
  const server = await startCloudServer({ dataDir, s3: o.s3, host: o.host, port: o.port, core: defined(o.core ?? {}), limits: defined(o.limits ?? {}), oidc: o.oidc, log: (l) => console.error(`cloud: ${l}`) });
  console.log(`cloudcons cloud listening on ${server.url}`);
  console.log(`data directory: ${dataDir}`);
  if (o.s3) console.log(`segments in S3 bucket ${o.s3.bucket}${o.s3.prefix ? ` under ${o.s3.prefix}` : ''}`);
  if (o.oidc) console.log(`single sign-on: ID tokens from ${o.oidc.issuer} for client ${o.oidc.audience}`);
  if (adminFile) console.log(`initial admin token written to ${adminFile} (mode 0600)`);
  stopOnSignals(() => server.close());
  return server;
}
