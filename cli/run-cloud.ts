// `cloudcons cloud --data DIR`: the embedded cloud as its own process.
import fs from 'node:fs';
import path from 'node:path';
import { startCloudServer, type CloudServer, type ServerLimits } from '../cloud/server/node-server.ts';
import type { CoreOptions } from '../cloud/core/core.ts';
import { FsTokenStore, newToken } from '../cloud/adapters/fs/token-store.ts';
import { writeFileAtomic } from '../protocol/atomic-file.ts';
import type { OidcOptions } from '../cloud/adapters/oidc.ts';
import { checkPlainListen, loadServerCert, selfSignedCert, type ServerCert } from '../cloud/server/tls.ts';
import { BadParameter } from '../protocol/errors.ts';
import { line, out, safeLines } from './print.ts';
import { logger } from './log.ts';
import type { Log } from '../protocol/log.ts';
import { privateDir } from '../protocol/private-files.ts';
import { systemd, type SdNotifier } from '../protocol/sd-notify.ts';
import { Reloader } from './reload.ts';

/** On first start (no tokens yet) an admin token is written to DIR/admin-token, mode 0600. The
 *  file first (atomically), then the store: a crash or a full disk in between leaves no tokens.json,
 *  so the next start makes another admin token and writes it over; never an admin token in the
 *  store that nobody was given. */
export async function bootstrapAdmin(dataDir: string): Promise<string | undefined> {
  if (fs.existsSync(path.join(dataDir, 'tokens.json'))) return undefined;
  const made = newToken('user');
  const file = path.join(dataDir, 'admin-token');
  writeFileAtomic(file, made.token + '\n');
  await new FsTokenStore(dataDir).create({ kind: 'user', name: 'admin', admin: true }, made);
  return file;
}

/** SIGINT/SIGTERM run `stop` and exit (a second signal exits at once). systemd hears STOPPING=1
 *  first, and the process waits for that message to be out before it exits. */
export function stopOnSignals(stop: () => Promise<void>, sd: SdNotifier = systemd(), log: Log = cloudLog): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${sig}: shutting down`);
    const told = sd.stopping(`${sig}: shutting down`);
    stop().then(async () => { await told; process.exit(0); }, async (e) => { log(`stopping failed: ${String((e as Error)?.stack ?? e)}`, { level: 'error' }); await told; process.exit(1); });
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
  tls?: TlsFlags; insecureHttp?: boolean;
}): Promise<CloudServer> {
  const sd = systemd(cloudLog);
  const dataDir = path.resolve(o.dataDir);
  if (!o.tls?.cert && !o.tls?.selfSigned) checkPlainListen(o.host, o.insecureHttp); // before anything is written
  privateDir(dataDir);
  const cert = await serverCert(o.tls ?? {}, dataDir, o.host);
  const adminFile = await bootstrapAdmin(dataDir);
  const server = await startCloudServer({ dataDir, tls: cert, insecureHttp: o.insecureHttp, s3: o.s3, host: o.host, port: o.port, core: defined(o.core ?? {}), limits: defined(o.limits ?? {}), oidc: o.oidc, log: cloudLog });
  out(line`cloudcons cloud listening on ${server.url}`);
  out(line`data directory: ${dataDir}`);
  if (o.s3) out(line`segments in S3 bucket ${o.s3.bucket}${o.s3.prefix ? ` under ${o.s3.prefix}` : ''}`);
  if (o.oidc) out(line`single sign-on: ID tokens from ${o.oidc.issuer} for client ${o.oidc.audience}`);
  if (adminFile) out(line`initial admin token written to ${adminFile} (mode 0600)`);
  if (cert) out(safeLines(describeCert(cert, server.url)));
  // SIGHUP: the TLS certificate and key files, and the access rules, read again (one reload at a
  // time, cli/reload.ts). systemd hears RELOADING=1 when one starts and READY=1 when it ended.
  let served = cert;
  const reloader = new Reloader(async () => {
    const parts: string[] = [];
    let ok = true;
    if (served) {
      try {
        const c = (await serverCert(o.tls ?? {}, dataDir, o.host))!;
        server.setCert(c);
        parts.push(c.fingerprint === served.fingerprint ? `TLS certificate ${c.certFile} read again, unchanged (${c.fingerprint})`
          : `TLS certificate ${c.certFile} loaded: new connections get ${c.fingerprint} (was ${served.fingerprint}; clients and relays that pinned the old fingerprint must pin the new one)`);
        served = c;
      } catch (e) {
        ok = false;
        parts.push(`TLS certificate NOT reloaded, the one in use stays (${served.fingerprint}): ${(e as Error).message}`);
      }
    }
    try { parts.push(await server.core.reloadAccess()); } catch (e) { ok = false; parts.push(`access rules: cannot read them: ${(e as Error).message}`); }
    return { ok, detail: `reload: ${parts.join('; ')}` };
  }, cloudLog).onSighup();
  reloader.onReload(() => void sd.reloading('reloading TLS certificate and access rules'), (r) => void sd.ready(r.ok ? `listening on ${server.url}` : 'reload refused in part; running on the previous settings'));
  cloudReloader = reloader;
  stopOnSignals(() => server.close(), sd);
  void sd.ready(`listening on ${server.url}`);
  return server;
}

/** The running cloud's reloader (set by runCloud), for hooks wired elsewhere. */
export let cloudReloader: Reloader | undefined;

/** The cloud's and the relay's log (cli/log.ts). Their lines quote what users, relays and files
 *  sent: one event per line, nothing that acts on the terminal that shows the log. */
export const cloudLog: Log = logger('cloud');
export const relayLog: Log = logger('relay');

/** `--tls-cert FILE --tls-key FILE`, or `--tls-self-signed`. */
export interface TlsFlags { cert?: string; key?: string; selfSigned?: boolean }

/** The certificate the cloud serves, or undefined for plain HTTP. */
export async function serverCert(f: TlsFlags, dataDir: string, host: string): Promise<ServerCert | undefined> {
  if (f.selfSigned && (f.cert || f.key)) throw new BadParameter('give --tls-cert and --tls-key, or --tls-self-signed, not both');
  if (!f.cert !== !f.key) throw new BadParameter('--tls-cert and --tls-key go together: the certificate (chain) and its private key, both PEM');
  if (f.cert) return loadServerCert(path.resolve(f.cert), path.resolve(f.key!));
  return f.selfSigned ? selfSignedCert(dataDir, host) : undefined;
}

/** What the cloud prints about its certificate: the fingerprint, and how clients and relays pin it. */
export function describeCert(c: ServerCert, url: string): string {
  const kind = c.created === undefined ? '' : c.created ? ' (self-signed, made now)' : ' (self-signed, reused)';
  const lines = [`TLS certificate ${c.certFile}${kind} for ${c.names.join(', ')}`, `TLS certificate fingerprint: ${c.fingerprint}`];
  if (c.created !== undefined) {
    lines.push('Clients and relays trust it by pinning that fingerprint (check it arrived unchanged):',
      `    cloudcons login ${url} --token TOKEN --fingerprint ${c.fingerprint}`,
      `    cloudcons relay --cloud ${url} --fingerprint ${c.fingerprint} --config ... --token ...`,
      `    (or CLOUDCONS_FINGERPRINT=${c.fingerprint}; or give ${c.certFile} as --ca FILE, for the names above)`);
  }
  return lines.join('\n');
}
