// TLS for the embedded cloud: the certificate and key it serves (files given by the operator, or a
// self-signed pair it makes once and keeps in its data directory), and the rule that plain HTTP is
// served only on loopback.
//
// The self-signed certificate: ECDSA P-256, valid 5 years, in DATA/tls/self-signed-cert.pem and
// self-signed-key.pem (0600), with the listen address, this host's name, its interface addresses
// when listening on all of them, and localhost/127.0.0.1/::1 as subject alternative names. It is
// reused on every restart (its fingerprint is what clients pin), and made anew only when missing,
// unreadable, expired or expiring within 30 days. Made with @peculiar/x509 on Node's WebCrypto
// (no openssl binary).
import { webcrypto, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { BadParameter } from '../../protocol/errors.ts';
import { certFingerprint, isLoopbackHost } from '../../protocol/tls.ts';
import { writeFileAtomic } from '../../protocol/atomic-file.ts';

export interface ServerCert {
  cert: string;
  key: string;
  /** SHA256:AB:CD:... */
  fingerprint: string;
  certFile: string;
  /** Self-signed only: made on this start (false: reused from the data directory). */
  created?: boolean;
  /** Names and addresses the certificate is valid for. */
  names: string[];
}

/** Throws BadParameter when the cloud would serve plain HTTP on an address that is not loopback
 *  and the operator did not explicitly allow it. */
export function checkPlainListen(host: string, insecureHttp: boolean | undefined): void {
  if (insecureHttp || isLoopbackHost(host)) return;
  throw new BadParameter(`refusing to serve plain HTTP on ${host}: tokens and console traffic would cross the network unencrypted. ` +
    'Give a certificate with --tls-cert FILE --tls-key FILE, or --tls-self-signed for a quick start (clients then pin the fingerprint it prints), ' +
    'or --insecure-http if TLS ends in front of the cloud (a reverse proxy) or the network is trusted. Without TLS the cloud listens only on loopback (127.0.0.1, ::1, localhost)');
}

/** Reads a certificate (chain) and key given by the operator; checks that they belong together. */
export function loadServerCert(certFile: string, keyFile: string): ServerCert {
  const read = (f: string, what: string) => {
    try { return fs.readFileSync(f, 'utf8'); } catch (e) { throw new BadParameter(`cannot read the TLS ${what} ${f}: ${(e as Error).message}`); }
  };
  const cert = read(certFile, 'certificate (--tls-cert)');
  const key = read(keyFile, 'key (--tls-key)');
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
    tls.createSecureContext({ cert, key });
  } catch (e) {
    throw new BadParameter(`cannot use the TLS certificate ${certFile} with the key ${keyFile}: ${(e as Error).message}`);
  }
  return { cert, key, fingerprint: certFingerprint(cert), certFile, names: sanList(x) };
}

/** The names a self-signed certificate for listen address `host` carries. */
export function selfSignedNames(host: string): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1', os.hostname()]);
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (h === '0.0.0.0' || h === '::' || h === '') {
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) if (!a.internal) names.add(a.address.replace(/%.*$/, ''));
  } else names.add(h);
  return [...names].filter(Boolean);
}

/** The data directory's self-signed certificate: reused if present and valid for 30 more days,
 *  else made (and written) now. */
export async function selfSignedCert(dataDir: string, host: string): Promise<ServerCert> {
  const dir = path.join(dataDir, 'tls');
  const certFile = path.join(dir, 'self-signed-cert.pem');
  const keyFile = path.join(dir, 'self-signed-key.pem');
  try {
    const have = loadServerCert(certFile, keyFile);
    if (Date.parse(new X509Certificate(have.cert).validTo) > Date.now() + 30 * 86_400_000) return { ...have, created: false };
  } catch { /* none yet, or unusable: make one */ }
  const names = selfSignedNames(host);
  const { cert, key } = await makeSelfSigned(names);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Each file whole or as it was; a crash between the two leaves a key and a certificate that do
  // not belong together, which the next start finds unusable (loadServerCert) and makes anew.
  writeFileAtomic(keyFile, key, 0o600);
  writeFileAtomic(certFile, cert, 0o600);
  return { cert, key, fingerprint: certFingerprint(cert), certFile, created: true, names };
}

/** A self-signed certificate (PEM) and its private key (PKCS#8 PEM) for these DNS names and IP
 *  addresses. Also used by tests to make certificates. */
export async function makeSelfSigned(names: string[], o: { days?: number; commonName?: string; ca?: { cert: string; key: string } } = {}): Promise<{ cert: string; key: string }> {
  await import('reflect-metadata'); // @peculiar/x509's dependency injection needs it, before it loads
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as never);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const notBefore = new Date(Date.now() - 3600_000); // a client whose clock is a little behind still accepts it
  const notAfter = new Date(Date.now() + (o.days ?? 5 * 365) * 86_400_000);
  const san = names.length === 0 ? [] : [new x509.SubjectAlternativeNameExtension(names.map((n) => (net.isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })))];
  const name = `CN=${o.commonName ?? `cloudcons ${names.find((n) => !net.isIP(n) && n !== 'localhost') ?? names[0] ?? 'cloud'}`}`;
  const usage = new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true);
  const serialNumber = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^./, '1');
  let cert;
  if (o.ca) {
    const caCert = new x509.X509Certificate(o.ca.cert);
    const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(o.ca.key), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    cert = await x509.X509CertificateGenerator.create({
      serialNumber, subject: name, issuer: caCert.subject, notBefore, notAfter, publicKey: keys.publicKey, signingKey: caKey, signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), ...san,
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])],
    });
  } else {
    // Self-signed, and a CA for itself (so it can also be given to clients as --ca).
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber, name, notBefore, notAfter, keys, signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), usage, ...san, await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
    });
  }
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem') + '\n', key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') + '\n' };
}

function sanList(x: X509Certificate): string[] {
  return (x.subjectAltName ?? '').split(/,\s*/).map((s) => s.replace(/^(DNS|IP Address):/, '')).filter(Boolean);
}
