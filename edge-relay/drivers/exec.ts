// Exec console driver: runs a command on a pseudo-terminal with node-pty.
//
// Output is read with `encoding: null` so bytes reach the spool exactly as the program wrote them
// (the default utf8 decoding would mangle anything that is not valid UTF-8).
// node-pty reports a missing executable or cwd only as output ("execvp(3) failed") plus exit 1,
// so open() checks both first to fail with a clear message instead.
import fs from 'node:fs';
import os from 'node:os';
import * as pty from '@lydell/node-pty';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import { RELAY_CONFIG_DEFAULTS, type ExecConsoleConfig } from '../config.ts';
import { findExecutable, killGroup, within } from './child.ts';

const D = RELAY_CONFIG_DEFAULTS.exec;

export interface ExecDriverOptions {
  /** How long close() waits after SIGHUP before SIGKILL (ms). Default 2000. */
  killGraceMs?: number;
}

interface Run {
  proc: pty.IPty;
  events: DriverEvents;
  exited: Promise<void>;
  ended: boolean;
  closing: boolean;
}

export class ExecDriver implements ConsoleDriver {
  readonly type = 'exec';
  readonly resizable = true;
  private cur?: Run;
  private readonly killGraceMs: number;

  constructor(private readonly cfg: ExecConsoleConfig, opts: ExecDriverOptions = {}) {
    this.killGraceMs = opts.killGraceMs ?? 2000;
  }

  /** PID of the running process (for diagnostics and tests). */
  get pid(): number | undefined { return this.cur?.proc.pid; }

  async open(events: DriverEvents): Promise<void> {
    if (this.cur) throw new Error('open exec: already running');
    const c = this.cfg;
    const argv = typeof c.command === 'string' ? ['/bin/sh', '-c', c.command] : c.command;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    // The far end is xterm.js or the user's terminal, not whatever TERM the relay itself runs under.
    Object.assign(env, { TERM: D.term }, c.env);
    const cwd = c.cwd ?? process.cwd();
    if (!isDir(cwd)) throw new Error(`open exec: cwd ${cwd}: no such directory`);
    if (!findExecutable(argv[0], env.PATH, cwd)) throw new Error(`open exec: ${argv[0]}: command not found or not executable`);

    let proc: pty.IPty;
    try {
      proc = pty.spawn(argv[0], argv.slice(1), { name: env.TERM, cwd, env, cols: c.cols ?? D.cols, rows: c.rows ?? D.rows, encoding: null });
    } catch (e) {
      throw new Error(`open exec: ${(e as Error).message}`); // e.g. fork or openpty failed
    }
    let onExit!: () => void;
    const run: Run = { proc, events, ended: false, closing: false, exited: new Promise((r) => (onExit = r)) };
    this.cur = run;
    // With encoding null node-pty hands out Buffers, though its typings say string.
    proc.onData((d: string | Buffer) => { if (!run.ended) run.events.onData(Buffer.isBuffer(d) ? d : Buffer.from(d)); });
    // node-pty holds exit back until the pty's read side has closed (at most 200 ms after the
    // process ended), so the final output arrives before onClose.
    proc.onExit(({ exitCode, signal }) => {
      run.ended = true;
      if (this.cur === run) this.cur = undefined;
      onExit();
      run.events.onClose(run.closing ? 'closed' : exitReason(exitCode, signal));
    });
  }

  async write(data: Buffer): Promise<void> {
    const run = this.cur;
    // Not while closing either: node-pty would log a write to the fd it closes on exit (EBADF).
    if (!run || run.ended || run.closing) throw new Error('exec console: process is not running');
    // Queued by node-pty (a socket write) and written as the pty accepts it. Its typings say
    // string, but the write is a plain socket write: a Buffer goes through byte-exact.
    run.proc.write(data as unknown as string);
  }

  sendBreak(): Promise<void> {
    return Promise.reject(new Error('exec consoles have no serial break'));
  }

  resize(cols: number, rows: number): void {
    const run = this.cur;
    if (!run || run.ended) return;
    try {
      run.proc.resize(cols, rows);
    } catch { /* the process may be exiting right now; its next open gets the supervisor's size */ }
  }

  async close(): Promise<void> {
    const run = this.cur;
    if (!run) return;
    run.closing = true;
    // The child is a session and process-group leader; signal the group so pipelines go too.
    killGroup(run.proc.pid, 'SIGHUP');
    if (await within(run.exited, this.killGraceMs)) return;
    killGroup(run.proc.pid, 'SIGKILL');
    if (await within(run.exited, this.killGraceMs)) return;
    // Unkillable (e.g. stuck in the kernel): stop waiting, but still report the close once.
    if (!run.ended) {
      run.ended = true;
      if (this.cur === run) this.cur = undefined;
      run.events.onClose('closed (process did not exit after SIGKILL)');
    }
  }
}

function exitReason(code: number, signal?: number): string {
  if (signal) {
    const name = Object.entries(os.constants.signals).find(([, n]) => n === signal)?.[0];
    return `killed by signal ${signal}${name ? ` (${name})` : ''}`;
  }
  return `process exited with code ${code}`;
}

function isDir(p: string): boolean {
  try { return fs.statSync(p).isDirectory(); } catch { return false; }
}

