// The one way a file that matters is written, for the relay, the cloud and the CLI: no write is
// taken as done unless all of it reached the file (writeAllSync loops over short writes, a full
// disk throws), and a file is replaced so that a crash at any instruction leaves the old content
// or the new (writeFileAtomic: a temporary file beside it, written in full, fsynced, renamed over
// it, the folder fsynced). A guard test (atomic-file.test.ts) keeps bare fs.writeFileSync of state
// out of the code base.
import fs from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE_MODE } from './private-files.ts';

/** Writes all of `bufs` at the file's end (an O_APPEND descriptor) or from `pos`: a short write
 *  is continued, so this returns only when every byte was written, and throws otherwise (the
 *  write's error: ENOSPC once the disk is full). What was written before the throw stays: the
 *  caller cuts it off (it knows the length before). */
export function writeAllSync(fd: number, bufs: Buffer[], pos?: number): void {
  let rest = bufs.filter((b) => b.length);
  while (rest.length) {
    let n = fs.writevSync(fd, rest, pos);
    if (n === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    if (pos !== undefined) pos += n;
    while (n > 0 && rest.length) {
      if (n >= rest[0].length) { n -= rest[0].length; rest.shift(); } else { rest[0] = rest[0].subarray(n); n = 0; }
    }
  }
}

/** Replaces `file` with `data` so that a crash at any point leaves the old content or the new:
 *  a temporary file beside it (`<file>.<pid>.tmp`, made anew, exactly mode 0600 unless `mode`),
 *  written in full and fsynced, renamed over it, the folder fsynced. A failure removes the
 *  temporary file and leaves `file` as it was (then rethrows). */
export function writeFileAtomic(file: string, data: string | Buffer, mode = PRIVATE_FILE_MODE): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.rmSync(tmp, { force: true }); // one a crashed process of the same pid left, maybe wider
    const fd = fs.openSync(tmp, 'wx', mode);
    try { fs.fchmodSync(fd, mode); writeAllSync(fd, [typeof data === 'string' ? Buffer.from(data) : data]); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(path.dirname(file));
}

/** fsyncs a folder (a rename or a new file in it is durable then). */
export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
