// The relay's local audit journal: input redacted as the cloud redacts it, records durable when
// record() returns (a process killed with SIGKILL right after keeps them all), a cap past which
// input is refused, confirmed records removed and seqs never reused.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { AuditJournal, JournalFull, JOURNAL_DIR, RESERVE_BYTES } from './audit-journal.ts';
import { InputRedactor, SecretPromptTracker } from '../../protocol/secret-prompt.ts';
import { ECHOES, NOT_PROMPTS, PROMPTS } from '../../protocol/secret-prompt.corpus.ts';
import { cleanup, tmpDir, until } from '../../test/helpers.ts';
import { fillDisk, mountTmpfs, unmountAll } from '../../test/tmpfs.ts';
import { StorageFull } from '../../protocol/errors.ts';

after(cleanup);

const input = (console: string, s: string, user = 'root') => ({ console, what: 'input', user, session: 'ssh-1', ts: Date.now(), data: Buffer.from(s) });
const shown = (j: AuditJournal, c: string) => j.pending(c, 1000, 1e9)?.recs.map((r) => (r.d ? Buffer.from(r.d, 'base64').toString() : r.detail)) ?? [];

test('input typed at a login\'s password prompt is journaled redacted, before and after it in clear', () => {
  const j = new AuditJournal({ dir: tmpDir('journal') });
  j.output('web01', Buffer.from('web01 login: '));
  j.record(input('web01', 'root\r'));
  j.output('web01', Buffer.from('root\r\nPass')); // the prompt split across two reads
  j.output('web01', Buffer.from('word: '));
  j.record(input('web01', 'hunter2\r'));
  j.output('web01', Buffer.from('\r\n\x1b[1mroot@web01:~#\x1b[0m '));
  j.record(input('web01', 'uname -a\r'));
  j.record(input('db01', 'hunter2\r')); // another console's output decides its own
  assert.deepEqual(shown(j, 'web01'), ['root\r', '[redacted: 8 bytes typed at a password prompt]', 'uname -a\r']);
  assert.deepEqual(shown(j, 'db01'), ['hunter2\r']);
  const file = fs.readFileSync(path.join(j['dir'], 'web01.jsonl'), 'utf8');
  assert.ok(!file.includes(Buffer.from('hunter2').toString('base64').slice(0, 8)) && !file.includes('hunter2'), 'the password is nowhere in the journal');
});

test('InputRedactor decides as the cloud\'s tracker on every prompt and non-prompt of the corpus, and key by key through echoes', () => {
  let n = 0;
  const same = (outs: (string | Buffer)[]) => {
    const r = new InputRedactor();
    const cloud = new SecretPromptTracker();
    let at = 0;
    for (const o of outs) {
      const b = Buffer.from(o);
      r.output(b);
      const shows = cloud.feed('c', b, at);
      at += b.length;
      assert.equal(r.atPrompt, shows, JSON.stringify(Buffer.concat(outs.map((x) => Buffer.from(x))).toString('latin1')));
      assert.equal(r.input(Buffer.from('x\r')).data === undefined, shows);
      n++;
    }
  };
  for (const f of [...PROMPTS, ...NOT_PROMPTS]) { const b = Buffer.from(f.out); same([b.subarray(0, 3), b.subarray(3)]); }
  for (const e of ECHOES) same([e.prompt, ...e.keys, e.enter]);
  assert.ok(n > 200, `${n} decisions compared`);
});

test('long input becomes records of at most 4 KiB, empty input one record; a bad name is refused before anything is written', () => {
  const j = new AuditJournal({ dir: tmpDir('journal') });
  const big = 'x'.repeat(10_000);
  j.record(input('web01', big));
  const p = j.pending('web01', 1000, 1e9)!;
  assert.deepEqual(p.recs.map((r) => [r.seq, Buffer.from(r.d!, 'base64').length]), [[1, 4096], [2, 4096], [3, 1808]]);
  j.record(input('web01', ''));
  assert.deepEqual(j.pending('web01', 1000, 1e9)!.recs.at(-1), { seq: 4, what: 'input', user: 'root', session: 'ssh-1', ts: j.pending('web01', 1000, 1e9)!.recs.at(-1)!.ts, d: '' }, 'empty input is one record too');
  assert.throws(() => j.record(input('web01', 'ls\r', 'ro ot')), /user: a local user name is/);
  assert.throws(() => j.record(input('../etc', 'ls\r')), /not a console name/);
  assert.equal(j.pending('web01', 1000, 1e9)!.recs.length, 4);
});

test('past its cap the journal refuses input (nothing written), other records have a reserve; confirming frees room; seqs go on', () => {
  const dir = tmpDir('journal');
  const j = new AuditJournal({ dir, maxBytes: 4096 });
  let n = 0;
  assert.throws(() => { for (;;) { j.record(input('web01', 'a'.repeat(100))); n++; } }, (e) => e instanceof JournalFull && /full .*cap 4096.*localAuditMaxBytes.*input is not sent to the console/.test((e as Error).message));
  const size = fs.statSync(path.join(dir, JOURNAL_DIR, 'web01.jsonl')).size;
  assert.ok(size <= 4096 + 100 && n > 10, `${n} records, ${size} bytes`);
  j.record({ console: 'web01', what: 'detach', user: 'root', session: 'ssh-1', ts: 1 });
  assert.ok(RESERVE_BYTES > 1000);
  const p = j.pending('web01', 5)!;
  j.confirm('web01', p.journal, 5);
  j.confirm('web01', 'another', 9); // another journal's confirm changes nothing
  j.record(input('web01', 'after\r'));
  j.close();
  const again = new AuditJournal({ dir, maxBytes: 4096 });
  const seqs = again.pending('web01', 1000, 1e9)!.recs.map((r) => r.seq);
  assert.deepEqual(seqs, Array.from({ length: n - 5 + 2 }, (_, i) => i + 6), 'confirmed ones gone after a restart, the seqs go on');
  assert.equal(again.pending('web01')!.journal, p.journal);
});

test('records are on disk when record() returns: a writer killed with SIGKILL loses none of them; a torn last line is cut', { timeout: 60_000 }, async () => {
  const dir = tmpDir('journal-kill');
  // A child process records as fast as it can and says each seq once record() returned.
  const src = `import { AuditJournal } from ${JSON.stringify(path.resolve('edge-relay/local/audit-journal.ts'))};
    const j = new AuditJournal({ dir: ${JSON.stringify(dir)} });
    for (let i = 1; ; i++) { j.record({ console: 'web01', what: 'input', user: 'root', session: 's', ts: Date.now(), data: Buffer.from('x'.repeat(i % 300)) }); process.stdout.write(i + '\\n'); }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = 0;
  child.stdout.on('data', (d: Buffer) => { const l = d.toString().trim().split('\n').at(-1); if (l) said = Math.max(said, Number(l)); });
  await until('350 records said (one of them, the 300th, empty input)', () => said >= 350, 30_000);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // A write the kill cut short, as a crash mid-write leaves it.
  fs.appendFileSync(path.join(dir, JOURNAL_DIR, 'web01.jsonl'), '{"seq":999999,"what":"inp');
  const logs: string[] = [];
  const j = new AuditJournal({ dir, log: (l) => logs.push(l) });
  const seqs = j.pending('web01', 1e9, 1e12)!.recs.map((r) => r.seq);
  assert.ok(seqs.length >= said, `${seqs.length} records in the journal, ${said} said durable`);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
  assert.match(logs.join('\n'), /bytes after its last whole record .* removed/);
  j.record(input('web01', 'next\r'));
  j.close();
  assert.equal(new AuditJournal({ dir }).pending('web01', 1e9, 1e12)!.recs.at(-1)!.seq, seqs.length + 1, 'a record after the cut line is kept');
});

test('a disk that refuses the write: the record is refused (its input must not go out), nothing half written stays, later records are kept', { timeout: 30_000 }, async (t) => {
  const root = tmpDir('journal-full');
  const disk = path.join(root, 'disk');
  const why = mountTmpfs(disk, '1m');
  // Gated: a full disk is a small tmpfs, and mounting one needs root (the skip says why: mount's
  // own error). CI runs as root, so this runs there.
  if (why) { t.skip(why); return; }
  t.after(unmountAll);
  const j = new AuditJournal({ dir: disk });
  j.record(input('web01', 'before\r'));
  const filler = path.join(disk, 'filler');
  fillDisk(filler);
  const file = path.join(disk, JOURNAL_DIR, 'web01.jsonl');
  const was = fs.readFileSync(file);
  // Big enough not to fit in the last partial block the filler left.
  assert.throws(() => j.record(input('web01', 'y'.repeat(4000).repeat(3))), (e) => e instanceof StorageFull && /could not be written .*input is not sent to the console/.test((e as Error).message));
  assert.deepEqual(fs.readFileSync(file), was, 'the file as it was: no torn line');
  fs.rmSync(filler);
  j.record(input('web01', 'after\r'));
  j.close();
  assert.deepEqual(shown(new AuditJournal({ dir: disk }), 'web01'), ['before\r', 'after\r']);
});
