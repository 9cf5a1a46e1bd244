// systemd's notify protocol (sd_notify(3)) for `cloudcons relay` and `cloudcons cloud` run as
// Type=notify services: READY=1 (with MAINPID and STATUS), STOPPING=1, WATCHDOG=1, RELOADING=1.
//
// The protocol is one AF_UNIX datagram per message to $NOTIFY_SOCKET. Node has no unix datagram
// sockets (dgram is UDP only, net is stream only: connect() to a SOCK_DGRAM socket is EPROTOTYPE)
// and a native addon (the npm `sd-notify` package) would need a compiler or prebuilds per arch. So
// each message is handed to systemd-notify(1), which ships with systemd itself (every box that sets
// NOTIFY_SOCKET has it) and runs under the bundled runtime as well as a system Node.
// Its process is a child of ours, not the main PID: the unit needs NotifyAccess=all, and systemd
// attributes a message to the unit by the sender's cgroup, which it can only look up while the
// sender lives. systemd-notify >= 246 waits until systemd processed its messages (BARRIER=1 with a
// pipe systemd closes, sd_notify_barrier(3)) before it exits, so nothing races. (Older systemd:
// run the units as Type=simple with a drop-in.) MAINPID=<our pid> rides with READY=1 so the main
// PID is this process even when ExecStart is a wrapper that forks instead of exec'ing.
//
// Messages go out one at a time, in order (READY before STOPPING). A failure (no systemd-notify,
// nobody listening) is logged once and never ends the process: the service then just looks like
// it never became ready, which systemd reports itself.
import { spawn } from 'node:child_process';

/** What a service tells systemd. Every method is a no-op without $NOTIFY_SOCKET. */
export interface SdNotifier {
  /** $NOTIFY_SOCKET was set: messages go somewhere. */
  readonly enabled: boolean;
  /** The watchdog ping interval (WATCHDOG_USEC/2, ms), or undefined when systemd set no watchdog
   *  for this process. */
  readonly watchdogMs?: number;
  /** Sends `KEY=VALUE` assignments as one message; resolves once sent (or failed: never rejects). */
  send(...assignments: string[]): Promise<void>;
  /** READY=1 with MAINPID=<this process> (and STATUS=): start-up done, or a reload done. */
  ready(status?: string): Promise<void>;
  /** STATUS=: one line `systemctl status` shows. */
  status(text: string): Promise<void>;
  /** RELOADING=1 with MONOTONIC_USEC (as Type=notify-reload wants it): a reload began; READY=1
   *  must follow when it is done (or failed and the old config stays). */
  reloading(status?: string): Promise<void>;
  /** STOPPING=1: the process is on its way out. Also stops the watchdog pings. */
  stopping(status?: string): Promise<void>;
  /** Stops the watchdog pings (for tests and a process that keeps running without systemd). */
  close(): void;
}

export interface SdNotifyOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID come from. */
  env: NodeJS.ProcessEnv;
  /** Gets one line when a message could not be sent (the first time only). */
  log: (line: string) => void;
  /** The helper that sends a message (default systemd-notify, found on PATH). */
  command?: string;
  /** Longest wait for one helper run before it is killed (default 10 s; systemd-notify's own
   *  wait for systemd is 5 s). */
  timeoutMs?: number;
  /** This process's PID (what WATCHDOG_PID must be and MAINPID says). */
  pid?: number;
}

/** A value is one line: a newline would start another assignment. */
const oneLine = (s: string): string => s.replace(/[\x00-\x1f\x7f]+/g, ' ');

export function createSdNotifier(o: SdNotifyOptions): SdNotifier {
  const socket = o.env.NOTIFY_SOCKET || undefined;
  const pid = o.pid ?? process.pid;
  const command = o.command ?? 'systemd-notify';
  const timeoutMs = o.timeoutMs ?? 10_000;
  // sd_watchdog_enabled(3): on when WATCHDOG_USEC is set and WATCHDOG_PID is absent or ours (a
  // wrapper that forked leaves its own PID there: the watchdog is then not ours to feed).
  const usec = Number(o.env.WATCHDOG_USEC);
  const wpid = o.env.WATCHDOG_PID;
  const watchdogMs = socket && Number.isFinite(usec) && usec > 0 && (!wpid || Number(wpid) === pid) ? Math.max(1, Math.floor(usec / 2000)) : undefined;
  let warned = false;
  let chain: Promise<void> = Promise.resolve();
  const fail = (why: string) => {
    if (warned) return;
    warned = true;
    o.log(`systemd notify (NOTIFY_SOCKET=${socket}): ${why}; the service manager may think this service never started or hangs (further failures are not logged)`);
  };
  const run = (assignments: string[]) => new Promise<void>((resolve) => {
    let stderr = '';
    let done = false;
    const finish = (why?: string) => { if (done) return; done = true; clearTimeout(timer); if (why) fail(why); resolve(); };
    // NOTIFY_SOCKET is not in our environment any more (systemd() took it out, so consoles'
    // processes do not inherit it): the helper gets it explicitly.
    const child = spawn(command, ['--', ...assignments], { env: { ...o.env, NOTIFY_SOCKET: socket }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 1000) stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); finish(`${command} did not finish within ${timeoutMs} ms`); }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ENOENT' ? `${command} not found on PATH (it comes with systemd)` : `cannot run ${command}: ${e.message}`));
    child.on('close', (code, signal) => finish(code === 0 ? undefined : `${command} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderr.trim() ? `: ${oneLine(stderr.trim())}` : ''}`));
  });
  const send = (...assignments: string[]): Promise<void> => {
    if (!socket || !assignments.length) return Promise.resolve();
    const msg = assignments.map((a) => { const i = a.indexOf('='); return a.slice(0, i + 1) + oneLine(a.slice(i + 1)); });
    chain = chain.then(() => run(msg));
    return chain;
  };
  let pinging = false;
  const timer = watchdogMs === undefined ? undefined : setInterval(() => {
    if (pinging) return; // the last ping is still on its way: do not queue them up
    pinging = true;
    void send('WATCHDOG=1').then(() => { pinging = false; });
  }, watchdogMs);
  timer?.unref();
  const close = () => clearInterval(timer);
  const withStatus = (a: string[], status?: string) => (status === undefined ? a : [...a, `STATUS=${status}`]);
  return {
    enabled: !!socket,
    watchdogMs,
    send,
    ready: (status) => send(...withStatus(['READY=1', `MAINPID=${pid}`], status)),
    status: (text) => send(`STATUS=${text}`),
    // CLOCK_MONOTONIC in microseconds: libuv's hrtime reads that clock on Linux.
    reloading: (status) => send(...withStatus(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`], status)),
    stopping: (status) => { close(); return send(...withStatus(['STOPPING=1'], status)); },
    close,
  };
}

let shared: SdNotifier | undefined;
/** This process's notifier, made on first use from process.env, which then loses NOTIFY_SOCKET,
 *  WATCHDOG_USEC and WATCHDOG_PID (sd_notify's unset_environment): a console's program (an exec
 *  console's shell, an initcmd) must not inherit them and speak for this service. `log` is used
 *  by the first call only. */
export function systemd(log: (line: string) => void = (l) => console.error(l)): SdNotifier {
  if (shared) return shared;
  shared = createSdNotifier({ env: { ...process.env }, log });
  delete process.env.NOTIFY_SOCKET;
  delete process.env.WATCHDOG_USEC;
  delete process.env.WATCHDOG_PID;
  return shared;
}
