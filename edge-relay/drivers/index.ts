// Picks the driver for a console's type. New console types add a case here and a schema in
// edge-relay/config.ts; the `never` check makes a forgotten case a type error.
import type { ConsoleDriver } from '../driver.ts';
import type { ConsoleConfig } from '../config.ts';
import { SerialDriver } from './serial.ts';
import { ExecDriver } from './exec.ts';
import { TcpDriver, UdsDriver } from './socket.ts';
import { TelnetDriver } from './telnet.ts';
import { SshDriver } from './ssh.ts';
import { IpmiDriver } from './ipmi.ts';

export function createDriver(cfg: ConsoleConfig): ConsoleDriver {
  switch (cfg.type) {
    case 'serial': return new SerialDriver(cfg);
    case 'exec': return new ExecDriver(cfg);
    case 'tcp': return new TcpDriver(cfg);
    case 'uds': return new UdsDriver(cfg);
    case 'telnet': return new TelnetDriver(cfg);
    case 'ssh': return new SshDriver(cfg);
    case 'ipmi': return new IpmiDriver(cfg, { pingIntervalMs: cfg.pingIntervalMs, pingMisses: cfg.pingMisses, openTimeoutMs: cfg.openTimeoutMs });
    default: {
      const unknown: never = cfg;
      throw new Error(`unknown console type ${(unknown as { type: string }).type}`);
    }
  }
}
