// A simulated BMC for IPMI SOL tests and benchmarks: OpenIPMI's ipmi_sim on 127.0.0.1 (a free UDP
// port), its SOL wired to one end of a socat pty pair while the caller holds the other end as the
// host's serial port (the set-up of ../shared/peers/run-ipmi-sol.sh; fixtures in
// test/fixtures/ipmi/), or to a TCP server of the caller (`sol "telnet:..."`) to see BREAKs.
// Everything it starts is stopped by stop(), by PID.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import { rmcpPing } from '../edge-relay/drivers/ipmi.ts';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/ipmi');
export const USER = 'cloudcons';
export const PASSWORD = 'Cc-s3cret-42'; // user 3 in lan.conf.in

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A free UDP port below 32768: ipmiconsole (FreeIPMI 1.6) rejects higher ones as "hostname
 *  invalid", and the kernel's ephemeral ports (bind to 0) start at 32768. */
export async function freeUdpPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.on('error', () => { s.close(); resolve(false); });
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** A simulated BMC plus the host side of its SOL ("the serial port of the server"). */
export class Bmc {
  port = 0;
  readonly dir: string;
  /** Bytes the host's serial port received (what was typed into the console). */
  rx = Buffer.alloc(0);
  /** Where in `rx` a BREAK arrived (telnet kind only). */
  breaks: number[] = [];
  private sim?: ChildProcess;
  private socat?: ChildProcess;
  private hostIn?: tty.ReadStream;
  private hostOut?: number;
  private server?: net.Server;
  private conn?: net.Socket;
  private readonly solName = `sol-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private telnetState = 0;

  private constructor(readonly kind: 'pty' | 'telnet') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipmi-test-'));
  }

  /** Starts a BMC; the caller stops it (stop()). */
  static async start(kind: 'pty' | 'telnet' = 'pty'): Promise<Bmc> {
    const b = new Bmc(kind);
    b.port = await freeUdpPort();
    let solDev: string;
    if (kind === 'pty') {
      const host = path.join(b.dir, 'host');
      solDev = path.join(b.dir, b.solName);
      b.socat = spawn('socat', [`pty,raw,echo=0,link=${host}`, `pty,raw,echo=0,link=${solDev}`], { stdio: 'ignore' });
      await until('socat ptys', () => fs.existsSync(host) && fs.existsSync(solDev), 5000);
      b.hostIn = new tty.ReadStream(fs.openSync(host, fs.constants.O_RDWR | fs.constants.O_NOCTTY));
      b.hostIn.on('data', (d: Buffer) => { b.rx = Buffer.concat([b.rx, d]); });
      b.hostOut = fs.openSync(host, fs.constants.O_RDWR | fs.constants.O_NOCTTY); // writes go through the threadpool: never block the loop
    } else {
      b.server = net.createServer((c) => {
        b.conn?.destroy();
        b.conn = c;
        c.on('data', (d: Buffer) => b.telnetIn(d));
        c.on('error', () => {});
      });
      await new Promise<void>((r) => b.server!.listen(0, '127.0.0.1', () => r()));
      solDev = `telnet:127.0.0.1:${(b.server.address() as net.AddressInfo).port}`;
    }
    const conf = fs.readFileSync(path.join(FIXTURES, 'lan.conf.in'), 'utf8').replaceAll('@PORT@', String(b.port)).replaceAll('@SOLDEV@', solDev);
    fs.writeFileSync(path.join(b.dir, 'lan.conf'), conf);
    fs.mkdirSync(path.join(b.dir, 'state'));
    await b.startSim();
    return b;
  }

  /** Starts (or restarts) ipmi_sim and waits until it answers. */
  async startSim(): Promise<void> {
    const log = fs.openSync(path.join(this.dir, 'sim.log'), 'a');
    this.sim = spawn('ipmi_sim', ['-n', '-c', path.join(this.dir, 'lan.conf'), '-f', path.join(FIXTURES, 'ccsim.emu'), '-s', path.join(this.dir, 'state')],
      { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const end = Date.now() + 10_000;
    while (!(await rmcpPing('127.0.0.1', this.port, 200))) {
      if (Date.now() > end || this.sim.exitCode !== null) throw new Error(`ipmi_sim did not come up: ${fs.readFileSync(path.join(this.dir, 'sim.log'), 'utf8')}`);
    }
    if (this.kind === 'telnet') await until('ipmi_sim to connect its SOL', () => !!this.conn && !this.conn.destroyed, 5000);
  }

  /** The BMC dies (SIGKILL, no goodbye to anyone). */
  async killSim(): Promise<void> {
    const sim = this.sim;
    if (!sim) return;
    this.sim = undefined;
    sim.kill('SIGKILL');
    await exited(sim);
    fs.rmSync(`/var/lock/LCK..${this.solName}`, { force: true }); // ipmi_sim's UUCP lock on the SOL pty
  }

  /** The host writes to its serial port. */
  hostWrite(data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.kind === 'telnet') {
      const out: number[] = [];
      for (const b of buf) { out.push(b); if (b === 0xff) out.push(0xff); }
      return new Promise((r) => this.conn!.write(Buffer.from(out), () => r()));
    }
    return new Promise((resolve, reject) => fs.write(this.hostOut!, buf, 0, buf.length, null, (e) => (e ? reject(e) : resolve())));
  }

  rxText(): string { return this.rx.toString('latin1'); }

  /** ipmitool run separately against this BMC (password from the environment). */
  ipmitool(args: string[], user = USER, password = PASSWORD): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      execFile('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(this.port), '-U', user, '-E', '-C', '3', ...args],
        { env: { ...process.env, IPMI_PASSWORD: password }, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }));
    });
  }

  async stop(): Promise<void> {
    await this.killSim();
    this.hostIn?.destroy();
    if (this.hostOut !== undefined) fs.closeSync(this.hostOut);
    this.hostOut = undefined;
    if (this.socat && this.socat.exitCode === null) { this.socat.kill(); await exited(this.socat); }
    this.conn?.destroy();
    this.server?.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Telnet from ipmi_sim: IAC IAC is a 0xff byte, IAC BREAK a break; option talk is skipped. */
  private telnetIn(d: Buffer): void {
    const out: number[] = [];
    for (const b of d) {
      switch (this.telnetState) {
        case 0: if (b === 0xff) this.telnetState = 1; else out.push(b); break;
        case 1:
          this.telnetState = 0;
          if (b === 0xff) out.push(b);
          else if (b === 243) { this.rx = Buffer.concat([this.rx, Buffer.from(out)]); out.length = 0; this.breaks.push(this.rx.length); }
          else if (b >= 251 && b <= 254) this.telnetState = 2;
          else if (b === 250) this.telnetState = 3;
          break;
        case 2: this.telnetState = 0; break;
        case 3: if (b === 0xff) this.telnetState = 4; break;
        case 4: this.telnetState = b === 240 ? 0 : 3; break;
      }
    }
    this.rx = Buffer.concat([this.rx, Buffer.from(out)]);
  }
}

