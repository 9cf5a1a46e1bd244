// The console driver port. Every console type (serial, exec, and later telnet, tcp, ssh, ipmi, uds)
// implements ConsoleDriver; the supervisor (edge-relay/supervisor.ts) owns reopening with backoff,
// so a driver only opens once and reports how it ended.

export interface DriverEvents {
  /** Bytes read from the device, in order. Never called after `onClose`. */
  onData(data: Buffer): void;
  /** The device closed or failed (unplugged, process exited, read error). Called at most once per
   *  open, also when `close()` was called by the supervisor (then `reason` is 'closed'). */
  onClose(reason: string): void;
}

export interface ConsoleDriver {
  /** Console type name as in the relay config (`serial`, `exec`, ...). */
  readonly type: string;
  /** True if `resize` changes the device's terminal size (pty-backed consoles). */
  readonly resizable: boolean;
  /** Opens the device. Resolves once it is readable and writable; rejects with an Error whose
   *  message says what failed (e.g. "open /dev/ttyUSB0: no such file"). Calling it while open is
   *  an error. After a close it may be called again to reopen. */
  open(events: DriverEvents): Promise<void>;
  /** Writes bytes to the device. Resolves when handed to the OS; rejects if the device is closed. */
  write(data: Buffer): Promise<void>;
  /** Sends a serial BREAK (or the nearest equivalent). Rejects with a clear message if the console
   *  type has none. */
  sendBreak(): Promise<void>;
  /** Changes the terminal size where supported; a no-op otherwise. */
  resize(cols: number, rows: number): void;
  /** Closes the device. Safe to call repeatedly and when not open; resolves when released. */
  close(): Promise<void>;
  /** Optional: calls `hint` when the device may have come back (a device node reappeared), so a
   *  down console is retried at once rather than after its backoff. Returns an unsubscribe. */
  watchReady?(hint: () => void): () => void;
}
