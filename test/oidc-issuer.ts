// A small OpenID Connect issuer for tests, on 127.0.0.1 and a free port, with keys it generates
// itself (jose). It serves discovery, the JWKS, and an Authorization Code flow with PKCE whose
// /authorize approves at once as a fixed test user (for the browser test). `sign()` makes ID
// tokens with any claims, header or key, so tests can make expired, wrong-audience and
// wrong-signature tokens. Stop it with `stop()` (also how a test makes the issuer unreachable).
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export interface TestKey { kid: string; alg: string; privateKey: CryptoKey; publicJwk: JWK }

export async function makeKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface TestIssuerOptions {
  /** The client id tokens are issued to by default and /token accepts. Default `cloudcons-test`. */
  clientId?: string;
  /** Claims of the user /authorize signs in (sub, preferred_username, groups...). */
  user?: JWTPayload;
}

export interface TestIssuer {
  /** The issuer URL (`iss` of its tokens): http://127.0.0.1:PORT */
  url: string;
  clientId: string;
  /** Published keys; the first signs by default. */
  keys: TestKey[];
  /** Requests per path (e.g. `/jwks`), to see caching. */
  hits: Map<string, number>;
  /** An ID token: `claims` over defaults (iss, aud, sub, iat, exp in 1 h); `undefined` values drop a
   *  default. `key` signs (default keys[0]); `kid` overrides the header's key id; `typ` the header's
   *  type (default JWT; null: none). */
  sign(claims?: JWTPayload, o?: { key?: TestKey; kid?: string; typ?: string | null }): Promise<string>;
  /** Publishes a new key (rotation); returns it. */
  addKey(alg?: string): Promise<TestKey>;
  stop(): Promise<void>;
}

export async function startTestIssuer(o: TestIssuerOptions = {}): Promise<TestIssuer> {
  const clientId = o.clientId ?? 'cloudcons-test';
  const user: JWTPayload = o.user ?? { sub: 'u-1001', preferred_username: 'sso-alice', email: 'alice@example.test', groups: ['ops', 'console-admins'] };
  const keys = [await makeKey('k1')];
  const hits = new Map<string, number>();
  const codes = new Map<string, { redirectUri: string; challenge: string; nonce?: string; clientId: string }>();
  let url = '';

  async function sign(claims: JWTPayload = {}, so: { key?: TestKey; kid?: string; typ?: string | null } = {}): Promise<string> {
    const key = so.key ?? keys[0];
    const now = Math.floor(Date.now() / 1000);
    const all: JWTPayload = { iss: url, aud: clientId, sub: user.sub, preferred_username: user.preferred_username, groups: user.groups, iat: now, exp: now + 3600, ...claims };
    for (const k of Object.keys(all)) if (all[k] === undefined) delete all[k];
    const typ = so.typ === undefined ? 'JWT' : so.typ ?? undefined;
    return new SignJWT(all).setProtectedHeader({ alg: key.alg, kid: so.kid ?? key.kid, ...(typ ? { typ } : {}) }).sign(key.privateKey);
  }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', url);
    hits.set(u.pathname, (hits.get(u.pathname) ?? 0) + 1);
    const json = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra });
      res.end(JSON.stringify(body));
    };
    // The browser posts the code from the viewer's origin: CORS for the token endpoint only.
    const cors = { 'access-control-allow-origin': req.headers.origin ?? '*', 'access-control-allow-headers': 'content-type', 'access-control-allow-methods': 'POST' };
    if (u.pathname === '/.well-known/openid-configuration') {
      return json(200, { issuer: url, jwks_uri: `${url}/jwks`, authorization_endpoint: `${url}/authorize`, token_endpoint: `${url}/token`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        code_challenge_methods_supported: ['S256'], grant_types_supported: ['authorization_code'] });
    }
    if (u.pathname === '/jwks') return json(200, { keys: keys.map((k) => k.publicJwk) });
    if (u.pathname === '/authorize') {
      const q = u.searchParams;
      const redirect = q.get('redirect_uri');
      if (q.get('response_type') !== 'code' || q.get('client_id') !== clientId || !redirect || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('bad authorization request');
        return;
      }
      const code = randomBytes(16).toString('base64url');
      codes.set(code, { redirectUri: redirect, challenge: q.get('code_challenge')!, nonce: q.get('nonce') ?? undefined, clientId });
      const back = new URL(redirect);
      back.searchParams.set('code', code);
      if (q.get('state')) back.searchParams.set('state', q.get('state')!);
      res.writeHead(302, { location: back.toString() });
      res.end();
      return;
    }
    if (u.pathname === '/token') {
      if (req.method === 'OPTIONS') { res.writeHead(204, cors); res.end(); return; }
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => {
        void (async () => {
          const f = new URLSearchParams(body);
          const c = codes.get(f.get('code') ?? '');
          codes.delete(f.get('code') ?? '');
          const verifier = f.get('code_verifier') ?? '';
          if (f.get('grant_type') !== 'authorization_code' || !c || f.get('redirect_uri') !== c.redirectUri || f.get('client_id') !== c.clientId
            || createHash('sha256').update(verifier).digest('base64url') !== c.challenge) {
            return json(400, { error: 'invalid_grant' }, cors);
          }
          const idToken = await sign({ ...user, ...(c.nonce ? { nonce: c.nonce } : {}) });
          json(200, { id_token: idToken, access_token: randomBytes(16).toString('base64url'), token_type: 'Bearer', expires_in: 3600 }, cors);
        })();
      });
      return;
    }
    json(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url, clientId, keys, hits, sign,
    async addKey(alg = 'RS256') { const k = await makeKey(`k${keys.length + 1}`, alg); keys.push(k); return k; },
    stop: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}
