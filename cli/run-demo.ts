// `npm start` / `cloudcons demo`: embedded cloud + local relay + a demo console (a login shell on
// a pty), with a project-local login so `npx cloudcons attach demo` works from a second terminal
// in the same folder without copying a token.
import fs from 'node:fs';
import path from 'node:path';
import { startCloudServer } from '../cloud/server/node-server.ts';
import { parseRelayConfig } from '../edge-relay/config.ts';
import { Relay } from '../edge-relay/relay.ts';
import { checkUserName } from '../protocol/principal.ts';
import { localLoginFile, saveLogin } from './login-config.ts';
import { cloudLog, describeCert, relayLog, serverCert, stopOnSignals, type TlsFlags } from './run-cloud.ts';
import { out, safeLines } from './print.ts';
import { privateDir } from '../protocol/private-files.ts';
import { writeFileAtomic } from '../protocol/atomic-file.ts';

interface DemoSecrets { user: string; relay: string }

export async function runDemo(o: { dir: string; port: number; tls?: TlsFlags }): Promise<void> {
  const base = path.resolve(o.dir);
  const dataDir = path.join(base, 'data');
  privateDir(dataDir);
  // With TLS, the local relay and the folder's login pin the served certificate itself: they reach
  // it as 127.0.0.1, which a certificate for the host's real name does not name.
  const cert = await serverCert(o.tls ?? {}, dataDir, '127.0.0.1');
  const tls = cert && { cert: cert.cert, key: cert.key };
  const pin = cert ? { fingerprint: cert.fingerprint } : {};
  let server;
  try {
    server = await startCloudServer({ dataDir, tls, port: o.port, log: cloudLog });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    cloudLog(`port ${o.port} is in use; using a free port instead`, { level: 'warn' });
    server = await startCloudServer({ dataDir, tls, port: 0, log: cloudLog });
  }
  const secrets = await demoSecrets(base, server.ports.tokens);
  saveLogin(localLoginFile(path.dirname(base)), { url: server.url, token: secrets.user, ...pin });

  const shell = process.env.SHELL && fs.existsSync(process.env.SHELL) ? process.env.SHELL : '/bin/bash';
  const cfg = parseRelayConfig(`relay:\n  name: local\nconsoles:\n  demo:\n    type: exec\n    command: [${JSON.stringify(shell)}, "-l"]\n    cwd: ${JSON.stringify(process.cwd())}\n`, '(demo relay config)');
  const relay = new Relay(cfg, { cloudUrl: server.url, token: secrets.relay, tls: pin, spoolDir: path.join(base, 'spool'), log: relayLog });
  relay.start();

  out(safeLines(`
cloudcons embedded cloud listening on ${server.url}
data directory: ${dataDir} (relay spool: ${path.join(base, 'spool')})
local relay "${relay.name}" holds console "demo" (${shell} -l on a pty)${cert ? `\n${describeCert(cert, server.url)}` : ''}

Next, in a second terminal in this folder, run:

    npx cloudcons attach demo

(^Ec? shows the escape commands, ^Ec. disconnects; Ctrl-C here stops everything.)

Or open the web viewer at ${server.url}/ and sign in with the demo user's token, which
\`npx cloudcons whoami --show-token\` prints (it is in the folder's login file, mode 0600).
`));
  stopOnSignals(async () => { await relay.stop(); await server.close(); }, undefined, cloudLog);
}

/** Demo tokens, kept in DIR/demo-secrets.json (0600) so restarts reuse them. */
async function demoSecrets(base: string, tokens: { verify(t: string): Promise<unknown>; create(p: { kind: 'user' | 'relay'; name: string; admin?: boolean }): Promise<{ token: string }> }): Promise<DemoSecrets> {
  const file = path.join(base, 'demo-secrets.json');
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as DemoSecrets;
    if ((await tokens.verify(s.user)) && (await tokens.verify(s.relay))) return s;
  } catch { /* first start */ }
  const s: DemoSecrets = {
    // The login name when it is a valid user name (protocol/principal.ts), else `demo`.
    user: (await tokens.create({ kind: 'user', name: checkUserName(process.env.USER).name ?? 'demo', admin: true })).token,
    relay: (await tokens.create({ kind: 'relay', name: 'local' })).token,
  };
  writeFileAtomic(file, JSON.stringify(s)); // torn, it would be read as none and new tokens made
  return s;
}
