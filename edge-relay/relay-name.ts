// A relay's name and its spool. A relay is who its token says; `relay.name` in relay.yaml is only
// compared with that (the cloud refuses a hello whose name is another relay's). A relay without
// one learns its token's name from the cloud's welcome, so its spool cannot be named after it at
// start: its default spool is a fixed folder (`default`). The first welcome records the name in
// the spool (`.relay-name`: a name never starts with a dot, so no console's folder is called
// that), and from then on the spool belongs to that relay: a start configured as another relay is
// refused at once, and a relay without a name says hello as the recorded one, which the cloud
// refuses if its token is another relay's. So one relay's unsent output is never uploaded as
// another's, whichever token or config the box is given later.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadParameter } from '../protocol/errors.ts';
import { writeFileAtomic } from '../protocol/atomic-file.ts';

export const NAME_FILE = '.relay-name';

/** The default spool directory: STATE/spool/<relay name>, or STATE/spool/default for a relay
 *  without a name in its config. STATE is systemd's $STATE_DIRECTORY (StateDirectory=; its first
 *  entry), else $XDG_STATE_HOME/cloudcons (~/.local/state/cloudcons). A relay without a name whose
 *  spool from before names were learned (STATE/spool/<host name>, when it took the host's name) is
 *  there and STATE/spool/default is not keeps using that one (`legacy`). */
export function defaultSpoolDir(name: string | undefined, env: NodeJS.ProcessEnv = process.env): { dir: string; legacy?: boolean } {
  const state = env.STATE_DIRECTORY?.split(':')[0] || path.join(env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state'), 'cloudcons');
  if (name) return { dir: path.join(state, 'spool', name) };
  const dir = path.join(state, 'spool', 'default');
  const old = path.join(state, 'spool', os.hostname());
  if (!fs.existsSync(dir) && fs.existsSync(old) && !fs.existsSync(path.join(old, NAME_FILE))) return { dir: old, legacy: true };
  return { dir };
}

/** The relay name recorded in spool `dir`, if any. */
export function recordedName(dir: string): string | undefined {
  try { return fs.readFileSync(path.join(dir, NAME_FILE), 'utf8').trim() || undefined; } catch { return undefined; }
}

/** Records `name` in spool `dir` (the welcome said it). Throws on a disk that refuses. */
export function recordName(dir: string, name: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(path.join(dir, NAME_FILE), `${name}\n`);
}

/** The name a relay says hello with: its config's, else the one its spool recorded (undefined:
 *  none yet, the welcome will say). Throws BadParameter when the config names another relay than
 *  the one the spool belongs to. */
export function relayName(configured: string | undefined, spoolDir: string): { name?: string; from?: 'config' | 'spool' } {
  const recorded = recordedName(spoolDir);
  if (configured && recorded && configured.toLowerCase() !== recorded.toLowerCase()) {
    throw new BadParameter(`spool ${spoolDir} holds relay ${recorded}'s output (${path.join(spoolDir, NAME_FILE)}), but relay.yaml names this relay ${configured}: give relay ${configured} a spool of its own (relay.spool.dir or --spool), or name it ${recorded} again; remove ${spoolDir} only once relay ${recorded}'s unsent output in it may be lost`);
  }
  return configured ? { name: configured, from: 'config' } : recorded ? { name: recorded, from: 'spool' } : {};
}
