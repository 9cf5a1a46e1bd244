// Console secrets (BMC and SSH passwords, key passphrases): read when a console opens, never
// logged, never put on a command line (where `ps` shows it) and never sent to the cloud. Error
// messages name where the secret should have come from, not what it is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SecretSource { password?: string; passwordFile?: string; passwordEnv?: string }

/** Expands a leading ~ to the relay user's home. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** Reads a file holding one secret: the content without its trailing newline. */
export function readSecretFile(file: string, what = 'secret'): string {
  const f = expandHome(file);
  let text: string;
  try {
    text = fs.readFileSync(f, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${what} file ${f}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** The password a console's config points at, or undefined if it names none. */
export function resolvePassword(src: SecretSource, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (src.password !== undefined) return src.password;
  if (src.passwordFile !== undefined) return readSecretFile(src.passwordFile, 'password');
  if (src.passwordEnv !== undefined) {
    const v = env[src.passwordEnv];
    if (v === undefined) throw new Error(`password: environment variable ${src.passwordEnv} is not set`);
    return v;
  }
  return undefined;
}
