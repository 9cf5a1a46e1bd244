// Small real disks for fault tests: a tmpfs mounted where a test wants a disk it can fill. Needs
// root (mount -t tmpfs); mountTmpfs says why when it cannot, and the test skips with that reason.
// unmountAll() after the processes using a mount have ended (a mount still busy is detached lazily).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const mounts = new Set<string>();

/** Mounts a tmpfs of `size` (mount's syntax: 2m) at `dir` (created); the reason when it cannot. */
export function mountTmpfs(dir: string, size: string): string | undefined {
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return `mount -t tmpfs failed (${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}): these tests need root`;
  mounts.add(dir);
  return undefined;
}

export function unmountAll(): void {
  // Still busy (a thread-pool write of a process just stopped, under load): detached lazily, so the
  // folder can be removed and the kernel frees the tmpfs once the last file is closed.
  for (const m of mounts) if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['-l', m]);
  mounts.clear();
}

/** Writes `file` until the disk has no byte left (ENOSPC); returns its size. */
export function fillDisk(file: string): number {
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024, 0x55);
  let n = 0;
  try {
    for (;;) {
      try { n += fs.writeSync(fd, block); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        try { for (;;) n += fs.writeSync(fd, block, 0, 1); } catch { return n; } // and the last partial page
      }
    }
  } finally { fs.closeSync(fd); }
}
