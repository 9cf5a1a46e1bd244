// Tokens from files, so that no secret travels on a command line (where `ps` shows it to every
// user of the machine): `--token-file PATH` and CLOUDCONS_TOKEN_FILE for the relay and the CLI,
// and systemd's credentials (`LoadCredential=relay-token:...` puts the file in
// $CREDENTIALS_DIRECTORY) for the relay. A file holds one token; surrounding whitespace and a
// trailing newline are ignored. The token itself never appears in a message.
import fs from 'node:fs';
import path from 'node:path';
import { BadParameter } from './errors.ts';

export type TokenKind = 'user' | 'relay';

/** The warning `--token` gets: the flag still works. */
export const TOKEN_FLAG_WARNING = 'warning: --token puts the token on the command line, where `ps` shows it to every user of this machine: use --token-file PATH or CLOUDCONS_TOKEN_FILE';

/** Reads the token in `file` for a `kind` client. Throws BadParameter naming the file when it is
 *  missing, unreadable, empty, more than one token, or holds the other kind of cloudcons token;
 *  `warn` gets one line when others may read the file. */
export function readTokenFile(file: string, kind: TokenKind, warn: (line: string) => void): string {
  let text: string;
  let mode: number;
  try {
    const fd = fs.openSync(file, 'r');
    try { mode = fs.fstatSync(fd).mode; text = fs.readFileSync(fd, 'utf8'); } finally { fs.closeSync(fd); }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied (the token file must be readable by the user this runs as)' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new BadParameter(`token file ${file}: ${why}`);
  }
  const token = text.trim();
  if (!token) throw new BadParameter(`token file ${file} is empty: put the token in it (cloudcons ${kind === 'relay' ? 'relay-token create NAME' : 'token create --user NAME'} prints one)`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw new BadParameter(`token file ${file} must hold one token and nothing else (it has spaces, several lines or control characters)`);
  if (kind === 'relay' && token.startsWith('ccu_')) throw new BadParameter(`token file ${file} holds a user token (ccu_...), not a relay token: cloudcons relay-token create NAME makes one`);
  if (kind === 'relay' && !token.startsWith('ccr_')) throw new BadParameter(`token file ${file} does not hold a relay token (they start with ccr_): cloudcons relay-token create NAME makes one`);
  if (kind === 'user' && token.startsWith('ccr_')) throw new BadParameter(`token file ${file} holds a relay token (ccr_...): the CLI signs in with a user token (cloudcons token create --user NAME) or an SSO ID token`);
  if (mode & 0o077) warn(`warning: token file ${file} can be read by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 ${file}`);
  return token;
}

/** Where a relay's token comes from, first found wins: --token-file, --token (warned), then
 *  CLOUDCONS_TOKEN_FILE, CLOUDCONS_RELAY_TOKEN, then $CREDENTIALS_DIRECTORY/relay-token (systemd).
 *  Undefined when none is given. */
export function relayToken(o: { token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv, warn: (line: string) => void): { token: string; source: string } | undefined {
  if (o.token !== undefined && o.tokenFile !== undefined) throw new BadParameter('give --token-file or --token, not both');
  if (o.tokenFile !== undefined) return { token: readTokenFile(o.tokenFile, 'relay', warn), source: o.tokenFile };
  if (o.token !== undefined) { warn(TOKEN_FLAG_WARNING); return { token: o.token, source: '--token' }; }
  if (env.CLOUDCONS_TOKEN_FILE) return { token: readTokenFile(env.CLOUDCONS_TOKEN_FILE, 'relay', warn), source: env.CLOUDCONS_TOKEN_FILE };
  if (env.CLOUDCONS_RELAY_TOKEN) return { token: env.CLOUDCONS_RELAY_TOKEN, source: 'CLOUDCONS_RELAY_TOKEN' };
  const cred = env.CREDENTIALS_DIRECTORY && path.join(env.CREDENTIALS_DIRECTORY, 'relay-token');
  if (cred && fs.existsSync(cred)) return { token: readTokenFile(cred, 'relay', warn), source: cred };
  return undefined;
}
