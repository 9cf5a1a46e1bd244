// "Sign in with SSO": the OpenID Connect Authorization Code flow with PKCE, in the browser, when
// the cloud advertises an issuer (GET /v1/auth/config, unauthenticated; the cloud did the
// discovery, so the page talks to the identity provider only twice: it navigates to the
// authorization endpoint, and posts the code to the token endpoint, the one URL of the provider
// the page's CSP lets it reach). No client secret: a public client.
//
// The state, PKCE code_verifier and nonce wait in sessionStorage (this tab) during the round trip
// and are removed when it comes back. The code and state come back in the URL's query: they are
// taken out of the address bar and history at once (history.replaceState) before anything else
// runs. The ID token is kept like a pasted token (api.ts: sessionStorage, sent as a bearer) and
// never put in a URL; the nonce in it must be the one this tab sent.
import { apiJson, token, type Config } from './api.ts';
import { h } from './dom.ts';

export interface SsoConfig { issuer: string; clientId: string; authorizationEndpoint: string; tokenEndpoint: string; scopes: string }

const PENDING_KEY = 'cloudcons.sso';
interface Pending { state: string; verifier: string; nonce: string; redirectUri: string; hash: string }

let advertised: Promise<SsoConfig | undefined> | undefined;
/** The cloud's SSO settings, undefined when it has none (or cannot say now). Asked once. */
export function ssoConfig(cfg: Config): Promise<SsoConfig | undefined> {
  advertised ??= apiJson<{ oidc: SsoConfig | null }>(cfg, '/v1/auth/config', {}, null).then((r) => r.oidc ?? undefined, (e: Error) => {
    console.warn(`single sign-on unavailable: ${e.message}`);
    advertised = undefined;
    return undefined;
  });
  return advertised;
}

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));

/** This page without query and fragment: where the identity provider sends the browser back. */
const redirectUri = () => `${location.origin}${location.pathname}`;

/** Goes to the identity provider's sign-in page. */
export async function startSso(sso: SsoConfig): Promise<void> {
  const p: Pending = { state: random(), verifier: random(), nonce: random(), redirectUri: redirectUri(), hash: location.hash };
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(p.verifier))));
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(p));
  const u = new URL(sso.authorizationEndpoint);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: sso.clientId, redirect_uri: p.redirectUri, scope: sso.scopes,
    state: p.state, nonce: p.nonce, code_challenge: challenge, code_challenge_method: 'S256' })) u.searchParams.set(k, v);
  location.assign(u.toString());
}

/** Finishes a sign-in the identity provider sent the browser back from: undefined if this load is
 *  no such return (or it worked: the token is stored), else what went wrong, to show. */
export async function completeSso(cfg: Config): Promise<string | undefined> {
  const q = new URLSearchParams(location.search);
  if (!q.has('state') || !(q.has('code') || q.has('error'))) return undefined;
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const pending = raw ? (JSON.parse(raw) as Pending) : undefined;
  // Out of the address bar and the history before anything else: the code is single-use anyway.
  history.replaceState(null, '', `${location.pathname}${pending?.hash ?? location.hash}`);
  if (!pending || q.get('state') !== pending.state) return 'Single sign-on failed: the answer does not belong to a sign-in this tab started. Try again.';
  if (q.has('error')) return `Single sign-on failed: ${q.get('error_description') ?? q.get('error')}`;
  const sso = await ssoConfig(cfg);
  if (!sso) return 'Single sign-on failed: the cloud no longer offers it.';
  let idToken: string | undefined;
  try {
    const r = await fetch(sso.tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: q.get('code')!, redirect_uri: pending.redirectUri, client_id: sso.clientId, code_verifier: pending.verifier }) });
    const body = (await r.json()) as { id_token?: string; error?: string; error_description?: string };
    if (!r.ok || !body.id_token) return `Single sign-on failed: the identity provider answered ${body.error_description ?? body.error ?? r.status}`;
    idToken = body.id_token;
  } catch (e) {
    return `Single sign-on failed: cannot reach the identity provider's token endpoint (${(e as Error).message})`;
  }
  let nonce: unknown;
  try { nonce = (JSON.parse(atob(idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) as { nonce?: unknown }).nonce; } catch { /* checked below */ }
  if (nonce !== pending.nonce) return 'Single sign-on failed: the ID token was not issued for this sign-in (nonce).';
  token.set(idToken);
  return undefined;
}

/** The "Sign in with SSO" button, shown once the cloud says it offers SSO. */
export function ssoButton(cfg: Config, onError: (message: string) => void): HTMLElement {
  const box = h('div', { class: 'sso', hidden: true });
  void ssoConfig(cfg).then((sso) => {
    if (!sso) return;
    box.append(h('button', { type: 'button', 'data-testid': 'sso', onclick: () => startSso(sso).catch((e: Error) => onError(`Single sign-on failed: ${e.message}`)) }, 'Sign in with SSO'),
      h('p', { class: 'help' }, `With your account at ${new URL(sso.issuer).host}.`));
    box.hidden = false;
  });
  return box;
}
