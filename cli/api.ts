// Small HTTP client for the cloud's API: bearer auth, errors turned into CcError with the
// server's message (or a connection hint when the cloud is unreachable).
import { CcError, ConnectionProblem, type ErrorCode } from '../protocol/errors.ts';
import { checkPlainUrl, cloudTls, TlsTrustError } from '../protocol/tls.ts';
import type { Login } from './login-config.ts';

export async function api(login: Login, path: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  checkPlainUrl(login.url, login.insecure);
  try {
    res = await cloudTls(login).fetch(login.url.replace(/\/+$/, '') + path, { ...init, headers: { authorization: `Bearer ${login.token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });
  } catch (e) {
    if (e instanceof TlsTrustError) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new ConnectionProblem(`cannot reach the cloud at ${login.url}: ${cause?.code ?? cause?.message ?? (e as Error).message} (is it running? check the URL with cloudcons login)`);
  }
  if (!res.ok) {
    let code: ErrorCode = 'CC_ERR_INTERNAL';
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { code?: ErrorCode; message?: string } };
      if (body.error?.message) { message = body.error.message; code = body.error.code ?? code; }
    } catch { /* not JSON */ }
    throw new CcError(code, message);
  }
  return res;
}

export async function apiJson<T>(login: Login, path: string, init?: RequestInit): Promise<T> {
  return (await (await api(login, path, init)).json()) as T;
}
