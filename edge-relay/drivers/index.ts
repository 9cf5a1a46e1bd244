// Picks the driver for a console's type. New console types add a case here and a schema in
// edge-relay/config.ts; the `never` check makes a forgotten case a type error.
import type { ConsoleDriver } from '../driver.ts';
import type { ConsoleConfig } from '../config.ts';
import { SerialDriver } from './serial.ts';
import { ExecDriver } from './exec.ts';

export function createDriver(cfg: ConsoleConfig): ConsoleDriver {
  switch (cfg.type) {
    case 'serial': return new SerialDriver(cfg);
    case 'exec': return new ExecDriver(cfg);
    default: {
      const unknown: never = cfg;
      throw new Error(`unknown console type ${(unknown as { type: string }).type}`);
    }
  }
}
