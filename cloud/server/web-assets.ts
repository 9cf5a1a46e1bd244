// The web viewer's static files (dist/web/, built from web/ by scripts/build.mjs), served by the
// embedded cloud at / and /assets/. They hold no data and need no token: the page asks for one and
// then talks to the authenticated API. Security headers keep the page from being framed, from
// loading anything but its own files, and from leaking its URL.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.txt': 'text/plain; charset=utf-8', '.json': 'application/json', '.woff2': 'font/woff2', '.svg': 'image/svg+xml',
};

export const SECURITY_HEADERS: Record<string, string> = {
  // 'unsafe-inline' styles: xterm.js puts its theme in a <style> element. Scripts: own files only.
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** The Strict-Transport-Security value of the HTTPS server (node-server.ts sends it on every
 *  answer over TLS, never over plain HTTP). includeSubDomains is off by default: the embedded
 *  cloud does not know what else runs under its host name (a BMC's web page on plain HTTP at
 *  bmc1.<its name> would stop working in every browser that visited the cloud). The AWS stack's
 *  CloudFront host is its own, and sends it with includeSubDomains. */
export function hstsValue(o: { hstsMaxAgeS: number; hstsIncludeSubdomains: boolean }): string {
  return `max-age=${o.hstsMaxAgeS}${o.hstsIncludeSubdomains ? '; includeSubDomains' : ''}`;
}

/** The built web viewer, found from this module: dist/web of the checkout (running from the
 *  sources or from dist/), or web/ beside the bundle's cloudcons.mjs (a release's lib/web, which has
 *  no package.json above it; dist/ of a checkout answers the same either way). */
export function defaultWebDir(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(d, 'cloudcons.mjs')) && fs.existsSync(path.join(d, 'web', 'index.html'))) return path.join(d, 'web');
    if (fs.existsSync(path.join(d, 'package.json'))) return path.join(d, 'dist', 'web');
    d = path.dirname(d);
  }
  return path.resolve('dist', 'web');
}

/** SECURITY_HEADERS with `connect-src` also allowing `url` (the SSO issuer's token endpoint, which
 *  the page posts the authorization code to: that one URL, nothing else of the identity provider). */
export function securityHeaders(url?: string): Record<string, string> {
  if (!url || !/^https?:\/\/[^\s;,']+$/.test(url)) return SECURITY_HEADERS;
  const csp = SECURITY_HEADERS['content-security-policy'].replace("connect-src 'self'", `connect-src 'self' ${url}`);
  return { ...SECURITY_HEADERS, 'content-security-policy': csp };
}

/** A fetch-style handler for the viewer's files; undefined for any other path (the API's).
 *  `tokenEndpoint()`: the SSO token endpoint the page may post to (securityHeaders), if any. */
export function webAssets(dir: string, tokenEndpoint: () => string | undefined = () => undefined): (req: Request) => Response | undefined {
  return (req) => {
    const url = new URL(req.url);
    const p = url.pathname;
    if (p !== '/' && p !== '/index.html' && !p.startsWith('/assets/')) return undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') return new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });
    const rel = p === '/' ? 'index.html' : p.slice(1);
    if (rel.split('/').some((s) => s === '..' || s === '' || s.startsWith('.'))) return new Response('not found\n', { status: 404 });
    const file = path.join(dir, rel);
    let st: fs.Stats;
    try { st = fs.statSync(file); } catch {
      if (rel === 'index.html') return new Response('the web viewer is not built: run `npm run build` (npm ci does it)\n', { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' } });
      return new Response('not found\n', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } });
    }
    const etag = `"${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`;
    const headers = { ...securityHeaders(tokenEndpoint()), 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', etag };
    if (req.headers.get('if-none-match') === etag) return new Response(null, { status: 304, headers });
    return new Response(req.method === 'HEAD' ? null : fs.readFileSync(file), { status: 200, headers });
  };
}
