// The emergency users of relay.yaml's `local.users`: who may sign in at this relay with which key,
// and their rights per console from the rw/ro globs (rw wins). Read once, when the relay starts:
// authorizedKeys files then too (a reload that changes local.* needs a restart, said so).
import path from 'node:path';
import { ConfigError } from '../../protocol/errors.ts';
import { globMatcher } from '../../protocol/glob.ts';
import type { LocalUsersConfig } from '../config.ts';
import { parsePublicKeyLine, readAuthorizedKeys, type PublicKey } from './ssh-keys.ts';
import type { AccessSource, LocalPrincipal, LocalRight } from './types.ts';

interface User { keys: PublicKey[]; rw: ((c: string) => boolean)[]; ro: ((c: string) => boolean)[] }

export class ConfigAccess implements AccessSource {
  private readonly users = new Map<string, User>();

  /** `users`: relay.yaml's local.users (validated); `file`: relay.yaml, authorizedKeys paths are
   *  relative to its folder. Throws ConfigError listing every authorizedKeys file it cannot read. */
  constructor(users: LocalUsersConfig | undefined, file: string) {
    const problems: string[] = [];
    for (const [name, u] of Object.entries(users ?? {})) {
      const keys = (u.keys ?? []).map((l) => parsePublicKeyLine(l)!).filter(Boolean);
      if (u.authorizedKeys) {
        try { keys.push(...readAuthorizedKeys(path.resolve(path.dirname(file), u.authorizedKeys))); } catch (e) {
          problems.push(`local: user ${name}: authorizedKeys: ${(e as Error).message}`);
        }
      }
      this.users.set(name, { keys, rw: (u.rw ?? []).map((g) => globMatcher(g)), ro: (u.ro ?? []).map((g) => globMatcher(g)) });
    }
    if (problems.length) throw new ConfigError(file, problems);
  }

  /** The users and how many keys each has (for the start's log line). */
  summary(): string[] { return [...this.users].map(([n, u]) => `${n} (${u.keys.length} key${u.keys.length === 1 ? '' : 's'})`); }

  lookup(user: string, key: Buffer): LocalPrincipal | undefined {
    const u = this.users.get(user);
    const k = u?.keys.find((x) => x.blob.equals(key));
    if (!u || !k) return undefined;
    return {
      user, fingerprint: k.fingerprint, source: 'relay.yaml',
      right: (c): LocalRight | undefined => (u.rw.some((m) => m(c)) ? 'rw' : u.ro.some((m) => m(c)) ? 'ro' : undefined),
    };
  }

  /** relay.yaml's users are always there; the cloud's `relay-local off` closes them (combineSources). */
  enabled(): boolean { return true; }
}
