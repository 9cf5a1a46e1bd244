// The embedded cloud as one Node process: HTTP API (hono) and the two WebSocket endpoints
// (/v1/relay for relays, /v1/session for CLI and browser sessions) on one listening socket.
// This file only wires: sockets in, core calls out, core sends back through WsSender.
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { getRequestListener } from '@hono/node-server';
import { WebSocketServer, type WebSocket } from 'ws';
import { closeReason, decode, encode, PROTOCOL_LIMITS } from '../../protocol/codec.ts';
import { CcError, errorCode, httpStatus } from '../../protocol/errors.ts';
import { clientToCloud, relayToCloud } from '../../protocol/messages.ts';
import { CloudCore, type CoreOptions } from '../core/core.ts';
import { defaultWebDir, hstsValue, webAssets } from './web-assets.ts';
import { authenticate, createHttpApp, HTTP_DEFAULTS, SUBPROTOCOL, subprotocolBearer, USER_TOKEN_TTL_DEFAULT } from '../core/http-app.ts';
import type { CloudPorts, Principal, SegmentStore } from '../core/ports.ts';
import { WsSender, type SenderLimits, SENDER_DEFAULTS } from './ws-sender.ts';
import { embeddedPorts } from './embedded-ports.ts';
import { checkPlainListen } from './tls.ts';
import { tightenTree } from '../../protocol/private-files.ts';
import { OidcVerifier, type OidcOptions } from '../adapters/oidc.ts';
import { DISK_PROBE_MS } from '../adapters/fs/data-disk.ts';
import type { Log } from '../../protocol/log.ts';

export interface ServerLimits extends SenderLimits {
  /** Largest frame accepted (bytes). Default 32 KiB, API Gateway's limit. */
  maxFrameBytes: number;
  /** Malformed frames tolerated per connection before it is closed. Default 20. */
  maxBadFrames: number;
  /** A connection that sends nothing (not even a ping) for this long is closed. Default 90 s. */
  idleTimeoutMs: number;
  /** Messages queued for processing on one connection before its socket is paused. Default 256. */
  maxQueued: number;
  /** Messages a session connection (CLI, browser) may send per second, in bursts of as many; past
   *  it the socket is read no faster (nothing is dropped) and the client told once. Default 200. */
  sessionMsgsPerSec: number;
  /** The same for a relay connection (live output of all its consoles). Default 20000. */
  relayMsgsPerSec: number;
  /** Open WebSockets per user; the next is refused with 429. Default 32. */
  maxConnsPerUser: number;
  /** Open WebSockets per relay (a re-dial overlaps the old one for a moment). Default 4. */
  maxConnsPerRelay: number;
  /** Largest HTTP request body but segment uploads (bytes). Default 1 MiB. */
  maxBodyBytes: number;
  /** Lifetime of user tokens created over the API without --expires (ms; 0 = never). Default 90 days. */
  userTokenTtlMs: number;
  /** Largest segment upload accepted (bytes). Default 16 MiB. */
  maxSegmentBytes: number;
  /** Segment uploads in progress at once per relay / over all relays; more get 429 before their
   *  body is read. Defaults 8 / 32 (HttpOptions). */
  maxUploadsPerRelay: number;
  maxUploads: number;
  /** Delete segments whose newest output is older than this (ms); 0 keeps them forever (default). */
  retentionMs: number;
  /** How often retention runs (ms). Default 1 hour. */
  retentionCheckMs: number;
  /** While the data disk is full, how often it is looked at for room again (ms). Default 1 s. */
  diskProbeMs: number;
  /** Over HTTPS, browsers keep to HTTPS for this long after any answer (Strict-Transport-Security
   *  max-age, seconds; 0 makes them forget it). Default 365 days. */
  hstsMaxAgeS: number;
  /** ... and for the host's subdomains too. Default off (web-assets.ts hstsValue says why). */
  hstsIncludeSubdomains: boolean;
}
export const SERVER_DEFAULTS: ServerLimits = {
  ...SENDER_DEFAULTS, maxFrameBytes: PROTOCOL_LIMITS.maxFrameBytes, maxBadFrames: 20, idleTimeoutMs: 90_000, maxQueued: 256,
  sessionMsgsPerSec: 200, relayMsgsPerSec: 20_000, maxConnsPerUser: 32, maxConnsPerRelay: 4, maxBodyBytes: 1024 * 1024, userTokenTtlMs: USER_TOKEN_TTL_DEFAULT, maxSegmentBytes: 16 * 1024 * 1024, retentionMs: 0, retentionCheckMs: 3600_000, diskProbeMs: DISK_PROBE_MS,
  ...HTTP_DEFAULTS,
  hstsMaxAgeS: 365 * 86_400, hstsIncludeSubdomains: false,
};

export interface CloudServerOptions {
  dataDir: string;
  /** Keep sealed segments in this S3 bucket (under `prefix`) instead of DATA/segments. The AWS
   *  SDK finds region, credentials and endpoint as usual (AWS_REGION, AWS_ENDPOINT_URL, ...). */
  s3?: { bucket: string; prefix?: string };
  host?: string;
  port?: number;
  limits?: Partial<ServerLimits>;
  core?: Partial<CoreOptions>;
  log?: Log;
  /** The web viewer's built files (default: this package's dist/web). */
  webDir?: string;
  /** Serve HTTPS and WSS with this certificate (chain) and key, PEM (cloud/server/tls.ts). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Serve plain HTTP on an address that is not loopback (refused otherwise). */
  insecureHttp?: boolean;
  /** Single sign-on: accept OpenID Connect ID tokens from this issuer (cloud/adapters/oidc.ts). */
  oidc?: Partial<OidcOptions> & Pick<OidcOptions, 'issuer' | 'audience'>;
}

export interface CloudServer {
  url: string;
  port: number;
  core: CloudCore;
  ports: CloudPorts;
  /** Serves this certificate and key to connections from now on (those open keep theirs); only
   *  when started with TLS. Throws if they do not make a TLS context (the old one stays). */
  setCert(c: { cert: string | Buffer; key: string | Buffer }): void;
  close(): Promise<void>;
}

export async function startCloudServer(opts: CloudServerOptions): Promise<CloudServer> {
  const limits = { ...SERVER_DEFAULTS, ...opts.limits };
  if (!opts.tls) checkPlainListen(opts.host ?? '127.0.0.1', opts.insecureHttp);
  const log = opts.log ?? ((l: string) => console.error(l));
  const sockets = new Map<string, WebSocket>();
  const sender = new WsSender(sockets, limits, log);
  // Console output, typed input, token hashes: the data directory is this user's alone, whatever
  // was there before. segments/ may hold millions of files: its folder is tightened, not walked.
  tightenTree(opts.dataDir, { log, shallow: ['segments'] });
  const segments = opts.s3 ? await openS3Segments(opts.s3) : undefined;
  const { ports, close: closePorts } = embeddedPorts(opts.dataDir, sender, segments, { log, probeMs: limits.diskProbeMs });
  const identity = opts.oidc ? new OidcVerifier(opts.oidc) : undefined;
  if (identity) {
    ports.identity = identity;
    // Early, so a wrong issuer shows in the log at start; a failure is retried at the next sign-in.
    identity.discover().then(() => log(`oidc: accepting ID tokens from ${identity.opts.issuer} for ${identity.opts.audience}`),
      (e: Error) => log(`oidc: ${e.message} (tried again at the next sign-in)`, { level: 'error' }));
  }
  // Who is signed in on each open socket: a revocation closes that token's sockets at once.
  const principals = new Map<string, Principal>();
  ports.connections = { of: async (w) => [...principals].filter(([, p]) => p.kind === w.kind && p.name === w.name).map(([conn, who]) => ({ conn, who })) };
  const core = new CloudCore(ports, opts.core);
  sender.setOutput(core.log);
  // Tokens, rights and leases of open connections are checked again on the server's clock, not
  // only when a client speaks (cloud/core/rechecks.ts); rules another process set are seen within
  // accessCacheMs.
  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      for (const [conn, who] of principals) {
        if (!sender.closing(conn)) await core.recheckConnection(conn, who).catch((e: Error) => log(`${conn}: re-check failed: ${e.message}`, { level: 'error' }));
      }
    } finally { sweeping = false; }
  };
  const recheck = setInterval(() => void sweep(), core.opts.tokenRecheckMs);
  recheck.unref();
  // (And what the audit rations held back is put on the record once a flood has stopped.)
  const rules = setInterval(() => {
    void core.recheckIfRulesChanged().catch((e: Error) => log(`access rules re-check failed: ${e.message}`, { level: 'error' }));
    void core.flushAuditRations().catch((e: Error) => log(`audit rations: ${e.message}`, { level: 'error' }));
  }, Math.max(core.opts.accessCacheMs, 500));
  rules.unref();
  const app = createHttpApp(core, ports, { maxSegmentBytes: limits.maxSegmentBytes, maxBodyBytes: limits.maxBodyBytes, userTokenTtlMs: limits.userTokenTtlMs,
    maxUploadsPerRelay: limits.maxUploadsPerRelay, maxUploads: limits.maxUploads });
  const retention = limits.retentionMs > 0 ? setInterval(() => {
    void (async () => {
      for (const c of await core.log.consoles()) {
        const n = await core.log.expire(c, Date.now() - limits.retentionMs);
        if (n) log(`retention: deleted ${n} segments of ${c} older than ${limits.retentionMs} ms`);
      }
    })().catch((e: Error) => log(`retention failed: ${e.message}`, { level: 'error' }));
  }, limits.retentionCheckMs) : undefined;
  retention?.unref();
  const web = webAssets(opts.webDir ?? defaultWebDir(), () => identity?.knownTokenEndpoint);
  const listener = getRequestListener((req) => web(req) ?? app.fetch(req));
  // Over TLS every answer (the viewer's files, the API, refused WebSocket upgrades) tells the
  // browser to keep to HTTPS; over plain HTTP the header means nothing and is not sent.
  const hsts = opts.tls ? hstsValue(limits) : undefined;
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => { res.setHeader('strict-transport-security', hsts!); return listener(req, res); })
    : http.createServer(listener);
  // A browser cannot set headers on a WebSocket: the viewer offers `cloudcons.v1` and its token as a
  // second subprotocol (`cloudcons.token.<token>`); the answer names only `cloudcons.v1`.
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes * 4, perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });

  const conns = new Map<string, number>(); // open WebSockets per `kind:name`
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '').split('?')[0];
    const kind = path === '/v1/relay' ? 'relay' : path === '/v1/session' ? 'session' : undefined;
    const refuse = (status: number, message: string) => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\n${hsts ? `strict-transport-security: ${hsts}\r\n` : ''}connection: close\r\n\r\n${message}\n`);
    };
    if (!kind) return refuse(404, `no WebSocket endpoint ${path}: use /v1/relay or /v1/session`);
    const from = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    authenticate(ports, req.headers.authorization ?? subprotocolBearer(req.headers['sec-websocket-protocol'])).then(async (who) => {
      if ((kind === 'relay') !== (who.kind === 'relay')) {
        await core.authFailed(`WebSocket ${path} from ${from}`, `a ${who.kind} token (${who.name}) cannot open ${path}`);
        return refuse(403, `a ${who.kind} token cannot open ${path}`);
      }
      const key = `${who.kind}:${who.name}`;
      const max = who.kind === 'relay' ? limits.maxConnsPerRelay : limits.maxConnsPerUser;
      const open = conns.get(key) ?? 0;
      if (open >= max) {
        log(`refused a WebSocket of ${who.kind} ${who.name} from ${from}: ${open} open (${who.kind === 'relay' ? 'maxConnsPerRelay' : 'maxConnsPerUser'} ${max})`, { level: 'warn' });
        await core.auditSignIn(who, 'auth.refused', `WebSocket from ${from}: ${open} connections open, the limit`);
        return refuse(429, `${who.kind} ${who.name} has ${open} WebSocket connections open, the limit (${who.kind === 'relay' ? 'maxConnsPerRelay' : 'maxConnsPerUser'} ${max}): close one`);
      }
      conns.set(key, open + 1);
      const release = () => { const n = (conns.get(key) ?? 1) - 1; if (n > 0) conns.set(key, n); else conns.delete(key); };
      socket.once('close', release);
      await core.auditSignIn(who, 'auth.signin', `WebSocket ${path} from ${from} (${who.via === 'oidc' ? 'OpenID Connect' : `token ${who.tokenId}`})`);
      wss.handleUpgrade(req, socket, head, (ws) => serve(ws, kind, who));
    }, async (e: unknown) => {
      const why = e instanceof Error ? e.message : 'unauthorized';
      await core.authFailed(`WebSocket ${path} from ${from}`, why).catch(() => {});
      refuse(401, why);
    }).catch((e: unknown) => {
      // A sign-in that cannot be audited (a full data disk) is refused, saying why.
      if (e instanceof CcError) { log(`refused a WebSocket ${path} from ${from}: ${e.message}`, { level: 'warn' }); return refuse(httpStatus(e.code), e.message); }
      log(`upgrade ${path}: ${(e as Error).stack}`, { level: 'error' });
      refuse(500, 'internal error');
    });
  });

  function serve(ws: WebSocket, kind: 'relay' | 'session', who: Principal): void {
    const conn = `${kind[0]}-${randomBytes(8).toString('hex')}`;
    sockets.set(conn, ws);
    principals.set(conn, who);
    log(`${kind} ${who.name} connected (${conn})`);
    // Closed when its token expires, to the millisecond (a timer fires at most 24.8 days ahead; the
    // periodic re-check covers later ones).
    const expiry = who.expires === undefined ? undefined
      : setTimeout(() => void core.recheckConnection(conn, who).catch((e: Error) => log(`${conn}: re-check failed: ${e.message}`, { level: 'error' })), Math.min(Math.max(0, who.expires - Date.now()), 2 ** 31 - 1));
    let chain: Promise<void> = Promise.resolve();
    let cloudClosed = false;
    let queued = 0;
    let bad = 0;
    let replaying = false;
    let idle = setTimeout(onIdle, limits.idleTimeoutMs);
    function onIdle() { ws.close(4000, `idle for ${limits.idleTimeoutMs} ms without a message or ping`); }
    // Messages per second: a token bucket of one second's worth. A message over it waits its turn
    // before it is handled; the queue of waiting messages pauses the socket at maxQueued, so TCP
    // pushes back on the sender. Nothing is dropped, and memory stays bounded.
    const rate = kind === 'relay' ? limits.relayMsgsPerSec : limits.sessionMsgsPerSec;
    let bucket = rate, filled = Date.now(), warned = 0;
    const turn = (): number => {
      const now = Date.now();
      bucket = Math.min(rate, bucket + ((now - filled) * rate) / 1000) - 1;
      filled = now;
      if (bucket >= 0) return 0;
      if (now - warned > 60_000) {
        warned = now;
        log(`${conn} (${kind} ${who.name}) sends more than ${rate} messages/s: slowed down`, { level: 'warn' });
        ws.send(encode({ t: 'error', code: 'CC_ERR_RATE_LIMITED', message: `more than ${rate} messages/s (${kind === 'relay' ? 'relayMsgsPerSec' : 'sessionMsgsPerSec'}): this connection is served more slowly` }));
      }
      return Math.ceil((-bucket * 1000) / rate);
    };

    ws.on('message', (data, isBinary) => {
      clearTimeout(idle);
      idle = setTimeout(onIdle, limits.idleTimeoutMs);
      const text = isBinary ? data : data.toString();
      const r = kind === 'relay' ? decode(relayToCloud, text, limits.maxFrameBytes) : decode(clientToCloud, text, limits.maxFrameBytes);
      if (!r.ok) {
        if (r.code === 'CC_ERR_TOO_LARGE' && !bad) log(`${conn} (${kind} ${who.name}): ${r.message}`, { level: 'warn' });
        ws.send(encode({ t: 'error', code: r.code, message: r.message }));
        if (++bad > limits.maxBadFrames) ws.close(1008, closeReason(`too many bad frames (${bad}); last: ${r.message}`));
        return;
      }
      // One replay per session at a time: another while one is queued or running is refused at
      // once (a flood of them costs a notice each, not a history each).
      const replay = r.msg.t === 'replay';
      if (replay && replaying) {
        ws.send(encode({ t: 'notice', text: '[cloudcons: replay refused: this session is still sending the previous one]' }));
        return;
      }
      if (replay) replaying = true;
      if (++queued > limits.maxQueued) ws.pause();
      chain = chain.then(async () => {
        const wait = turn();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        try {
          // The cloud closed this connection (its token, its rights): what it sent meanwhile is not handled.
          if (cloudClosed || sender.closing(conn)) return;
          // A session that closed meanwhile has nobody to do its queued work for (its cleanup is
          // queued after). A relay's queued output is still stored.
          if (kind === 'session' && ws.readyState !== ws.OPEN) return;
          if (kind === 'relay') await core.relayMessage(conn, who, r.msg as never);
          else await core.clientMessage(conn, who, r.msg as never);
        } catch (e) {
          if (!(e instanceof CcError)) log(`${conn}: error handling ${(r.msg as { t: string }).t}: ${(e as Error).stack}`, { level: 'error' });
          else if (e.code === 'CC_ERR_RATE_LIMITED') log(`${conn} (${kind} ${who.name}): ${e.message}`, { level: 'warn' });
          ws.send(encode({ t: 'error', code: errorCode(e), message: e instanceof CcError ? e.message : 'internal error' }));
          // A hello that failed half-way (its audit records did not fit on a full disk) leaves a
          // relay that is never welcomed: closed with "try again later", it dials again (backing
          // off) and says hello again, until the cloud can store what a hello records.
          if (kind === 'relay' && r.msg.t === 'hello' && errorCode(e) === 'CC_ERR_STORAGE_FULL') ws.close(1013, closeReason(`hello not completed: ${e instanceof CcError ? e.message : 'internal error'}`));
        } finally {
          if (replay) replaying = false;
          if (--queued <= limits.maxQueued / 2 && ws.isPaused) ws.resume();
        }
      });
    });
    ws.on('close', (code, reason) => {
      clearTimeout(idle);
      clearTimeout(expiry);
      cloudClosed = sender.closing(conn);
      sockets.delete(conn);
      principals.delete(conn);
      sender.forget(conn);
      log(`${kind} ${who.name} disconnected (${conn}): ${code} ${reason.toString()}`);
      chain = chain.then(() => (kind === 'relay' ? core.relayClosed(conn, who.name) : core.clientClosed(conn))).catch((e) => log(`${conn}: cleanup failed: ${e}`, { level: 'error' }));
    });
    ws.on('error', (e) => log(`${conn}: socket error: ${e.message}`, { level: 'warn' }));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as { port: number; address: string };
  const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    port: addr.port,
    core,
    ports,
    setCert(c) {
      if (!opts.tls) throw new Error('the cloud was started without TLS: a certificate cannot be loaded now (restart it with --tls-cert and --tls-key)');
      (server as https.Server).setSecureContext({ cert: c.cert, key: c.key });
    },
    async close() {
      for (const ws of sockets.values()) ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections?.();
      sender.stop();
      clearInterval(retention);
      clearInterval(recheck);
      clearInterval(rules);
      closePorts();
    },
  };
}

/** The S3 segment store, checked before the server starts (a wrong bucket, endpoint or key should
 *  stop the cloud with a clear message, not fail each upload). The AWS SDK is loaded only here. */
async function openS3Segments(o: { bucket: string; prefix?: string }): Promise<SegmentStore> {
  const { S3SegmentStore, segmentS3Client } = await import('../adapters/aws/s3-segment-store.ts');
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  // A custom endpoint (LocalStack, s3rver, MinIO) is reached path-style: bucket.localhost does not resolve.
  const client = segmentS3Client({ ...(endpoint ? { forcePathStyle: true } : {}), maxAttempts: 5 });
  const store = new S3SegmentStore({ client, bucket: o.bucket, prefix: o.prefix });
  try {
    await store.list(`.probe-${Date.now()}/`);
  } catch (e) {
    const err = e as Error & { name?: string };
    throw new Error(`cannot use S3 bucket ${o.bucket}${endpoint ? ` at ${endpoint}` : ''}: ${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message} ` +
      '(region, credentials and endpoint come from the AWS SDK\'s usual sources: AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, AWS_ENDPOINT_URL)');
  }
  return store;
}
