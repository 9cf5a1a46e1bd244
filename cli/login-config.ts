// Where the CLI finds its cloud URL and token.
//
// Precedence, for the URL and the token separately: explicit flags (--token-file, or --token,
// which is warned: `ps` shows it) > the environment (CLOUDCONS_URL; CLOUDCONS_TOKEN_FILE, then CLOUDCONS_TOKEN) > the nearest project-local file `.cloudcons/login.json` in
// the working directory or a parent (written by `npm start`'s demo) > the user file
// `$XDG_CONFIG_HOME/cloudcons/login.json` (or `~/.config/cloudcons/login.json`).
// A token is taken from a login file only when that file names the same URL as the one chosen,
// so a token saved for one cloud is never sent to another. Files are only read when flags and
// the environment leave something open. Tokens never appear in error messages.
//
// The certificate pin (a CA file or a SHA-256 fingerprint, see protocol/tls.ts) comes from
// --ca/--fingerprint, else CLOUDCONS_CA/CLOUDCONS_FINGERPRINT, else the login file that names the
// chosen URL (`cloudcons login URL --fingerprint ...` stores it there). --insecure or
// CLOUDCONS_INSECURE=1 sets `insecure`: http:// to a host that is not loopback is refused without
// it where a connection is made (api.ts, attach.ts, replay.ts).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { BadParameter, ConfigError, Unauthorized } from '../protocol/errors.ts';
import { parseFingerprint, pickTrust, trustFromEnv, type TlsTrust } from '../protocol/tls.ts';
import { writeFileAtomic } from '../protocol/atomic-file.ts';
import { readTokenFile, TOKEN_FLAG_WARNING } from '../protocol/token-file.ts';

/** A cloud URL and token, and how to trust the cloud's certificate (ca or fingerprint, insecure). */
export interface Login extends TlsTrust { url: string; token: string }
export interface ResolvedLogin extends Login {
  /** Where the values came from: `flags`, `environment`, a file path, or `url: X, token: Y`. */
  source: string;
}

export const NOT_LOGGED_IN = 'not logged in: run `cloudcons login URL --token-file FILE` or set CLOUDCONS_URL and CLOUDCONS_TOKEN_FILE (or CLOUDCONS_TOKEN)';

/**
 * Checks a cloud URL and returns it in canonical form: http:// and https:// as given, ws:// and
 * wss:// turned into http:// and https://, without a trailing slash. Anything else, including an
 * unparsable string, throws BadParameter naming the value.
 */
export function normalizeUrl(value: string): string {
  let u: URL;
  try { u = new URL(value); } catch { throw new BadParameter(`invalid cloud URL '${value}': expected http://, https://, ws:// or wss:// followed by a host`); }
  const proto = ({ 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' } as Record<string, string>)[u.protocol];
  if (!proto || !u.hostname) throw new BadParameter(`invalid cloud URL '${value}': expected http://, https://, ws:// or wss:// followed by a host`);
  u.protocol = proto;
  return u.toString().replace(/\/+$/, '');
}

/** Throws BadParameter (without echoing the token) unless it is non-empty visible ASCII. */
function checkToken(token: string, source: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) throw new BadParameter(`invalid token from ${source}: it must be non-empty and contain no spaces or control characters`);
  return token;
}

/** The user-wide login file: $XDG_CONFIG_HOME/cloudcons/login.json when XDG_CONFIG_HOME is an
 *  absolute path (the XDG spec ignores relative ones), else <home>/.config/cloudcons/login.json. */
export function userLoginFile(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.config'), 'cloudcons', 'login.json');
}

/** The project-local login file of directory `dir`: <dir>/.cloudcons/login.json. */
export function localLoginFile(dir: string): string {
  return join(dir, '.cloudcons', 'login.json');
}

const FileSchema = z.object({ url: z.string(), token: z.string(), ca: z.string().optional(), fingerprint: z.string().optional() });

/** Reads a login file: undefined if it does not exist, ConfigError naming the file if it cannot
 *  be read or is not a JSON object with a valid `url` and `token`. */
export function readLoginFile(file: string): Login | undefined {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError(file, [`cannot read it: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new ConfigError(file, [`not valid JSON: ${(e as Error).message}`]); }
  const r = FileSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(file, r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`));
  const problems: string[] = [];
  let url = '';
  try { url = normalizeUrl(r.data.url); } catch (e) { problems.push(`url: ${(e as Error).message}`); }
  try { checkToken(r.data.token, file); } catch { problems.push('token: must be non-empty and contain no spaces or control characters'); }
  if (r.data.fingerprint !== undefined) { try { parseFingerprint(r.data.fingerprint); } catch (e) { problems.push(`fingerprint: ${(e as Error).message}`); } }
  if (r.data.ca !== undefined && !isAbsolute(r.data.ca)) problems.push('ca: must be an absolute path');
  if (r.data.ca !== undefined && r.data.fingerprint !== undefined) problems.push('give ca or fingerprint, not both');
  if (problems.length) throw new ConfigError(file, problems);
  return { url, token: r.data.token, ...(r.data.ca ? { ca: r.data.ca } : {}), ...(r.data.fingerprint ? { fingerprint: r.data.fingerprint } : {}) };
}

/** The nearest `.cloudcons/login.json` in `cwd` or a parent directory, like git finds `.git`. */
export function findLocalLoginFile(cwd: string): string | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = localLoginFile(dir);
    if (existsSync(file)) return file;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Resolves the cloud URL and token; see the precedence at the top of this file. Throws
 *  Unauthorized with NOT_LOGGED_IN when no URL or no token is found, BadParameter for a bad flag
 *  or environment value, ConfigError for a malformed login file. */
export function resolveLogin(opts: { url?: string; token?: string; tokenFile?: string; cwd?: string; env?: NodeJS.ProcessEnv; home?: string; warn?: (line: string) => void; noFiles?: boolean } & TlsTrust = {}): ResolvedLogin {
  const warn = opts.warn ?? (() => {});
  const env = opts.env ?? process.env;
  let url: { value: string; source: string } | undefined;
  let token: { value: string; source: string } | undefined;
  let fileTrust: TlsTrust | undefined; // the pin stored with the URL chosen, if it came from a file
  if (opts.url !== undefined) url = { value: normalizeUrl(opts.url), source: 'flags' };
  else if (env.CLOUDCONS_URL) url = { value: normalizeUrl(env.CLOUDCONS_URL), source: 'environment' };
  if (opts.token !== undefined && opts.tokenFile !== undefined) throw new BadParameter('give --token-file or --token, not both');
  if (opts.tokenFile !== undefined) token = { value: readTokenFile(opts.tokenFile, 'user', warn), source: 'flags' };
  else if (opts.token !== undefined) { token = { value: checkToken(opts.token, '--token'), source: 'flags' }; warn(TOKEN_FLAG_WARNING); }
  else if (env.CLOUDCONS_TOKEN_FILE) token = { value: readTokenFile(env.CLOUDCONS_TOKEN_FILE, 'user', warn), source: 'environment' };
  else if (env.CLOUDCONS_TOKEN) token = { value: checkToken(env.CLOUDCONS_TOKEN, 'CLOUDCONS_TOKEN'), source: 'environment' };

  if ((!url || !token) && !opts.noFiles) {
    const local = findLocalLoginFile(opts.cwd ?? process.cwd());
    const files = [local, userLoginFile(env, opts.home ?? homedir())].filter((f): f is string => f !== undefined);
    for (const file of files) {
      const login = readLoginFile(file);
      if (!login) continue;
      if (!url) url = { value: login.url, source: file };
      if (login.url === url.value && !fileTrust) fileTrust = { ca: login.ca, fingerprint: login.fingerprint };
      if (!token && login.url === url.value) token = { value: login.token, source: file };
      if (token) break;
    }
  }
  if (!url || !token) throw new Unauthorized(NOT_LOGGED_IN);
  const source = url.source === token.source ? url.source : `url: ${url.source}, token: ${token.source}`;
  const flagTrust = { ca: opts.ca, fingerprint: opts.fingerprint }, envTrust = trustFromEnv(env);
  if (!fileTrust && url.value.startsWith('https:') && !flagTrust.ca && !flagTrust.fingerprint && !envTrust.ca && !envTrust.fingerprint) {
    // URL and token from flags or the environment: a pin stored with the same URL still applies.
    for (const file of [findLocalLoginFile(opts.cwd ?? process.cwd()), userLoginFile(env, opts.home ?? homedir())]) {
      let l: Login | undefined;
      try { l = file ? readLoginFile(file) : undefined; } catch { continue; }
      if (l?.url === url.value) { fileTrust = { ca: l.ca, fingerprint: l.fingerprint }; break; }
    }
  }
  const trust = pickTrust({ trust: { ca: opts.ca && resolve(opts.cwd ?? process.cwd(), opts.ca), fingerprint: opts.fingerprint, insecure: opts.insecure }, from: 'flags' },
    { trust: envTrust, from: 'environment' }, { trust: fileTrust, from: url.source });
  return { url: url.value, token: token.value, source, ...trust };
}

/**
 * Writes a login file: creates its directory (mode 0700) if needed and replaces the file
 * atomically (protocol/atomic-file.ts: every byte written, fsynced, renamed, the folder fsynced),
 * mode 0600, so readers see the old or the new file, never half of one (a full disk leaves the
 * old), and a file that had wider permissions ends up 0600.
 */
export function saveLogin(file: string, login: Login): void {
  const pin = login.ca ? { ca: resolve(login.ca) } : login.fingerprint ? { fingerprint: pickTrust({ trust: { fingerprint: login.fingerprint }, from: 'saveLogin' }).fingerprint } : {};
  const data = JSON.stringify({ url: normalizeUrl(login.url), token: checkToken(login.token, 'saveLogin'), ...pin }, null, 2) + '\n';
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(file, data, 0o600);
}
