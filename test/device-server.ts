// A console device behind a socket, for driver tests: listens on a TCP port (127.0.0.1) or a unix
// socket path, collects what it receives and sends what the test makes it emit to every connected
// client. vanish() stops it (listener and connections); reappear() listens again on the same address.
import net from 'node:net';
import fs from 'node:fs';
import { until } from './helpers.ts';

export class DeviceServer {
  private server?: net.Server;
  private readonly socks = new Set<net.Socket>();
  private chunks: Buffer[] = [];
  connections = 0;

  private constructor(readonly addr: { port: number } | { path: string }) {}

  static async start(addr: { port: number } | { path: string }): Promise<DeviceServer> {
    const d = new DeviceServer(addr);
    await d.reappear();
    return d;
  }

  get port(): number { return (this.addr as { port: number }).port; }

  received(): Buffer { return Buffer.concat(this.chunks); }
  clearReceived(): void { this.chunks = []; }
  emit(b: Buffer): void { for (const s of this.socks) s.write(b); }
  whenConnected(): Promise<boolean> { return until('a connection at the device', () => this.socks.size > 0, 10_000); }

  async reappear(): Promise<void> {
    if ('path' in this.addr) fs.rmSync(this.addr.path, { force: true });
    const server = net.createServer((s) => {
      this.connections++;
      this.socks.add(s);
      s.on('data', (d: Buffer) => this.chunks.push(d));
      s.on('error', () => {});
      s.on('close', () => this.socks.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if ('path' in this.addr) server.listen(this.addr.path, resolve);
      else server.listen(this.addr.port, '127.0.0.1', resolve);
    });
    this.server = server;
  }

  async vanish(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const c of this.socks) c.destroy();
    this.socks.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
