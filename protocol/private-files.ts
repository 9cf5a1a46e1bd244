// Files only this user may read. The cloud's data directory (console output, typed input in the
// audit, token hashes, the TLS key) and the relay's spool (console output) are created with
// folders 0700 and files 0600 whatever the umask (a mode given to mkdir or open is narrowed by the
// umask, never widened, so asking for these is enough). What is already there when a process
// starts is tightened: group and other bits are taken off what this user owns (logged), and
// anything else that others could read stops the start with a message saying what to do.
import fs from 'node:fs';
import path from 'node:path';
import { CcError } from './errors.ts';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p, each folder it makes 0700. Returns `dir`. */
export function privateDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return dir;
}

export interface TightenOptions {
  log: (line: string) => void;
  /** Entries directly under the root that are tightened themselves but not walked into (a
   *  folder of very many files: with it and the root private, nobody else reaches them). */
  shallow?: string[];
  /** This user (process.getuid()); root may change anything. */
  uid?: number;
}

/** Makes `root` (created if missing) and what lies below it private: see the header. Symbolic
 *  links are not followed. Throws CC_ERR_CONFIG naming the first path it cannot make private. */
export function tightenTree(root: string, o: TightenOptions): void {
  privateDir(root);
  const uid = o.uid ?? process.getuid?.();
  const changed: string[] = [];
  /** Takes group and other bits off `p`; walks into it (`deep`) when it is a folder. */
  const visit = (p: string, st: fs.Stats, deep: boolean) => {
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      if (uid !== undefined && uid !== 0 && st.uid !== uid) {
        throw new CcError('CC_ERR_CONFIG', `${p} is mode ${oct(mode)}, owned by uid ${st.uid}, not this user (uid ${uid}): others may read it and it cannot be made private here; chown it to this user or chmod go-rwx it`);
      }
      try { fs.chmodSync(p, mode & 0o700); } catch (e) {
        throw new CcError('CC_ERR_CONFIG', `${p} is mode ${oct(mode)} and cannot be made private (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): chmod go-rwx it`);
      }
      changed.push(`${p} (was ${oct(mode)})`);
    }
    if (!deep || !st.isDirectory()) return;
    for (const name of fs.readdirSync(p)) {
      const child = path.join(p, name);
      visit(child, fs.lstatSync(child), p !== root || !o.shallow?.includes(name));
    }
  };
  visit(root, fs.statSync(root), true);
  if (changed.length) {
    o.log(`made ${changed.length} file(s) and folder(s) under ${root} private (group or others could read them): ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', ...' : ''}`);
  }
}

function oct(mode: number): string { return `0${mode.toString(8).padStart(3, '0')}`; }
