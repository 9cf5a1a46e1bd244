// How relays and the CLI trust the cloud's TLS certificate, and when plain HTTP is allowed. One
// module for both, so the WebSocket and the HTTP calls of each check the certificate the same way.
//
// Trust, per cloud URL (a TlsTrust):
//   default        the CAs Node trusts (its Mozilla bundle, plus NODE_EXTRA_CA_CERTS; the OS store
//                  with node --use-system-ca on Node >= 22.15), and the certificate must name the host;
//   ca: FILE       only the CA certificate(s) in this PEM file (it may also be the server's own
//                  certificate), and the certificate must name the host;
//   fingerprint    exactly the certificate with this SHA-256 fingerprint, whoever signed it and
//                  whatever names it carries (the pin `cloudcons cloud --tls-self-signed` prints).
// A refused certificate ends the connection before any request (and so the token) is sent, with a
// message that names the fingerprint the server presented.
//
// Plain http:// and ws:// are allowed only to loopback (127.0.0.0/8, ::1, localhost), unless
// `insecure` (--insecure, CLOUDCONS_INSECURE=1): a token must not cross a network in clear by accident.
//
// Node's fetch (undici) cannot be given a custom certificate check without the undici package, so
// HTTPS requests go through node:https here, wrapped to answer a fetch Response (cloudFetch).
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { BadParameter, ConnectionProblem } from './errors.ts';

export interface TlsTrust {
  /** PEM file with the CA certificate(s) to trust instead of the default CAs. */
  ca?: string;
  /** SHA-256 fingerprint of the one certificate to accept (any form parseFingerprint takes). */
  fingerprint?: string;
  /** Allow http:// and ws:// to a host that is not loopback. */
  insecure?: boolean;
}

/** Environment variables of the trust options (the CLI's and the relay's). */
export const TLS_ENV = { ca: 'CLOUDCONS_CA', fingerprint: 'CLOUDCONS_FINGERPRINT', insecure: 'CLOUDCONS_INSECURE' } as const;

/** The trust options set in the environment (unset ones are left out). */
export function trustFromEnv(env: NodeJS.ProcessEnv = process.env): TlsTrust {
  const t: TlsTrust = {};
  if (env[TLS_ENV.ca]) t.ca = env[TLS_ENV.ca];
  if (env[TLS_ENV.fingerprint]) t.fingerprint = env[TLS_ENV.fingerprint];
  const insecure = env[TLS_ENV.insecure];
  if (insecure && !/^(0|false|no|)$/i.test(insecure)) t.insecure = true;
  return t;
}

/** Chooses the certificate pin from sources in precedence order: the first source that sets `ca`
 *  or `fingerprint` decides (both in one source is an error); `insecure` if any source sets it. */
export function pickTrust(...sources: { trust: TlsTrust | undefined; from: string }[]): TlsTrust {
  const out: TlsTrust = {};
  for (const { trust, from } of sources) {
    if (!trust) continue;
    if (trust.insecure) out.insecure = true;
    if (out.ca || out.fingerprint || (!trust.ca && !trust.fingerprint)) continue;
    if (trust.ca && trust.fingerprint) throw new BadParameter(`${from}: give a CA file or a certificate fingerprint to trust, not both`);
    if (trust.ca) out.ca = trust.ca;
    else out.fingerprint = formatFingerprint(parseFingerprint(trust.fingerprint!));
  }
  return out;
}

/**
 * A SHA-256 certificate fingerprint in Node's form (64 upper-case hex digits in pairs joined by
 * colons). Takes what people paste: `SHA256:` (or `sha256=`, `SHA-256:`) or nothing, then hex
 * with or without colons, or the 43-character base64 form. Throws BadParameter otherwise.
 */
export function parseFingerprint(value: string): string {
  const s = value.trim().replace(/^sha-?256\s*[:=]\s*/i, '');
  let hex: string | undefined;
  const compact = s.replace(/[:\s]/g, '');
  if (/^[0-9a-f]{64}$/i.test(compact)) hex = compact;
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) hex = Buffer.from(s, 'base64').toString('hex');
  if (!hex || hex.length !== 64) {
    throw new BadParameter(`invalid certificate fingerprint '${value}': expected SHA256: followed by 64 hex digits (colons allowed) or 43 base64 characters, as \`cloudcons cloud\` prints it`);
  }
  return hex.toUpperCase().match(/../g)!.join(':');
}

/** `SHA256:AB:CD:...`: how fingerprints are shown and stored. */
export function formatFingerprint(nodeForm: string): string { return `SHA256:${nodeForm}`; }

/** The SHA-256 fingerprint of a PEM (or DER) certificate, as formatFingerprint shows it. */
export function certFingerprint(cert: string | Buffer): string {
  return formatFingerprint(new X509Certificate(cert).fingerprint256);
}

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** Whether a host name or address (IPv6 with or without brackets) is loopback: 127.0.0.0/8
 *  (also IPv4-mapped), ::1, or the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
  if (h === 'localhost') return true;
  const v = net.isIP(h);
  return v !== 0 && loopback.check(h, v === 6 ? 'ipv6' : 'ipv4');
}

/** Throws BadParameter for an http:// or ws:// URL to a host that is not loopback, unless allowed. */
export function checkPlainUrl(url: string, insecure: boolean | undefined): void {
  let u: URL;
  try { u = new URL(url); } catch { return; } // the caller reports unparsable URLs
  if ((u.protocol !== 'http:' && u.protocol !== 'ws:') || insecure || isLoopbackHost(u.hostname)) return;
  throw new BadParameter(`refusing plain ${u.protocol.slice(0, -1)}:// to ${u.host}: the token and console traffic would cross the network unencrypted. ` +
    'Use an https:// URL (the cloud serves TLS with --tls-cert/--tls-key or --tls-self-signed), or, on a network you trust, allow it with --insecure (or CLOUDCONS_INSECURE=1). ' +
    'Without that, plain HTTP goes only to loopback (127.0.0.0/8, ::1, localhost)');
}

/** A refused server certificate (its message says which was seen and how to trust one). */
export class TlsTrustError extends ConnectionProblem {
  readonly seen?: string;
  constructor(message: string, seen?: string) { super(message); this.seen = seen; }
}

const REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends in a CA that is not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is signed by a CA that is not trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is signed by a CA that is not trusted',
  UNABLE_TO_GET_ISSUER_CERT: 'it is signed by a CA that is not trusted',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'it does not name this host',
};

/** Connections to the cloud that honour a TlsTrust: TLS sockets, WebSocket options and fetch. */
export class CloudTls {
  private readonly ca?: Buffer;
  private readonly pin?: string; // Node's fingerprint256 form
  private agentCache?: https.Agent;

  constructor(readonly trust: TlsTrust = {}) {
    if (trust.ca && trust.fingerprint) throw new BadParameter('give a CA file or a certificate fingerprint to trust, not both');
    if (trust.fingerprint) this.pin = parseFingerprint(trust.fingerprint);
    if (trust.ca) {
      try { this.ca = fs.readFileSync(trust.ca); } catch (e) { throw new BadParameter(`cannot read the CA file ${trust.ca} (--ca, ${TLS_ENV.ca}): ${(e as Error).message}`); }
      if (!this.ca.includes('-----BEGIN CERTIFICATE-----')) throw new BadParameter(`the CA file ${trust.ca} (--ca, ${TLS_ENV.ca}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
  }

  /** What this trust accepts (the pin, the CA file's certificates as read): two CloudTls with the
   *  same identity check a certificate alike (a reload compares them). */
  get identity(): string { return `${this.pin ?? ''}\n${this.ca?.toString('base64') ?? ''}`; }

  /** A TLS connection whose server certificate is checked against the trust before anything is
   *  written: the check runs in the handshake's completion, where Node itself refuses a bad one. */
  connect(opts: tls.ConnectionOptions): tls.TLSSocket {
    const host = opts.host ?? 'localhost';
    const servername = opts.servername ?? (net.isIP(host) ? undefined : host);
    const sock = tls.connect({ ...opts, ...(servername ? { servername } : {}), ...(this.ca ? { ca: this.ca } : {}), rejectUnauthorized: false });
    sock.once('secureConnect', () => {
      const err = this.refusal(sock, `${host.includes(':') ? `[${host}]` : host}:${opts.port ?? 443}`);
      if (err) sock.destroy(err);
    });
    return sock;
  }

  /** Why the socket's certificate is not accepted, or undefined when it is. */
  private refusal(sock: tls.TLSSocket, where: string): TlsTrustError | undefined {
    const cert = sock.getPeerCertificate();
    const seen = cert?.fingerprint256 ? formatFingerprint(cert.fingerprint256) : undefined;
    if (this.pin) {
      if (cert?.fingerprint256 === this.pin) return undefined;
      return new TlsTrustError(`the cloud at ${where} presented a TLS certificate with fingerprint ${seen ?? '(none)'}, not the pinned ${formatFingerprint(this.pin)}; ` +
        'refusing to connect. If its certificate was replaced on purpose, check the new fingerprint with its operator and pin that one', seen);
    }
    if (sock.authorized) return undefined;
    const code = String(sock.authorizationError ?? 'unknown error');
    const why = REASONS[code] ? `${REASONS[code]} (${code})` : code;
    return new TlsTrustError(`cannot verify the TLS certificate of the cloud at ${where}: ${why}; refusing to connect. It presented fingerprint ${seen ?? '(none)'}. ` +
      `Trust its CA with --ca FILE (or ${TLS_ENV.ca}), or pin this certificate with --fingerprint ${seen ?? 'SHA256:...'} (or ${TLS_ENV.fingerprint}) once you have checked it is the one the cloud printed`, seen);
  }

  /** Options for `new WebSocket(url, ...)` (the ws package) that make a wss:// connection honour the trust. */
  wsOptions(url: string): { createConnection?: typeof net.createConnection } {
    // ws calls it with tls.connect's options (typed as net's by @types/ws).
    const createConnection = (opts: tls.ConnectionOptions) => this.connect(opts);
    return url.startsWith('wss:') ? { createConnection: createConnection as unknown as typeof net.createConnection } : {};
  }

  /** An https.Agent (keep-alive) whose connections honour the trust. */
  get agent(): https.Agent {
    if (!this.agentCache) {
      const agent = new https.Agent({ keepAlive: true });
      agent.createConnection = (opts) => this.connect(opts as tls.ConnectionOptions);
      this.agentCache = agent;
    }
    return this.agentCache;
  }

  /** fetch() for the cloud: https:// through node:https and the trust, anything else through the
   *  global fetch. Bodies: string, Buffer or Uint8Array. Failures reject like fetch's (TypeError
   *  with the cause), except a refused certificate, which rejects with the TlsTrustError itself. */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    if (!url.startsWith('https:')) return fetch(url, init);
    const body = init.body;
    if (body != null && typeof body !== 'string' && !(body instanceof Uint8Array)) return Promise.reject(new TypeError('CloudTls.fetch: the body must be a string, Buffer or Uint8Array'));
    return new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
      const req = https.request(url, { method: init.method ?? 'GET', headers, agent: this.agent, signal: init.signal ?? undefined }, (res) => {
        const status = res.statusCode ?? 502;
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) for (const x of Array.isArray(v) ? v : [v]) if (x !== undefined) h.append(k, x);
        const empty = init.method === 'HEAD' || status === 204 || status === 205 || status === 304;
        if (empty) res.resume();
        resolve(new Response(empty ? null : Readable.toWeb(res) as ReadableStream, { status, statusText: res.statusMessage, headers: h }));
      });
      req.on('error', (e) => reject(e instanceof TlsTrustError ? e : new TypeError('fetch failed', { cause: e })));
      req.end(body ?? undefined);
    });
  }
}

const clients = new Map<string, CloudTls>();
/** One CloudTls per trust (its agent keeps connections alive between calls). */
export function cloudTls(trust: TlsTrust = {}): CloudTls {
  const key = `${trust.ca ?? ''}\n${trust.fingerprint ?? ''}`;
  let c = clients.get(key);
  if (!c) clients.set(key, c = new CloudTls({ ca: trust.ca, fingerprint: trust.fingerprint }));
  return c;
}
