// SIGHUP reloads for `cloudcons relay` and `cloudcons cloud`: one at a time, and a signal that
// arrives while one runs makes exactly one more run after it (ten HUPs in a second are two
// reloads, and the last one reads the files as they are after the last signal: nothing is lost).
//
// Hooks: `onReload(start, done)` registers what runs when a reload starts and when it has ended
// (applied or refused) - the place for sd_notify's RELOADING=1 / READY=1, or for applying a log
// level read with the config (`done` gets the reload's outcome).

/** How a reload ended: `ok` false when it was refused (nothing changed); `detail` is its log line;
 *  `data`: what the command read (the relay: its config; run-relay.ts RelayReloaded). */
export interface ReloadOutcome<T = unknown> { ok: boolean; detail: string; data?: T }

export class Reloader<T = unknown> {
  private running?: Promise<void>;
  private again = false;
  private readonly hooks: { start?: () => void; done?: (r: ReloadOutcome<T>) => void }[] = [];

  /** `run` does one reload and says how it ended; it should not throw (a throw counts as refused). */
  constructor(private readonly run: () => Promise<ReloadOutcome<T>>, private readonly log: (line: string) => void) {}

  /** Registers hooks called around every reload: `start` before it reads anything, `done` after it
   *  ended (also when refused). A hook that throws is logged and does not stop the reload. */
  onReload(start?: () => void, done?: (r: ReloadOutcome<T>) => void): void { this.hooks.push({ start, done }); }

  /** Asks for a reload (SIGHUP): starts one now, or one more after the one running. Resolves when
   *  the reload this request caused (or joined) has ended. */
  request(): Promise<void> {
    if (this.running) { this.again = true; return this.running; }
    const loop = async () => {
      do {
        this.again = false;
        this.call((h) => h.start?.());
        let r: ReloadOutcome<T>;
        try { r = await this.run(); } catch (e) { r = { ok: false, detail: `reload failed: ${(e as Error).message}` }; }
        this.log(r.detail);
        this.call((h) => h.done?.(r));
      } while (this.again);
      this.running = undefined;
    };
    this.running = loop();
    return this.running;
  }

  /** SIGHUP requests a reload (instead of ending the process, Node's default for it). */
  onSighup(): this {
    process.on('SIGHUP', () => { void this.request(); });
    return this;
  }

  private call(f: (h: Reloader<T>['hooks'][number]) => void): void {
    for (const h of this.hooks) { try { f(h); } catch (e) { this.log(`reload hook: ${(e as Error).message}`); } }
  }
}
