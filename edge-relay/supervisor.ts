// Keeps ONE console open forever, attached or not: the spool must see every byte the device emits,
// and a device that went away must come back without anyone asking. On open failure or close it
// reports `down` with the reason and retries with exponential backoff plus jitter (so many relays
// or consoles failing together do not retry in lockstep); the backoff resets once the console has
// stayed up for `resetAfterMs`. A driver that can tell when its device may be back (a serial
// device node reappearing) makes the supervisor retry at once instead of sleeping out the backoff.
//
// Around that, the conserver-style per-console behaviour (options in edge-relay/config.ts):
// - ondemand: open only while someone watches (setDemand), close LINGER_MS after the last leaves;
// - flap protection: a console that went down `flapMax` times within `flapWindowMs` is held down
//   for `flapHoldMs`, and says so (conserver's initspinmax/initspintimer);
// - manual down/up (adminDown/adminUp: `cloudcons console down NAME`);
// - initcmd: a shell command run each time the console comes up, wired to it (console output on
//   its stdin, its stdout to the console), killed after initcmdTimeout;
// - idleTimeout/idleString: after that long without traffic either way, the idle string is sent;
// - break sequences 1-9 a-z (breaks.ts), `0` being the console's own `break`.
// Lifecycle events (initcmd started/ended, idle string sent, flapping, breaks) are emitted as
// `event` for the relay to pass to the cloud's audit trail.
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import type { ConsoleDriver } from './driver.ts';
import { RELAY_CONFIG_DEFAULTS, type BreakDef, type ConsoleConfig } from './config.ts';
import { breakTable, parseBreakString, runBreak } from './breaks.ts';
import { outputClock } from './test-clock.ts';

export interface SupervisorOptions {
  /** First retry delay (ms). */
  minBackoffMs: number;
  /** Retry delay cap (ms). */
  maxBackoffMs: number;
  /** An open that lasted this long (ms) counts as healthy: the next retry starts at minBackoffMs. */
  resetAfterMs: number;
  /** Each delay is randomly moved by up to this fraction either way (kept within min..max). */
  jitter: number;
  /** Going down this many times within flapWindowMs holds the console down for flapHoldMs. */
  flapMax: number;
  flapWindowMs: number;
  flapHoldMs: number;
  /** An ondemand console closes this long after its last viewer left (ms): a viewer that
   *  reconnects at once does not reopen the device. */
  lingerMs: number;
  /** Break sequences defined in the relay config (over conserver's built-in 1-4). */
  breaks?: Record<string, BreakDef>;
}

export const SUPERVISOR_DEFAULTS: SupervisorOptions = {
  minBackoffMs: 500, maxBackoffMs: 30_000, resetAfterMs: 10_000, jitter: 0.2,
  flapMax: 5, flapWindowMs: 60_000, flapHoldMs: 300_000, lingerMs: 5000,
};

export interface ConsoleStatus {
  state: 'up' | 'down';
  /** When the console entered this state (ms since epoch). */
  since: number;
  /** Why it is down. */
  reason?: string;
}

/** Something worth an audit record: `what` is initcmd.start, initcmd.end, idle, flapping,
 *  manual.down, manual.up. */
export interface ConsoleEvent { what: string; detail: string }

export interface SupervisorEvents {
  data: [data: Buffer, ts: number];
  state: [status: ConsoleStatus];
  event: [ev: ConsoleEvent];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly opts: SupervisorOptions;
  private status: ConsoleStatus = { state: 'down', since: Date.now(), reason: 'not started' };
  private running = false;
  private failures = 0; // consecutive failed opens/short-lived opens: the backoff exponent
  private retryTimer?: NodeJS.Timeout;
  private openGen = 0; // which open the driver callbacks belong to
  private size?: { cols: number; rows: number };
  /** Wanted open: started, not held down by hand or for flapping, and (ondemand) watched. */
  private demand = false;
  private heldBy?: string; // manual down: who
  private flapUntil = 0; // held down for flapping until then
  private readonly downs: number[] = []; // when the console went down lately (flap detection)
  private lingerTimer?: NodeJS.Timeout;
  private flapTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private lastTraffic = 0;
  private init?: ChildProcess;
  private readonly breaks: Map<string, BreakDef>;
  private cycle = Promise.resolve(); // serialises closing on demand changes
  private opening = false; // an open is in flight
  private unwatch?: () => void; // stops the driver's readiness watch
  private hinted = false; // the device hinted it may be back while an open was in flight

  constructor(readonly name: string, readonly cfg: ConsoleConfig, private readonly driver: ConsoleDriver, opts: Partial<SupervisorOptions> = {}) {
    super();
    this.opts = { ...SUPERVISOR_DEFAULTS, ...opts };
    this.breaks = breakTable(this.opts.breaks, cfg.breaklist);
  }

  get state(): ConsoleStatus { return { ...this.status }; }
  get type(): string { return this.driver.type; }
  get resizable(): boolean { return this.driver.resizable; }
  get ondemand(): boolean { return !!this.cfg.ondemand; }
  /** The break sequences this console offers, for ^Ecl? (`0` is `defaultBreak`). */
  get breakList(): { id: string; def: BreakDef }[] { return [...this.breaks].map(([id, def]) => ({ id, def })); }
  get defaultBreak(): string { return this.cfg.break ?? RELAY_CONFIG_DEFAULTS.defaultBreak; }

  /** Who took it down by hand (`cloudcons console down`), while that stands. */
  get heldDownBy(): string | undefined { return this.heldBy; }

  /** `heldBy`: starts taken down by hand, as the supervisor it replaces was (a reload that
   *  reopened the console with new settings keeps a `console down`). */
  start(heldBy?: string): void {
    if (this.running) return;
    this.running = true;
    if (heldBy) { this.heldBy = heldBy; this.setState('down', `down by ${heldBy} (cloudcons console up ${this.name} brings it back)`); return; }
    if (this.cfg.ondemand && !this.demand) { this.setState('down', IDLE_ONDEMAND); return; }
    void this.attempt();
  }

  /** Closes the console and stops retrying; resolves once the device is released. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.clearTimers();
    await this.release('stopped');
  }

  /** Ondemand consoles: someone watches (open now) or nobody does (close after lingerMs). */
  setDemand(on: boolean): void {
    if (!this.cfg.ondemand || on === this.demand) { if (on) clearTimeout(this.lingerTimer); return; }
    this.demand = on;
    clearTimeout(this.lingerTimer);
    if (!this.running || this.heldBy) return;
    if (on) {
      if (this.status.state === 'down' && !this.retryTimer) {
        // Input typed before it is up is refused; say it is on its way rather than idle.
        if (this.status.reason === IDLE_ONDEMAND) this.setState('down', OPENING_ONDEMAND);
        void this.attempt();
      }
      return;
    }
    this.lingerTimer = setTimeout(() => {
      if (this.demand || !this.running) return;
      this.cycle = this.cycle.then(() => this.release(IDLE_ONDEMAND));
    }, this.opts.lingerMs);
  }

  /** Manual down (`cloudcons console down`): closed until adminUp, whatever else happens. */
  async adminDown(by: string): Promise<void> {
    this.heldBy = by;
    this.clearTimers();
    await this.release(`down by ${by} (cloudcons console up ${this.name} brings it back)`);
    this.emit('event', { what: 'manual.down', detail: `console taken down by ${by}` });
    // Brought up while it was closing: adminUp saw it still up and left it; open it now.
    if (this.wanted() && this.status.state !== 'up' && !this.retryTimer) void this.attempt();
  }

  /** Manual up: also ends a flap hold and retries a failing console at once. */
  adminUp(by: string): void {
    const was = this.heldBy ? `down by ${this.heldBy}` : this.flapUntil > Date.now() ? 'flap hold' : undefined;
    this.heldBy = undefined;
    this.flapUntil = 0;
    this.downs.length = 0;
    this.failures = 0;
    clearTimeout(this.flapTimer);
    if (!this.running) return;
    this.emit('event', { what: 'manual.up', detail: `console brought up by ${by}${was ? ` (was: ${was})` : ''}` });
    if (this.status.state === 'up') return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.cfg.ondemand && !this.demand) { this.setState('down', IDLE_ONDEMAND); return; }
    void this.attempt();
  }

  write(data: Buffer): Promise<void> {
    if (this.status.state !== 'up') return Promise.reject(this.downError());
    this.lastTraffic = Date.now();
    return this.driver.write(data);
  }

  sendBreak(): Promise<void> {
    if (this.status.state !== 'up') return Promise.reject(this.downError());
    return this.driver.sendBreak();
  }

  /** Sends break sequence `id` (0-9 a-z; 0 is the console's default). Rejects saying which exist. */
  async sendBreakSequence(id: string): Promise<void> {
    const slot = id === '0' ? this.defaultBreak : id;
    const def = this.breaks.get(slot);
    if (!def) throw new Error(`no break sequence ${slot} on console ${this.name} (there are: ${[...this.breaks.keys()].join(' ') || 'none'})`);
    if (this.status.state !== 'up') throw this.downError();
    await runBreak(parseBreakString(def.string), { write: (d) => this.write(d), sendBreak: () => this.sendBreak() }, def.delayMs ?? this.cfg.breakDelayMs);
  }

  /** Remembered, so a console that is reopened gets the viewer's size again. */
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    if (this.status.state === 'up') this.driver.resize(cols, rows);
  }

  /** Whether the console should be open now. */
  private wanted(): boolean {
    return this.running && !this.heldBy && this.flapUntil <= Date.now() && (!this.cfg.ondemand || this.demand);
  }

  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    if (!this.wanted() || this.opening) return;
    this.opening = true;
    const gen = ++this.openGen;
    let upAt = 0;
    try {
      await this.driver.open({
        onData: (data) => {
          if (gen !== this.openGen) return;
          this.lastTraffic = Date.now();
          this.init?.stdin?.write(data);
          this.emit('data', data, outputClock());
        },
        onClose: (reason) => {
          if (gen !== this.openGen || !this.running) return;
          if (upAt && Date.now() - upAt >= this.opts.resetAfterMs) this.failures = 0;
          this.stopInit();
          this.retry(reason, !!upAt);
        },
      });
    } catch (e) {
      this.opening = false;
      if (gen === this.openGen && this.running) this.retry((e as Error).message, false);
      else if (this.wanted() && this.status.state !== 'up' && !this.retryTimer) void this.attempt(); // wanted again meanwhile
      return;
    }
    if (gen !== this.openGen || !this.wanted()) {
      // Stopped, taken down or no longer demanded while opening: the close asked for then found
      // nothing open yet, so close what this open made.
      this.openGen++;
      await this.driver.close();
      this.opening = false;
      if (this.wanted() && this.status.state !== 'up' && !this.retryTimer) void this.attempt();
      return;
    }
    this.opening = false;
    this.unwatch?.();
    this.unwatch = undefined;
    upAt = Date.now();
    this.lastTraffic = upAt;
    if (this.size && this.driver.resizable) this.driver.resize(this.size.cols, this.size.rows);
    this.setState('up');
    this.armIdle();
    if (this.cfg.initcmd) this.runInit(this.cfg.initcmd, gen);
  }

  private retry(reason: string, wasUp: boolean): void {
    this.openGen++; // late callbacks of the failed open are ignored
    clearTimeout(this.idleTimer);
    if (wasUp && this.flapped()) return;
    this.setState('down', reason, true);
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** this.failures);
    const jittered = base * (1 + this.opts.jitter * (2 * Math.random() - 1));
    const delay = Math.max(this.opts.minBackoffMs, Math.min(this.opts.maxBackoffMs, jittered));
    if (base < this.opts.maxBackoffMs) this.failures++;
    // A hint that came while the failed open was in flight is for a device that may be back now.
    this.retryTimer = setTimeout(() => void this.attempt(), this.hinted ? READY_SETTLE_MS : delay);
    this.hinted = false;
    // The device may say when it is back (a serial node reappearing): retry then, not later.
    this.unwatch ??= this.driver.watchReady?.(() => {
      if (!this.wanted()) return;
      if (this.opening) { this.hinted = true; return; }
      if (!this.retryTimer) return;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.attempt(), READY_SETTLE_MS);
    });
  }

  /** Records a fall from up; true if that makes the console a flapper, now held down. */
  private flapped(): boolean {
    const now = Date.now();
    this.downs.push(now);
    while (this.downs.length && this.downs[0] < now - this.opts.flapWindowMs) this.downs.shift();
    if (this.downs.length < this.opts.flapMax) return false;
    this.downs.length = 0;
    this.flapUntil = now + this.opts.flapHoldMs;
    const until = new Date(this.flapUntil).toISOString().slice(11, 19);
    const why = `flapping: went down ${this.opts.flapMax} times within ${Math.round(this.opts.flapWindowMs / 1000)} s; held down until ${until} UTC (cloudcons console up ${this.name} retries now)`;
    this.setState('down', why, true);
    this.emit('event', { what: 'flapping', detail: why });
    this.flapTimer = setTimeout(() => { this.flapUntil = 0; this.failures = 0; void this.attempt(); }, this.opts.flapHoldMs);
    return true;
  }

  /** Closes the device on purpose (stop, manual down, ondemand idle) and says why. */
  private async release(reason: string): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    clearTimeout(this.idleTimer);
    this.stopInit();
    this.openGen++; // the close we cause below is not a failure
    await this.driver.close();
    this.setState('down', reason);
  }

  private clearTimers(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    for (const t of [this.retryTimer, this.lingerTimer, this.flapTimer, this.idleTimer]) clearTimeout(t);
    this.retryTimer = undefined;
  }

  /** Idle keep-alive: after idleTimeout without traffic either way, send idleString. */
  private armIdle(): void {
    const ms = this.cfg.idleTimeout;
    if (!ms) return;
    clearTimeout(this.idleTimer);
    const due = this.lastTraffic + ms - Date.now();
    this.idleTimer = setTimeout(() => {
      if (this.status.state !== 'up') return;
      if (Date.now() - this.lastTraffic >= ms) {
        const str = this.cfg.idleString ?? RELAY_CONFIG_DEFAULTS.idleString;
        runBreak(parseBreakString(str), { write: (d) => this.write(d), sendBreak: () => this.sendBreak() }, this.cfg.breakDelayMs)
          .then(() => this.emit('event', { what: 'idle', detail: `idle for ${Math.round(ms / 1000)} s: sent ${JSON.stringify(str)}` }), () => { /* went down meanwhile */ });
        this.lastTraffic = Date.now();
      }
      this.armIdle();
    }, Math.max(10, due));
  }

  /** Runs the initcmd wired to the console: its stdin gets the console's output, its stdout goes
   *  to the console. Its stderr and exit go to the audit trail via `event`. */
  private runInit(cmd: string, gen: number): void {
    const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, CLOUDCONS_CONSOLE: this.name } });
    this.init = child;
    let err = '';
    const limit = this.cfg.initcmdTimeout ?? RELAY_CONFIG_DEFAULTS.initcmdTimeoutMs;
    const timer = setTimeout(() => { err += `killed after ${limit} ms`; child.kill('SIGKILL'); }, limit);
    child.stdin!.on('error', () => { /* it may exit without reading */ });
    child.stdout!.on('data', (d: Buffer) => { if (gen === this.openGen) this.write(d).catch(() => {}); });
    child.stderr!.on('data', (d: Buffer) => { if (err.length < 512) err += d.toString(); });
    this.emit('event', { what: 'initcmd.start', detail: `initcmd started (pid ${child.pid}): ${cmd}` });
    child.on('error', (e) => { err += e.message; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (this.init === child) this.init = undefined;
      const how = signal ? `killed by ${signal}` : `exit ${code}`;
      this.emit('event', { what: 'initcmd.end', detail: `initcmd ended (${how})${err.trim() ? `: ${err.trim().slice(0, 400)}` : ''}` });
    });
  }

  private stopInit(): void {
    const c = this.init;
    this.init = undefined;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  }

  /** `failed`: down by a failure (open refused, device gone, flapping), not on purpose. */
  private setState(state: 'up' | 'down', reason?: string, failed = false): void {
    if (this.status.state === state && this.status.reason === reason) return; // retries failing alike
    // A new reason while still down keeps `since`: the console has been down since then.
    const since = this.status.state === state ? this.status.since : Date.now();
    this.status = { state, since, ...(reason !== undefined ? { reason } : {}) };
    this.emit('state', { ...this.status, ...(failed ? { failed } : {}) });
  }

  private downError(): Error {
    if (this.status.reason === IDLE_ONDEMAND) return new Error(`console ${this.name} is closed until someone attaches (ondemand)`);
    if (this.status.reason === OPENING_ONDEMAND) return new Error(`console ${this.name} is still opening (ondemand); try again once it is up`);
    return new Error(`console ${this.name} is down: ${this.status.reason ?? 'unknown reason'}`);
  }
}

/** After a readiness hint, wait this long before opening (ms): udev creates the node, then sets
 *  its permissions and links; socat makes the pty, then the link. */
const READY_SETTLE_MS = 50;
const IDLE_ONDEMAND = 'idle (ondemand: opens when someone attaches)';
const OPENING_ONDEMAND = 'opening (ondemand: someone attached)';
