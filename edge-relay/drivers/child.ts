// Helpers the drivers that run a program on a pty (exec, ipmi) share.
import fs from 'node:fs';
import path from 'node:path';

/** Signals a child's whole process group (it leads its own session on a pty), else the child. */
export function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try { process.kill(pid, sig); } catch { /* already gone */ }
  }
}

/** Whether `p` settles within `ms`. */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((r) => (t = setTimeout(() => r(false), ms))),
  ]).finally(() => clearTimeout(t));
}

/** The executable file `cmd` names (a path, resolved against `cwd`, or looked up on `searchPath`). */
export function findExecutable(cmd: string, searchPath = '', cwd = process.cwd()): string | undefined {
  const candidates = cmd.includes('/') ? [path.resolve(cwd, cmd)] : searchPath.split(':').filter(Boolean).map((d) => path.join(d, cmd));
  return candidates.find((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  });
}
