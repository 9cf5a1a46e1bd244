// Single sign-on: users present an OpenID Connect ID token (a JWT from the configured issuer)
// instead of a cloudcons token. This is the IdentityVerifier port (cloud/core/ports.ts) on `jose`.
//
// - Discovery: GET <issuer>/.well-known/openid-configuration once (the first verification, or
//   `discover()` at start-up); its `issuer` must equal the configured one exactly, its `jwks_uri`
//   names the keys. A failed discovery is not remembered: the next request tries again.
// - Keys: jose's createRemoteJWKSet caches the issuer's JWKS for `jwksCacheMs` (default 10 min;
//   then the next request refetches it) and refetches at once for a token whose `kid` it does not
//   know (key rotation), at most once per `jwksCooldownMs` (default 30 s).
// - Checks: the signature (only `algorithms`: asymmetric ones, never `none` or HMAC), `iss`, `aud`
//   (the client id), `exp` and `nbf` (with `clockToleranceS` leeway, default 30 s), and that the
//   user claim is there. It must be an ID token and nothing else an issuer signs (checkIdToken):
//   `exp`, `iat` and `sub` present (a token without `exp` would never expire, and an open
//   connection ends at it), `iat` not in the future and `exp` at most `maxLifetimeS` after it (24 h:
//   a stolen long-lived token is refused), header `typ` absent or JWT (not `at+jwt`, an access
//   token, nor `logout+jwt`), no `events` claim (a back-channel logout token), and `azp`, when
//   present, one of our client ids (a token issued to another client that merely lists us in
//   `aud` is not ours); a token for several audiences must name us in `azp`. `nonce` is checked by
//   the web viewer that asked for it; `auth_time` matters only with `max_age`, which we never send.
// - The user: the `userClaim` claim (default `preferred_username`), with no fallback to another
//   claim: the name is what ACL rules and the audit log say, and mixing claims (one user's email
//   equal to another's username) would mix people up. The user is `sso:<name>` (protocol/
//   principal.ts), in normal form (lowercase): never the token user of the same name, never a
//   group. A claim that is no valid user name is refused (401 saying why): non-ASCII look-alikes,
//   zero-width, right-to-left and control characters, a `relay:x` or `@sre`. Groups: the
//   `groupsClaim` claim (default `groups`; a dotted path like `realm_access.roles` reaches into an
//   object), a list of strings or one string, in normal form; a group whose name is not valid is
//   left out (logged once per process), which changes no decision: rules can only name valid
//   groups. A member of any `adminGroups` group is an admin. An ID token is always a user, never
//   a relay.
// - Errors: Unauthorized (401) with what is wrong ("token expired at ...", "wrong audience ...",
//   "signature does not verify ..."); ConnectionProblem (502) when the issuer cannot be reached
//   for discovery or keys ("issuer not reachable: ..."): the token may be fine, try again later.
//   cloudcons tokens keep working while the identity provider is down.
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { BadParameter, ConnectionProblem, Unauthorized } from '../../protocol/errors.ts';
import { checkGroupName, checkUserName, formatPrincipal } from '../../protocol/principal.ts';
import type { IdentityVerifier, Principal, WebSignIn } from '../core/ports.ts';

export interface OidcOptions {
  /** The issuer URL, exactly as tokens' `iss` claim names it (e.g. https://idp.example/realms/ops). */
  issuer: string;
  /** The client id(s) tokens must be issued to (`aud`). */
  audience: string | string[];
  /** Claim naming the user. Default `preferred_username`. */
  userClaim: string;
  /** Claim listing the user's groups (dotted path for nested ones). Default `groups`. */
  groupsClaim: string;
  /** Members of any of these groups are admins. Default none. */
  adminGroups: string[];
  /** Signature algorithms accepted. Default the asymmetric JWS ones (RS*, PS*, ES*, EdDSA). */
  algorithms: string[];
  /** Leeway for exp, nbf and iat, in seconds. Default 30. */
  clockToleranceS: number;
  /** Longest ID token lifetime accepted (`exp` - `iat`), in seconds. Default 86400 (24 h). */
  maxLifetimeS: number;
  /** How long fetched keys are used before they are fetched again (ms). Default 600000. */
  jwksCacheMs: number;
  /** Least time between two refetches for an unknown key id (ms). Default 30000. */
  jwksCooldownMs: number;
  /** Timeout of a discovery or JWKS request (ms). Default 5000. */
  timeoutMs: number;
  /** Scopes the web viewer asks for. Default `openid profile email`. */
  scopes: string;
}

export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
export const OIDC_DEFAULTS: Omit<OidcOptions, 'issuer' | 'audience'> = {
  userClaim: 'preferred_username', groupsClaim: 'groups', adminGroups: [], algorithms: OIDC_ALGORITHMS,
  clockToleranceS: 30, maxLifetimeS: 86_400, jwksCacheMs: 600_000, jwksCooldownMs: 30_000, timeoutMs: 5000, scopes: 'openid profile email',
};

interface Discovery { jwksUri: string; authorizationEndpoint?: string; tokenEndpoint?: string }

const iso = (s: unknown) => (typeof s === 'number' && Math.abs(s) <= 8.64e12 ? new Date(s * 1000).toISOString() : `an unknown time (${JSON.stringify(s)})`);
const quote = (v: unknown) => JSON.stringify(v) ?? String(v);

export class OidcVerifier implements IdentityVerifier {
  readonly opts: OidcOptions;
  private discovery?: Promise<Discovery>;
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  /** `adminGroups` in normal form. */
  private readonly adminGroups: string[];
  /** Group names already logged as left out (bounded: a log line per name, not per sign-in). */
  private readonly badGroupsLogged = new Set<string>();

  constructor(opts: Partial<OidcOptions> & Pick<OidcOptions, 'issuer' | 'audience'>) {
    this.opts = { ...OIDC_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as OidcOptions;
    const o = this.opts;
    let u: URL;
    try { u = new URL(o.issuer); } catch { throw new BadParameter(`OIDC issuer: not a URL: ${quote(o.issuer)}`); }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname))) {
      throw new BadParameter(`OIDC issuer ${o.issuer}: must be https:// (plain http only on localhost, for tests)`);
    }
    if (!(Array.isArray(o.audience) ? o.audience.length : o.audience)) throw new BadParameter('OIDC audience (client id) is required');
    const bad = o.algorithms.filter((a) => !OIDC_ALGORITHMS.includes(a));
    if (bad.length || !o.algorithms.length) throw new BadParameter(`OIDC algorithms: ${bad.join(', ') || 'none given'} not allowed (choose from ${OIDC_ALGORITHMS.join(', ')})`);
    if (!o.userClaim || !o.groupsClaim) throw new BadParameter('OIDC user and groups claims must be non-empty');
    const groups = o.adminGroups.map(checkGroupName);
    const badGroups = groups.flatMap((g) => g.why ?? []);
    if (badGroups.length) throw new BadParameter(`OIDC admin groups: ${badGroups.join('; ')}`);
    this.adminGroups = groups.map((g) => g.name!);
  }

  /** Fetches the discovery document (once; a failure is retried on the next call). */
  discover(): Promise<Discovery> {
    this.discovery ??= this.fetchDiscovery().catch((e) => { this.discovery = undefined; throw e; });
    return this.discovery;
  }

  /** What the web viewer needs for the Authorization Code flow with PKCE (no secret in it). */
  async webSignIn(): Promise<WebSignIn> {
    const d = await this.discover();
    if (!d.authorizationEndpoint || !d.tokenEndpoint) throw new ConnectionProblem(`OIDC issuer ${this.opts.issuer}: its discovery document names no authorization_endpoint or token_endpoint, so the web viewer cannot sign in with it`);
    const clientId = Array.isArray(this.opts.audience) ? this.opts.audience[0] : this.opts.audience;
    return { issuer: this.opts.issuer, clientId, authorizationEndpoint: d.authorizationEndpoint, tokenEndpoint: d.tokenEndpoint, scopes: this.opts.scopes };
  }

  /** The token endpoint once discovery has succeeded (for the web viewer's CSP), else undefined. */
  knownTokenEndpoint?: string;

  async verify(jwt: string): Promise<Principal> {
    const o = this.opts;
    await this.discover();
    let payload: JWTPayload;
    try {
      const r = await jwtVerify(jwt, this.jwks!, { issuer: o.issuer, audience: o.audience, algorithms: o.algorithms, clockTolerance: o.clockToleranceS, requiredClaims: ['exp', 'iat', 'sub'] });
      payload = r.payload;
      checkIdToken(r.protectedHeader, payload, o);
    } catch (e) {
      throw this.explain(e, jwt);
    }
    const name = this.userOf(payload);
    const groups = this.groupsOf(payload);
    const admin = groups.some((g) => this.adminGroups.includes(g));
    return { kind: 'user', name, admin, tokenId: `oidc:${payload.iss}#${payload.sub ?? name}`, groups, via: 'oidc', ...(typeof payload.exp === 'number' ? { expires: payload.exp * 1000 } : {}) };
  }

  /** `sso:<user claim>` in normal form, or Unauthorized saying what is wrong with the claim. */
  private userOf(payload: JWTPayload): string {
    const claim = this.opts.userClaim;
    const raw = claimAt(payload, claim);
    if (typeof raw !== 'string' || !raw) throw new Unauthorized(`token has no ${claim} claim (the user name; --oidc-user-claim chooses another)`);
    const c = checkUserName(raw);
    if (c.why !== undefined) throw new Unauthorized(`token's ${claim} claim is not a usable user name: ${c.why}`);
    return formatPrincipal({ kind: 'sso', name: c.name });
  }

  /** The groups claim's valid group names in normal form, each once; the others are left out. */
  private groupsOf(payload: JWTPayload): string[] {
    const raw = claimAt(payload, this.opts.groupsClaim);
    const out = new Set<string>();
    for (const g of typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : []) {
      if (typeof g !== 'string' || g === '') continue;
      const c = checkGroupName(g);
      if (c.name !== undefined) { out.add(c.name); continue; }
      if (this.badGroupsLogged.size < 1000 && !this.badGroupsLogged.has(g)) {
        this.badGroupsLogged.add(g);
        console.error(`oidc: left out a group of the ${this.opts.groupsClaim} claim (no access rule can name it): ${c.why}`);
      }
    }
    return [...out];
  }

  private async fetchDiscovery(): Promise<Discovery> {
    const o = this.opts;
    const url = `${o.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let doc: Record<string, unknown>;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs), headers: { accept: 'application/json' }, redirect: 'error' });
      if (!r.ok) throw new Error(`${url} answered ${r.status} ${r.statusText}`);
      doc = (await r.json()) as Record<string, unknown>;
    } catch (e) {
      throw new ConnectionProblem(`OIDC issuer not reachable: discovery at ${url} failed: ${reason(e)}`, { cause: e });
    }
    if (doc.issuer !== o.issuer) throw new ConnectionProblem(`OIDC issuer misconfigured: ${url} names issuer ${quote(doc.issuer)}, not ${o.issuer} (--oidc-issuer must be exactly the tokens' iss)`);
    if (typeof doc.jwks_uri !== 'string') throw new ConnectionProblem(`OIDC issuer ${o.issuer}: its discovery document has no jwks_uri`);
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    this.jwks = createRemoteJWKSet(new URL(doc.jwks_uri), { cacheMaxAge: o.jwksCacheMs, cooldownDuration: o.jwksCooldownMs, timeoutDuration: o.timeoutMs });
    const d = { jwksUri: doc.jwks_uri, authorizationEndpoint: str(doc.authorization_endpoint), tokenEndpoint: str(doc.token_endpoint) };
    this.knownTokenEndpoint = d.tokenEndpoint;
    return d;
  }

  /** One clear message per way a token can fail. */
  private explain(e: unknown, jwt: string): Error {
    const o = this.opts;
    const aud = Array.isArray(o.audience) ? o.audience.join(' or ') : o.audience;
    if (e instanceof Unauthorized) return e;
    if (e instanceof errors.JWTExpired) return new Unauthorized(`token expired at ${iso(e.payload.exp)} (sign in again for a fresh ID token)`);
    if (e instanceof errors.JWTClaimValidationFailed) {
      const p = e.payload;
      if (e.reason === 'missing') return new Unauthorized(`token has no ${e.claim} claim: ${MISSING[e.claim] ?? 'an ID token must carry it'}`);
      if (e.reason === 'invalid') return new Unauthorized(`token claim ${e.claim} is invalid: ${e.message}`);
      if (e.claim === 'aud') return new Unauthorized(`wrong audience: the token is for ${quote(p.aud)}, this cloud accepts ${aud} (--oidc-audience)`);
      if (e.claim === 'iss') return new Unauthorized(`wrong issuer: the token is from ${quote(p.iss)}, this cloud trusts ${o.issuer} (--oidc-issuer)`);
      if (e.claim === 'nbf') return new Unauthorized(`token not valid before ${iso(p.nbf)} (check the clocks)`);
      if (e.claim === 'iat') return new Unauthorized(`token issued in the future (${iso(p.iat)}; check the clocks)`);
      return new Unauthorized(`token claim ${e.claim} is invalid: ${e.message}`);
    }
    if (e instanceof errors.JWSSignatureVerificationFailed) return new Unauthorized(`signature does not verify (key ${quote(kid(jwt))} of ${o.issuer}): the token was not signed by this issuer or was altered`);
    if (e instanceof errors.JOSEAlgNotAllowed) return new Unauthorized(`token algorithm ${quote(header(jwt).alg)} not allowed (accepted: ${o.algorithms.join(', ')})`);
    if (e instanceof errors.JWKSNoMatchingKey) return new Unauthorized(`no key ${quote(kid(jwt))} at ${o.issuer}'s JWKS (keys are refetched for an unknown kid at most every ${o.jwksCooldownMs / 1000} s)`);
    if (e instanceof errors.JWKSMultipleMatchingKeys) return new Unauthorized(`the token names no key id and ${o.issuer} has several keys that fit`);
    if (e instanceof errors.JWKSTimeout) return new ConnectionProblem(`OIDC issuer not reachable: fetching its keys timed out after ${o.timeoutMs} ms`);
    if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return new Unauthorized(`malformed token: ${e.message}`);
    if (e instanceof errors.JWKSInvalid || e instanceof errors.JOSENotSupported) return new Unauthorized(`token cannot be checked: ${e.message}`);
    // Anything else on the way to the keys (connection refused, a non-200 answer, bad JSON).
    return new ConnectionProblem(`OIDC issuer not reachable: fetching its keys failed: ${reason(e)}`);
  }
}

const MISSING: Record<string, string> = {
  exp: 'an ID token must say when it expires (an open connection ends then)',
  iat: 'an ID token must say when it was issued',
  sub: 'an ID token must name its subject',
};

/** What makes a verified JWT an ID token for us (beyond signature, iss, aud, exp, nbf). */
function checkIdToken(header: { typ?: unknown }, p: JWTPayload, o: OidcOptions): void {
  const typ = header.typ;
  if (typ !== undefined && (typeof typ !== 'string' || !/^(application\/)?jwt$/i.test(typ))) {
    throw new Unauthorized(`token type (typ) ${quote(typ)} is not an ID token (JWT): access tokens (at+jwt), logout tokens (logout+jwt) and the like are not accepted`);
  }
  if (p.events !== undefined) throw new Unauthorized('token has an events claim: a logout token, not an ID token');
  if (typeof p.sub !== 'string' || !p.sub || p.sub.length > 255) throw new Unauthorized('token\'s sub claim is not a subject identifier (a string of 1-255 characters)');
  if (typeof p.iat !== 'number' || typeof p.exp !== 'number') throw new Unauthorized('token\'s iat and exp claims must be numbers (seconds since the epoch)');
  const now = Date.now() / 1000;
  if (p.iat > now + o.clockToleranceS) throw new Unauthorized(`token issued in the future (${iso(p.iat)}; check the clocks)`);
  if (p.exp - p.iat > o.maxLifetimeS) throw new Unauthorized(`token lifetime ${p.exp - p.iat} s (iat ${iso(p.iat)} to exp ${iso(p.exp)}) is longer than this cloud accepts (${o.maxLifetimeS} s, --oidc-max-lifetime): ID tokens are short-lived`);
  const ours = Array.isArray(o.audience) ? o.audience : [o.audience];
  if (p.azp !== undefined && !ours.includes(p.azp as string)) throw new Unauthorized(`wrong authorized party: the token was issued to ${quote(p.azp)} (azp), this cloud is ${ours.join(' or ')} (--oidc-audience)`);
  if (Array.isArray(p.aud) && p.aud.length > 1 && p.azp === undefined) throw new Unauthorized(`token is for several audiences (${p.aud.join(', ')}) and names no authorized party (azp): it may have been issued to another client`);
}

/** A claim by name, or by dotted path into nested objects when no claim has that exact name. */
function claimAt(payload: JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

function header(jwt: string): Record<string, unknown> {
  try { return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString()) as Record<string, unknown>; } catch { return {}; }
}
const kid = (jwt: string) => header(jwt).kid;

function reason(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c?.message ?? c?.code ?? (e as Error).message;
}
