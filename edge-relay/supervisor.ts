// Keeps ONE console open forever, attached or not: the spool must see every byte the device emits,
// and a device that went away must come back without anyone asking. On open failure or close it
// reports `down` with the reason and retries with exponential backoff plus jitter (so many relays
// or consoles failing together do not retry in lockstep); the backoff resets once the console has
// stayed up for `resetAfterMs`.
import { EventEmitter } from 'node:events';
import type { ConsoleDriver } from './driver.ts';
import type { ConsoleConfig } from './config.ts';

export interface SupervisorOptions {
  /** First retry delay (ms). */
  minBackoffMs: number;
  /** Retry delay cap (ms). */
  maxBackoffMs: number;
  /** An open that lasted this long (ms) counts as healthy: the next retry starts at minBackoffMs. */
  resetAfterMs: number;
  /** Each delay is randomly moved by up to this fraction either way (kept within min..max). */
  jitter: number;
}

export const SUPERVISOR_DEFAULTS: SupervisorOptions = { minBackoffMs: 500, maxBackoffMs: 30_000, resetAfterMs: 10_000, jitter: 0.2 };

export interface ConsoleStatus {
  state: 'up' | 'down';
  /** When the console entered this state (ms since epoch). */
  since: number;
  /** Why it is down. */
  reason?: string;
}

export interface SupervisorEvents {
  data: [data: Buffer, ts: number];
  state: [status: ConsoleStatus];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly opts: SupervisorOptions;
  private status: ConsoleStatus = { state: 'down', since: Date.now(), reason: 'not started' };
  private running = false;
  private failures = 0; // consecutive failed opens/short-lived opens: the backoff exponent
  private retryTimer?: NodeJS.Timeout;
  private openGen = 0; // which open the driver callbacks belong to
  private size?: { cols: number; rows: number };

  constructor(readonly name: string, readonly cfg: ConsoleConfig, private readonly driver: ConsoleDriver, opts: Partial<SupervisorOptions> = {}) {
    super();
    this.opts = { ...SUPERVISOR_DEFAULTS, ...opts };
  }

  get state(): ConsoleStatus { return { ...this.status }; }
  get type(): string { return this.driver.type; }
  get resizable(): boolean { return this.driver.resizable; }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.attempt();
  }

  /** Closes the console and stops retrying; resolves once the device is released. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.retryTimer);
    this.openGen++; // the close we cause below is not a failure
    await this.driver.close();
    this.setState('down', 'stopped');
  }

  write(data: Buffer): Promise<void> {
    if (this.status.state !== 'up') return Promise.reject(this.downError());
    return this.driver.write(data);
  }

  sendBreak(): Promise<void> {
    if (this.status.state !== 'up') return Promise.reject(this.downError());
    return this.driver.sendBreak();
  }

  /** Remembered, so a console that is reopened gets the viewer's size again. */
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    if (this.status.state === 'up') this.driver.resize(cols, rows);
  }

  private async attempt(): Promise<void> {
    if (!this.running) return;
    const gen = ++this.openGen;
    let upAt = 0;
    try {
      await this.driver.open({
        onData: (data) => { if (gen === this.openGen) this.emit('data', data, Date.now()); },
        onClose: (reason) => {
          if (gen !== this.openGen || !this.running) return;
          if (upAt && Date.now() - upAt >= this.opts.resetAfterMs) this.failures = 0;
          this.retry(reason);
        },
      });
    } catch (e) {
      if (gen === this.openGen && this.running) this.retry((e as Error).message);
      return;
    }
    if (gen !== this.openGen) return; // stopped (stop() closed the driver) or closed while opening
    upAt = Date.now();
    if (this.size && this.driver.resizable) this.driver.resize(this.size.cols, this.size.rows);
    this.setState('up');
  }

  private retry(reason: string): void {
    this.openGen++; // late callbacks of the failed open are ignored
    this.setState('down', reason);
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** this.failures);
    const jittered = base * (1 + this.opts.jitter * (2 * Math.random() - 1));
    const delay = Math.max(this.opts.minBackoffMs, Math.min(this.opts.maxBackoffMs, jittered));
    if (base < this.opts.maxBackoffMs) this.failures++;
    this.retryTimer = setTimeout(() => void this.attempt(), delay);
  }

  private setState(state: 'up' | 'down', reason?: string): void {
    if (this.status.state === state && this.status.reason === reason) return; // retries failing alike
    // A new reason while still down keeps `since`: the console has been down since then.
    const since = this.status.state === state ? this.status.since : Date.now();
    this.status = { state, since, ...(reason !== undefined ? { reason } : {}) };
    this.emit('state', { ...this.status });
  }

  private downError(): Error {
    return new Error(`console ${this.name} is down: ${this.status.reason ?? 'unknown reason'}`);
  }
}
