// IPMI Serial-over-LAN consoles: runs `ipmitool -I lanplus ... sol activate` (or FreeIPMI's
// `ipmiconsole`) on a pseudo-terminal, as an operator would in a terminal, and relays its SOL data.
// What the code relies on was read in the tools' sources (ipmitool lib/ipmi_sol.c and
// lib/ipmi_main.c, FreeIPMI ipmiconsole/src/ipmiconsole/ipmiconsole.c) and checked against
// ipmitool 1.8.19 and ipmiconsole 1.6.10 talking to OpenIPMI's ipmi_sim (ipmi.test.ts).
//
// Credentials never go on the command line (`ps` and /proc/<pid>/cmdline are world-readable):
// - ipmitool: `-E` takes the password from IPMITOOL_PASSWORD (which wins) or IPMI_PASSWORD, `-K`
//   the K_g from IPMI_KGKEY. We set both password variables (an inherited IPMITOOL_PASSWORD would
//   otherwise win) and pass `-E` even without a password, so ipmitool never stops at a prompt.
//   /proc/<pid>/environ is readable by the relay's user only, like the relay config itself.
// - ipmiconsole has no environment variables for secrets; its config file cannot hold a '#' or a
//   '"' in a value. So `-P`/`-K` make it prompt ("Password: ", "K_g: ") on the pty and we answer
//   the prompts; nothing secret touches the disk.
// The tools' stderr goes to a file in a private temp dir (`2>>`), not to the pty: ipmitool prints
// every error there (lprintf), so its status lines never mix with console data and give the close
// and error reasons. `-v` makes ipmitool say why a session failed ("RAKP 2 HMAC is invalid" for a
// wrong password) instead of only "Unable to establish IPMI v2 / RMCP+ session"; it prints nothing
// more once the SOL session runs.
//
// The pty is put in raw mode (`stty raw -echo -iexten`) before the tool starts: ipmitool prints its
// ready banner BEFORE it switches the terminal to raw mode, so input sent right after the banner
// could otherwise meet a cooked terminal (echo, ^C killing ipmitool, CR->NL). SIGHUP is ignored by
// the tool (`trap '' HUP` before exec), so when the pty master closes (close() below, or the relay
// dying) ipmitool reads EOF and leaves the way `~.` does: deactivates SOL, closes its session.
//
// Escapes. ipmitool (processSolUserInput) treats `~` as an escape only right after a CR or LF it
// forwarded (and at the start); `~.` quits, `~B` sends a break, `~?` prints help, `~^Z`/`~^X`
// suspend it, `~~` forwards one `~`, `~` + anything else forwards both; escapes it acts on do not
// change its "after CR/LF" state. ipmiconsole treats `&` as an escape anywhere: `&.` quits, `&B`
// breaks, `&D` sends DEL, `&?` help, `&&` forwards one `&`.
// User input can never trigger an escape: we track ipmitool's "after CR/LF" state over all bytes
// we write (across writes) and write a `~` seen in that state as `~~`; for ipmiconsole every `&`
// is written as `&&`. Both tools then forward exactly the user's byte and are back in their
// "no escape pending" state, so by induction over the bytes no user input reaches an escape
// action; only sendBreak() and close() write escapes.
//
// BREAK: ipmitool needs `~B` at a line start. When the last byte we sent was CR or LF (or nothing
// was sent yet) we send `~B` alone and the host sees nothing but the break. Otherwise ipmitool can
// only be brought to a line start by forwarding a CR or LF to the host, so we send "\r", then (100 ms
// later: ipmitool sends a break before the data it read along with the `~B`) "~B": the host gets
// one CR (as if Enter was pressed: a half-typed line is submitted) before the break. The
// alternative, restarting the SOL session (a new ipmitool starts at a line start), would lose the
// output sent during the restart and delay the break; a CR only happens when the operator left an
// unfinished line. ipmiconsole's `&B` works anywhere and injects nothing. The tools echo
// "~B [send break]" / "[generate break]" on their stdout; that echo is removed from the output.
//
// "SOL payload already active on another session" (ipmitool) / "SOL in use" (ipmiconsole, run with
// --dont-steal): open() deactivates the other session (`sol deactivate` / `--deactivate`, same
// flags and credentials), activates again once, and says so on the console:
// "[cloudcons: SOL was active elsewhere; deactivated it]".
//
// Liveness. ipmitool notices a dead BMC or a deactivated payload only when it sends something:
// its keepalive (Get Device ID every 15 s) keeps working on a BMC whose SOL was deactivated, and
// against a BMC that went away it took more than 70 s to give up. So the driver sends RMCP
// presence pings (ASF, the unauthenticated ping every IPMI LAN BMC answers) every pingIntervalMs;
// after pingMisses unanswered pings in a row it ends the tool and reports the BMC gone, and the
// supervisor reopens. A BMC that never answered a ping is not judged by pings. Not covered: a BMC
// that restarts faster than the ping window, and SOL taken away by another session while the
// console is idle: both are noticed at the next keystroke (ipmitool gives up on it after about 4 s:
// "Error sending SOL data: FAIL", "SOL session closed by BMC"; ipmiconsole took 40 s).
//
// Output: open() consumes everything up to the tool's ready banner ("[SOL Session operational.
// Use ~? for help]" / "[SOL established]"); after it ipmitool's stdout carries SOL data only (its
// errors go to stderr) plus the break echo; ipmiconsole's goodbye lines ("[error received]: ...",
// "[closing the connection]") are held back until it exits and become the close reason. All 256
// byte values pass both ways (raw pty, nothing filtered by SOL or the tools).
//
// close(): ipmitool gets `~.` at a line start and EOF (pty closed) elsewhere, ipmiconsole `&.`;
// both then deactivate SOL and close their session. A tool that does not end within killGraceMs
// is killed and SOL is deactivated with a separate run (if the BMC answers a ping at all).
//
// Config mapping: privilege -> ipmitool -L (ipmiconsole -l, ADMINISTRATOR as ADMIN, no CALLBACK);
// cipherSuite -> -C (-I); workarounds -> ipmitool -o OEMTYPE (one only) / ipmiconsole -W a,b;
// kgFile: text, or 0x-prefixed hex. ipmiconsole 1.6 cannot reach a BMC port above 32767 ("hostname
// invalid": it parses the port as a signed 16-bit number); BMCs use 623.
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as pty from '@lydell/node-pty';
import type { ConsoleDriver, DriverEvents } from '../driver.ts';
import type { IpmiConsoleConfig } from '../config.ts';
import { findExecutable, killGroup, within } from './child.ts';
import { readSecretFile, resolvePassword } from '../secrets.ts';

export interface IpmiDriverOptions {
  /** open() gives up when the SOL session is not operational after this long (ms). Default 30000
   *  (ipmitool itself gives up on a silent BMC after about 20 s, with its own message). */
  openTimeoutMs?: number;
  /** close(): how long to wait for the tool to end after asking it to, and after each signal (ms).
   *  Default 3000. */
  killGraceMs?: number;
  /** RMCP presence ping interval while open (ms); 0 turns the liveness check off. Default 1000. */
  pingIntervalMs?: number;
  /** Unanswered pings in a row after which the BMC counts as gone. Default 3. */
  pingMisses?: number;
  /** Environment: PATH to find the tool, passwordEnv. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export const IPMI_DRIVER_DEFAULTS = { openTimeoutMs: 30_000, killGraceMs: 3000, pingIntervalMs: 1000, pingMisses: 3 } as const;

/** ipmitool's ready banner (printf in ipmi_sol_activate). */
const IPMITOOL_READY = /\[SOL Session operational\.  Use .\? for help\]\r?\n/;
/** ipmiconsole's ready banner. */
const IPMICONSOLE_READY = /\[SOL established\]\r?\n/;
/** ipmiconsole prints these lines on stdout just before it exits (after the session broke, or on
 *  `&.`), each as "\r\n[...]\r\n"; stdout is line-buffered, so the "\r\n" comes as a write of its
 *  own and only the line from "[" on can be told apart from console data. */
const IPMICONSOLE_EXIT_MARKERS = ['[error received]: ', '[SOL session stolen]', '[closing the connection]'];
const ACTIVE_ELSEWHERE = /SOL payload already active on another session|SOL in use/;
/** The tool runs under this: raw pty, SIGHUP ignored, stderr to our file. */
const WRAPPER = `trap '' HUP; PATH="$PATH:/usr/bin:/bin" stty raw -echo -iexten; exec "$0" "$@" 2>>"$CLOUDCONS_IPMI_STDERR"`;
const NOTICE_DEACTIVATED = '\r\n[cloudcons: SOL was active elsewhere; deactivated it]\r\n';
/** Between the CR that brings ipmitool to a line start and the `~B` (ms). */
const BREAK_CR_GAP_MS = 100;
/** How long a tool goodbye line is held back from the console output, waiting for the exit (ms). */
const HOLD_MS = 1000;
/** How long the start of a possible status line at the end of a read is held back (ms). */
const PARTIAL_MS = 100;
const TILDE = 0x7e;
const AMP = 0x26;
const CR = 0x0d;
const LF = 0x0a;

type ToolName = 'ipmitool' | 'ipmiconsole';

/** Everything one open needs, worked out before anything runs. */
interface Plan {
  tool: ToolName;
  port: number;
  bin: string;
  activateArgs: string[];
  deactivateArgs: string[];
  env: Record<string, string>;
  /** Prompt answers (ipmiconsole). */
  answers: { prompt: RegExp; text: string }[];
  ready: RegExp;
  secret?: string;
}

interface ExitInfo { code: number; signal: number }

/** One run of the tool on a pty. */
class ToolRun {
  readonly proc: pty.IPty;
  readonly dir: string;
  readonly errFile: string;
  readonly exited: Promise<ExitInfo>;
  exit?: ExitInfo;
  /** Output before the ready banner (latin1, capped). */
  pre = '';
  /** Called with output after the banner. */
  sink?: (d: Buffer) => void;
  private early: Buffer[] = [];
  private readyResolve!: () => void;
  readonly ready: Promise<void>;
  isReady = false;
  private answered = 0;

  constructor(plan: Plan, args: string[], readyRe: RegExp | undefined) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cloudcons-ipmi-'));
    this.errFile = path.join(this.dir, 'stderr');
    this.ready = new Promise((r) => (this.readyResolve = r));
    const env = { ...plan.env, CLOUDCONS_IPMI_STDERR: this.errFile };
    try {
      this.proc = pty.spawn('/bin/sh', ['-c', WRAPPER, plan.bin, ...args], { name: 'dumb', cols: 80, rows: 24, cwd: this.dir, env, encoding: null });
    } catch (e) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      throw e;
    }
    let onExit!: (e: ExitInfo) => void;
    this.exited = new Promise((r) => (onExit = r));
    this.proc.onData((d: string | Buffer) => {
      const buf = Buffer.isBuffer(d) ? d : Buffer.from(d, 'latin1');
      if (this.isReady) {
        if (this.sink) this.sink(buf);
        else this.early.push(buf);
        return;
      }
      this.pre += buf.toString('latin1');
      const m = readyRe?.exec(this.pre);
      if (m) {
        const rest = this.pre.slice(m.index + m[0].length);
        this.pre = this.pre.slice(0, m.index);
        this.isReady = true;
        if (rest) this.early.push(Buffer.from(rest, 'latin1'));
        this.readyResolve();
        return;
      }
      const next = plan.answers[this.answered];
      if (next && next.prompt.test(this.pre)) {
        this.answered++;
        this.pre += '\n'; // keep the answered prompt out of the next prompt's match
        this.proc.write(`${next.text}\n`);
      }
      if (this.pre.length > 16_384) this.pre = this.pre.slice(-8192);
    });
    // node-pty reports the exit once the pty's read side is drained: the last output came first.
    this.proc.onExit(({ exitCode, signal }) => {
      this.exit = { code: exitCode, signal: signal ?? 0 };
      onExit(this.exit);
    });
  }

  get pid(): number { return this.proc.pid; }

  /** Starts delivering post-banner output to `sink` (output that came meanwhile first). */
  attach(sink: (d: Buffer) => void): void {
    this.sink = sink;
    const early = this.early;
    this.early = [];
    for (const b of early) sink(b);
  }

  /** The tool's stderr (its last 8 KiB). */
  stderr(): string {
    try {
      const fd = fs.openSync(this.errFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const len = Math.min(size, 8192);
        const buf = Buffer.alloc(len);
        fs.readSync(fd, buf, 0, len, size - len);
        return buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  /** Closes the pty master: the tool reads EOF (it ignores the SIGHUP that comes with it). */
  hangUp(): void {
    (this.proc as unknown as { destroy?: () => void }).destroy?.();
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit) return;
    killGroup(this.proc.pid, sig); // the tool leads its own session and process group
  }

  /** Removes the run's temporary folder. Never throws: it runs in exit callbacks, where an I/O
   *  error would end the relay (an unhandled rejection) and skip the console's close. */
  dispose(): void {
    try { fs.rmSync(this.dir, { recursive: true, force: true }); } catch { /* a temporary folder left behind */ }
  }
}

/** An open SOL session. */
interface Session {
  run: ToolRun;
  events: DriverEvents;
  filter: OutputFilter;
  monitor?: PingMonitor;
  /** ipmitool: the last byte it forwarded was CR or LF (or none yet), so `~` would be an escape. */
  lineStart: boolean;
  closing: boolean;
  ended: boolean;
  /** Why we ended it ourselves (the BMC stopped answering). */
  dropReason?: string;
  /** Writes and breaks, in order. */
  queue: Promise<void>;
  done: Promise<void>;
}

type Attempt = { kind: 'up'; run: ToolRun } | { kind: 'busy'; message: string } | { kind: 'failed'; message: string };

export class IpmiDriver implements ConsoleDriver {
  readonly type = 'ipmi';
  readonly resizable = false;
  private cur?: Session;
  private opening = false;
  private starting?: ToolRun;
  private aborted = false;
  private lastPlan?: Plan;
  private readonly o: Required<Omit<IpmiDriverOptions, 'env'>> & { env: NodeJS.ProcessEnv };
  private readonly label: string;

  constructor(private readonly cfg: IpmiConsoleConfig, opts: IpmiDriverOptions = {}) {
    this.o = {
      openTimeoutMs: opts.openTimeoutMs ?? IPMI_DRIVER_DEFAULTS.openTimeoutMs,
      killGraceMs: opts.killGraceMs ?? IPMI_DRIVER_DEFAULTS.killGraceMs,
      pingIntervalMs: opts.pingIntervalMs ?? IPMI_DRIVER_DEFAULTS.pingIntervalMs,
      pingMisses: opts.pingMisses ?? IPMI_DRIVER_DEFAULTS.pingMisses,
      env: opts.env ?? process.env,
    };
    this.label = `ipmi ${net.isIPv6(cfg.host) ? `[${cfg.host}]` : cfg.host}:${cfg.port}`;
  }

  /** PID of the running tool (diagnostics and tests). */
  get pid(): number | undefined { return this.cur?.run.pid; }
  /** Whether the open session's BMC has answered an RMCP ping yet: only then do missed pings end it. */
  get bmcAnsweredPing(): boolean { return !!this.cur?.monitor?.answeredOnce; }

  async open(events: DriverEvents): Promise<void> {
    if (this.cur || this.opening) throw new Error(`open ${this.label}: already open`);
    this.opening = true;
    try {
      await this.openOnce(events);
    } finally {
      this.opening = false;
    }
  }

  private async openOnce(events: DriverEvents): Promise<void> {
    const plan = this.prepare();
    this.lastPlan = plan;
    this.aborted = false;
    let r = await this.activate(plan);
    let notice = '';
    if (r.kind === 'busy') {
      const why = await this.deactivate(plan);
      if (this.aborted) throw new Error(`${this.label}: closed while opening`);
      r = await this.activate(plan);
      if (r.kind === 'busy') throw new Error(`${this.label}: SOL is active on another session and deactivating it did not help (${why ?? r.message})`);
      notice = NOTICE_DEACTIVATED;
    }
    if (r.kind === 'failed') throw new Error(`${this.label}: ${r.message}`);
    if (this.aborted) {
      await this.finish(r.run);
      throw new Error(`${this.label}: closed while opening`);
    }
    this.up(r.run, plan, events, notice);
  }

  write(data: Buffer): Promise<void> {
    return this.serial((s) => {
      if (data.length) s.run.proc.write(this.encode(s, data) as unknown as string); // a Buffer: see exec.ts
    });
  }

  sendBreak(): Promise<void> {
    return this.serial(async (s) => {
      if (this.cfg.tool === 'ipmiconsole') {
        s.filter.expect('[generate break]\r\n');
        s.run.proc.write('&B');
        return;
      }
      // `~B` only counts at a line start, and leaves ipmitool there (see the header). ipmitool
      // sends a break the moment it reads `~B`, before the data it read together with it, so the
      // CR gets a moment of its own: the host sees CR, then BREAK (a SysRq key typed next must
      // not be preceded by that CR).
      if (!s.lineStart) {
        s.run.proc.write('\r');
        s.lineStart = true;
        await sleep(BREAK_CR_GAP_MS);
        if (s.ended || s.closing) throw new Error(`${this.label}: SOL session is not open`);
      }
      s.filter.expect('~B [send break]\n');
      s.run.proc.write('~B');
    });
  }

  /** Runs `fn` after the writes and breaks before it (a break's CR and `~B` must not be split by
   *  a write), rejecting when the session is not open. */
  private serial(fn: (s: Session) => void | Promise<void>): Promise<void> {
    const s = this.cur;
    if (!s || s.ended || s.closing) return Promise.reject(new Error(`${this.label}: SOL session is not open`));
    const p = s.queue.then(() => {
      if (s.ended || s.closing) throw new Error(`${this.label}: SOL session is not open`);
      return fn(s);
    });
    s.queue = p.catch(() => {});
    return p;
  }

  resize(): void { /* SOL has no terminal size */ }

  async close(): Promise<void> {
    if (this.opening) {
      // An open in flight ends with "closed while opening" (and releases what it got).
      this.aborted = true;
      this.starting?.signal('SIGKILL');
    }
    const s = this.cur;
    if (!s) return;
    if (!s.closing && !s.ended) {
      s.closing = true;
      s.monitor?.stop();
      if (this.cfg.tool === 'ipmitool') {
        // `~.` is ipmitool's own way out, valid at a line start; elsewhere closing the pty has the
        // same effect (EOF on stdin) without sending a CR to the host.
        if (s.lineStart) s.run.proc.write('~.');
        else s.run.hangUp();
      } else {
        s.run.proc.write('&.');
      }
    }
    if (await within(s.done, this.o.killGraceMs)) return;
    // Stuck (typically: deactivating SOL at a BMC that stopped answering). SIGTERM would not do
    // better: neither tool cleans up on it.
    s.run.signal('SIGKILL');
    if (!(await within(s.done, this.o.killGraceMs)) && !s.ended) {
      // Unkillable: stop waiting, but still report the close once.
      s.ended = true;
      if (this.cur === s) this.cur = undefined;
      s.events.onClose('closed (the IPMI tool did not exit after SIGKILL)');
    }
    // The killed tool did not release SOL at the BMC: do that here if the BMC is there at all.
    if (this.lastPlan && await rmcpPing(this.cfg.host, this.cfg.port, 500)) await this.deactivate(this.lastPlan, this.o.killGraceMs);
  }

  /** Works out the tool, its arguments, environment and secrets. Throws clear errors. */
  private prepare(): Plan {
    const c = this.cfg;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.o.env)) if (v !== undefined) env[k] = v;
    // Never hand an inherited secret to the tool.
    for (const k of ['IPMITOOL_PASSWORD', 'IPMI_PASSWORD', 'IPMI_KGKEY']) delete env[k];
    const bin = findExecutable(c.tool, env.PATH);
    if (!bin) throw new Error(`${this.label}: ${c.tool} not found: install ${c.tool === 'ipmitool' ? 'ipmitool' : 'freeipmi-tools'}`);
    let password: string | undefined;
    let kg: string | undefined;
    try {
      password = resolvePassword(c, this.o.env);
      kg = c.kgFile !== undefined ? readSecretFile(c.kgFile, 'K_g') : undefined;
    } catch (e) {
      throw new Error(`${this.label}: ${(e as Error).message}`);
    }
    if (c.tool === 'ipmitool') {
      const common = ['-v', '-I', 'lanplus', '-H', c.host, '-p', String(c.port)];
      if (c.user) common.push('-U', c.user);
      common.push('-L', c.privilege);
      if (c.cipherSuite !== undefined) common.push('-C', String(c.cipherSuite));
      if (c.workarounds?.length) {
        if (c.workarounds.length > 1) throw new Error(`${this.label}: ipmitool takes one OEM workaround type (-o), not ${c.workarounds.join(', ')}`);
        common.push('-o', c.workarounds[0]);
      }
      common.push('-E'); // password from the environment, also when empty: never a prompt
      env.IPMITOOL_PASSWORD = env.IPMI_PASSWORD = password ?? '';
      if (kg !== undefined) {
        env.IPMI_KGKEY = ipmitoolKg(kg, this.label);
        common.push('-K');
      }
      return {
        tool: 'ipmitool', port: c.port, bin, env, answers: [], ready: IPMITOOL_READY, secret: password,
        activateArgs: [...common, 'sol', 'activate'], deactivateArgs: [...common, 'sol', 'deactivate'],
      };
    }
    const priv = { USER: 'USER', OPERATOR: 'OPERATOR', ADMINISTRATOR: 'ADMIN', CALLBACK: '' }[c.privilege];
    if (!priv) throw new Error(`${this.label}: ipmiconsole has no ${c.privilege} privilege level (use USER, OPERATOR or ADMINISTRATOR)`);
    const common = ['-h', `${net.isIPv6(c.host) ? `[${c.host}]` : c.host}:${c.port}`];
    if (c.user) common.push('-u', c.user);
    common.push('-l', priv);
    if (c.cipherSuite !== undefined) common.push('-I', String(c.cipherSuite));
    if (c.workarounds?.length) common.push('-W', c.workarounds.join(','));
    const answers: Plan['answers'] = [];
    if (password) {
      if (/[\r\n]/.test(password)) throw new Error(`${this.label}: the password has a line break, which ipmiconsole's prompt cannot take`);
      common.push('-P');
      answers.push({ prompt: /Password: $/, text: password });
    }
    if (kg !== undefined) {
      if (/[\r\n]/.test(kg)) throw new Error(`${this.label}: the K_g has a line break, which ipmiconsole's prompt cannot take`);
      common.push('-K');
      answers.push({ prompt: /K_g: $/, text: kg });
    }
    return {
      tool: 'ipmiconsole', port: c.port, bin, env, answers, ready: IPMICONSOLE_READY, secret: password,
      activateArgs: [...common, '--dont-steal'], deactivateArgs: [...common, '--deactivate'],
    };
  }

  /** One activation: up, SOL busy elsewhere, or failed with the tool's reason. */
  private async activate(plan: Plan): Promise<Attempt> {
    const run = new ToolRun(plan, plan.activateArgs, plan.ready);
    this.starting = run;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.o.openTimeoutMs)));
    try {
      const how = await Promise.race([run.ready.then(() => 'ready' as const), run.exited.then(() => 'exited' as const), timedOut]);
      if (how === 'ready') return { kind: 'up', run };
      if (how === 'timeout') {
        run.signal('SIGKILL');
        await within(run.exited.then(() => {}), this.o.killGraceMs);
        const last = toolMessage(plan, run, true);
        return { kind: 'failed', message: `no SOL session after ${Math.round(this.o.openTimeoutMs / 1000)} s${last ? `: ${last}` : ' (is the BMC answering?)'}` };
      }
      if (this.aborted) return { kind: 'failed', message: 'closed while opening' };
      const message = toolMessage(plan, run, false);
      return ACTIVE_ELSEWHERE.test(message) ? { kind: 'busy', message } : { kind: 'failed', message };
    } finally {
      clearTimeout(timer);
      if (this.starting === run) this.starting = undefined;
      if (!run.isReady || run.exit) {
        await within(run.exited.then(() => {}), this.o.killGraceMs);
        run.dispose();
      }
    }
  }

  /** Deactivates SOL at the BMC with a separate tool run. Returns the tool's complaint, if any. */
  private async deactivate(plan: Plan, timeoutMs = this.o.openTimeoutMs): Promise<string | undefined> {
    let run: ToolRun;
    try {
      run = new ToolRun(plan, plan.deactivateArgs, undefined);
    } catch (e) {
      return (e as Error).message;
    }
    try {
      if (!(await within(run.exited.then(() => {}), timeoutMs))) {
        run.signal('SIGKILL');
        await within(run.exited.then(() => {}), this.o.killGraceMs);
        return 'sol deactivate did not finish';
      }
      const msg = toolMessage(plan, run, false);
      return run.exit?.code === 0 && !/error/i.test(msg) ? undefined : msg || undefined;
    } finally {
      run.dispose();
    }
  }

  /** Wires an operational tool run to the events. */
  private up(run: ToolRun, plan: Plan, events: DriverEvents, notice: string): void {
    let done!: () => void;
    const s: Session = {
      run, events, lineStart: true, closing: false, ended: false, done: new Promise((r) => (done = r)), queue: Promise.resolve(),
      filter: new OutputFilter(plan.tool === 'ipmiconsole' ? IPMICONSOLE_EXIT_MARKERS : [], (d) => {
        if (!s.ended && !s.closing) events.onData(d);
      }),
    };
    this.cur = s;
    if (notice) events.onData(Buffer.from(notice, 'latin1'));
    run.attach((d) => s.filter.push(d));
    void run.exited.then(() => {
      const tail = s.filter.end();
      s.monitor?.stop();
      if (this.cur === s) this.cur = undefined;
      const reason = s.closing ? 'closed' : s.dropReason ?? `${this.label}: ${exitReason(plan, run, tail)}`;
      run.dispose();
      if (!s.ended) {
        s.ended = true;
        events.onClose(reason);
      }
      done();
    });
    if (this.o.pingIntervalMs > 0) {
      s.monitor = new PingMonitor(this.cfg.host, this.cfg.port, this.o.pingIntervalMs, this.o.pingMisses, (why) => {
        if (s.closing || s.ended) return;
        s.dropReason = `${this.label}: ${why}; ended ${plan.tool}`;
        run.signal('SIGKILL'); // the BMC is gone: nothing to release there
      });
      s.monitor.start();
    }
  }

  private async finish(run: ToolRun): Promise<void> {
    run.hangUp();
    if (!(await within(run.exited.then(() => {}), this.o.killGraceMs))) run.signal('SIGKILL');
    await within(run.exited.then(() => {}), this.o.killGraceMs);
    run.dispose();
  }

  /** User bytes to tool input that cannot trigger an escape (see the header). */
  private encode(s: Session, data: Buffer): Buffer {
    if (this.cfg.tool === 'ipmiconsole') {
      if (!data.includes(AMP)) return data;
      const out: number[] = [];
      for (const b of data) { out.push(b); if (b === AMP) out.push(AMP); }
      return Buffer.from(out);
    }
    let extra = 0;
    let ls = s.lineStart;
    for (const b of data) { if (ls && b === TILDE) extra++; ls = b === CR || b === LF; }
    if (!extra) { s.lineStart = ls; return data; }
    const out = Buffer.alloc(data.length + extra);
    let j = 0;
    ls = s.lineStart;
    for (const b of data) {
      out[j++] = b;
      if (ls && b === TILDE) out[j++] = TILDE;
      ls = b === CR || b === LF;
    }
    s.lineStart = ls;
    return out;
  }
}

/** K_g for ipmitool's IPMI_KGKEY: text as is, or "0x..." hex decoded. ipmitool copies it with
 *  strncpy (no zero bytes, at most 20 bytes), and node passes environment strings as UTF-8, so
 *  only keys of bytes 1..127 can travel this way. */
function ipmitoolKg(kg: string, label: string): string {
  let bytes: Buffer;
  if (/^0x[0-9a-f]*$/i.test(kg)) {
    const hex = kg.slice(2);
    if (hex.length % 2) throw new Error(`${label}: K_g: odd number of hex digits`);
    bytes = Buffer.from(hex, 'hex');
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--; // zero padding is what the BMC assumes anyway
    bytes = bytes.subarray(0, end);
    if (bytes.some((b) => b === 0 || b > 0x7f)) throw new Error(`${label}: K_g has bytes ipmitool can only take on its command line (-y), which would expose it; use tool: ipmiconsole`);
  } else {
    bytes = Buffer.from(kg, 'utf8');
  }
  if (bytes.length > 20) throw new Error(`${label}: K_g is longer than 20 bytes`);
  return bytes.toString('latin1');
}

/** Lines of the tool's output that say nothing about a failure. */
const NOISE = [
  /^Loading IANA PEN Registry/, /^Running Get VSO Capabilities/, /^Invalid completion code received: Invalid command$/,
  /^Discovered IPMB address/, /^tcsetattr: /, /^Password: ?$/, /^K_g: ?$/, /^\[closing the connection\]$/,
];
const HINTS: [RegExp, string][] = [
  [/RAKP 2 HMAC is invalid/, 'authentication failed (wrong password or K_g?)'],
  [/unauthorized name/, 'authentication failed (unknown user)'],
  [/Get Auth Capabilities error|Get Channel Authentication Capabilities/, 'no answer from the BMC'],
];

/** The tool's own words for why it stopped: its last lines on stderr and (ipmiconsole) stdout. */
function toolMessage(plan: Plan, run: ToolRun, partial: boolean, tail = ''): string {
  const text = `${run.stderr()}\n${run.pre}\n${tail}`;
  const lines = text.split(/\r\n|\r|\n/).map((l) => l.replace(/^>\s*/, '').trim()).filter((l) => l && !NOISE.some((n) => n.test(l)));
  let msg = lines.slice(-2).join('; ');
  let hint = HINTS.find(([re]) => re.test(text))?.[1];
  // FreeIPMI 1.6 parses the port of -h HOST:PORT as a signed 16-bit number.
  if (plan.tool === 'ipmiconsole' && /hostname invalid/.test(text) && plan.port > 32767) hint = `ipmiconsole cannot use ports above 32767`;
  if (hint && msg) msg = `${hint}: ${msg}`;
  if (!msg && !partial && run.exit) msg = `${plan.tool} exited with code ${run.exit.code}${run.exit.signal ? ` (signal ${run.exit.signal})` : ''}`;
  return redact(msg, plan.secret);
}

function exitReason(plan: Plan, run: ToolRun, tail: string): string {
  const code = run.exit ? (run.exit.signal ? `signal ${run.exit.signal}` : `code ${run.exit.code}`) : 'unknown status';
  const msg = toolMessage(plan, run, true, tail);
  return `${plan.tool} ended (${code})${msg ? `: ${msg}` : ''}`;
}

function redact(text: string, secret?: string): string {
  return secret && secret.length >= 4 ? text.split(secret).join('***') : text;
}

/** Passes the tool's output on, minus its own status lines where they can be told apart: the echo
 *  of a break we asked for, and (ipmiconsole) the lines it prints on stdout just before exiting.
 *  A goodbye line is held back until the tool exits (then dropped, and used as the close reason)
 *  or for HOLD_MS (then passed on: it was console data after all). The start of a status line at
 *  the end of a read is held back for at most PARTIAL_MS, waiting for the rest. Nothing is held
 *  back from ipmitool's output except right after a break. */
export class OutputFilter {
  private held: Buffer = Buffer.alloc(0);
  private heldUntil = 0; // when held bytes are passed on at the latest
  private heldKind: 'exit' | 'partial' = 'partial';
  private timer?: NodeJS.Timeout;
  private readonly expects: { text: Buffer; until: number }[] = [];
  private readonly exitMarkers: Buffer[];

  constructor(exitMarkers: string[], private readonly emit: (d: Buffer) => void,
    private readonly holdMs = HOLD_MS, private readonly partialMs = PARTIAL_MS) {
    this.exitMarkers = exitMarkers.map((m) => Buffer.from(m, 'latin1'));
  }

  /** The tool will print `text` once (a break echo): drop it from the output. */
  expect(text: string): void {
    this.expects.push({ text: Buffer.from(text, 'latin1'), until: Date.now() + 5000 });
  }

  push(chunk: Buffer): void {
    const now = Date.now();
    while (this.expects.length && this.expects[0].until < now) this.expects.shift();
    clearTimeout(this.timer);
    this.timer = undefined;
    const wasHeld = this.held.length > 0;
    const buf = wasHeld ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    let start = 0; // first byte not yet passed on
    let i = 0;
    while (i < buf.length) {
      const hit = this.match(buf, i);
      if (!hit) { i++; continue; }
      if (i > start) this.emit(buf.subarray(start, i));
      if (hit.kind === 'echo') { // a break echo: drop it
        this.expects.splice(hit.index, 1);
        i += hit.length;
        start = i;
        continue;
      }
      // A goodbye line, or what may start a status line at the end of this read: hold it.
      // Held bytes that stay held keep their deadline, so steady output cannot keep them back.
      const kind = hit.kind === 'exit' ? 'exit' : 'partial';
      if (!(wasHeld && i === 0 && kind === this.heldKind)) this.heldUntil = now + (kind === 'exit' ? this.holdMs : this.partialMs);
      this.heldKind = kind;
      this.held = Buffer.from(buf.subarray(i));
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.heldUntil - now));
      return;
    }
    if (start < buf.length) this.emit(start ? buf.subarray(start) : buf);
  }

  /** The tool exited: returns (and drops) what was held back, its goodbye lines. */
  end(): string {
    clearTimeout(this.timer);
    this.timer = undefined;
    const text = this.held.toString('latin1');
    this.held = Buffer.alloc(0);
    return text;
  }

  private match(buf: Buffer, i: number): { kind: 'echo' | 'exit' | 'partial'; index: number; length: number } | undefined {
    const b = buf[i];
    const rest = buf.length - i;
    for (let k = 0; k < this.expects.length + this.exitMarkers.length; k++) {
      const isEcho = k < this.expects.length;
      const m = isEcho ? this.expects[k].text : this.exitMarkers[k - this.expects.length];
      if (b !== m[0]) continue;
      const n = Math.min(m.length, rest);
      if (buf.compare(m, 0, n, i, i + n) !== 0) continue;
      if (n < m.length) return { kind: 'partial', index: k, length: n };
      return { kind: isEcho ? 'echo' : 'exit', index: k, length: n };
    }
    return undefined;
  }

  private flush(): void {
    this.timer = undefined;
    if (!this.held.length) return;
    const b = this.held;
    this.held = Buffer.alloc(0);
    this.emit(b);
  }
}

/** RMCP presence ping (ASF): the unauthenticated ping every IPMI LAN interface answers. */
const RMCP_PING = (tag: number) => Buffer.from([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, tag & 0xff, 0x00, 0x00]);
const isPong = (m: Buffer) => m.length >= 12 && m[0] === 0x06 && m[3] === 0x06 && m[8] === 0x40;

/** Pings the BMC every intervalMs; `onDead` once `misses` pings in a row went unanswered. Only
 *  judges a BMC that answered at least once. */
class PingMonitor {
  private sock?: dgram.Socket;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private awaiting = false;
  private answered = false;
  private missed = 0;
  private tag = 0;

  constructor(private readonly host: string, private readonly port: number, private readonly intervalMs: number,
    private readonly misses: number, private readonly onDead: (why: string) => void) {}

  /** Whether the BMC has answered a ping yet (only then do missed pings count). */
  get answeredOnce(): boolean { return this.answered; }

  start(): void {
    void (async () => {
      let address = this.host;
      let family = net.isIP(this.host);
      if (!family) {
        try {
          const r = await dns.lookup(this.host);
          address = r.address;
          family = r.family;
        } catch {
          return; // cannot resolve: leave liveness to the tool
        }
      }
      if (this.stopped) return;
      const sock = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      this.sock = sock;
      sock.on('error', () => { /* ICMP unreachable and the like: the ping just goes unanswered */ });
      sock.on('message', (m) => {
        if (!isPong(m)) return;
        this.awaiting = false;
        this.answered = true;
        this.missed = 0;
      });
      sock.unref();
      sock.connect(this.port, address, () => {
        if (this.stopped) return;
        this.tick();
        this.timer = setInterval(() => this.tick(), this.intervalMs);
        this.timer.unref();
      });
    })();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    try { this.sock?.close(); } catch { /* not yet bound or already closed */ }
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.awaiting && this.answered && ++this.missed >= this.misses) {
      this.stop();
      this.onDead(`BMC stopped answering (no reply to ${this.misses} RMCP pings ${this.intervalMs} ms apart)`);
      return;
    }
    this.awaiting = true;
    this.sock?.send(RMCP_PING(++this.tag), () => { /* errors show as missing pongs */ });
  }
}

/** Sends one RMCP presence ping; resolves true on a pong within timeoutMs (tests, diagnostics). */
export function rmcpPing(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      try { sock.close(); } catch { /* closed */ }
      resolve(ok);
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => { /* unanswered */ });
    sock.on('message', (m) => { if (isPong(m)) finish(true); });
    sock.send(RMCP_PING(1), port, host, (err) => { if (err) finish(false); });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
