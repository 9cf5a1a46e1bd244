// Where the cloud is, who the user is, and authenticated requests.
//
// The token lives in sessionStorage: per tab, gone when the tab closes, never in a URL (so never in
// a server log, a Referer or the history). HTTP requests carry it as `Authorization: Bearer`; the
// WebSocket, which a browser cannot give headers, offers it as a subprotocol `cloudcons.token.<t>`
// next to `cloudcons.v1` (the server answers with `cloudcons.v1`).
// On the embedded cloud the API is this page's origin; the AWS stack puts a `config.json` beside the
// page naming its HTTP and WebSocket URLs.

export interface Config { apiUrl: string; wsUrl: string }

const TOKEN_KEY = 'cloudcons.token';

export async function loadConfig(): Promise<Config> {
  const here = new URL('.', location.href);
  const fallback = { apiUrl: here.origin, wsUrl: `${here.origin.replace(/^http/, 'ws')}/v1/session` };
  try {
    const r = await fetch(new URL('config.json', here), { cache: 'no-store' });
    if (!r.ok) return fallback;
    const c = (await r.json()) as Partial<Config>;
    return { apiUrl: (c.apiUrl ?? fallback.apiUrl).replace(/\/+$/, ''), wsUrl: c.wsUrl ?? fallback.wsUrl };
  } catch {
    return fallback;
  }
}

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (t: string): void => sessionStorage.setItem(TOKEN_KEY, t),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message); }
}

export async function apiJson<T>(cfg: Config, path: string, init: RequestInit = {}, tok = token.get()): Promise<T> {
  const r = await fetch(cfg.apiUrl + path, { ...init, headers: { ...(init.headers ?? {}), ...(tok ? { authorization: `Bearer ${tok}` } : {}) } });
  const text = await r.text();
  let body: unknown;
  try { body = text ? JSON.parse(text) : undefined; } catch { body = undefined; }
  if (!r.ok) {
    const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(r.status, e?.code ?? `HTTP_${r.status}`, e?.message ?? (text.slice(0, 200) || r.statusText));
  }
  return body as T;
}

export interface Viewer { session: string; user: string; mode: 'rw' | 'spy'; since: number; client?: string }
export interface ConsoleView {
  name: string; type: string; state: 'up' | 'down'; since: number; reason?: string; relay: string;
  writer?: string; spies: number; viewers: Viewer[]; ondemand?: boolean;
}
export interface Whoami { kind: 'user' | 'relay'; name: string; admin: boolean }
