// tcp and uds drivers against real sockets: the driver contract, plus what is particular to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { driverContract, type DriverRig } from '../../test/contracts/driver.contract.ts';
import { DeviceServer } from '../../test/device-server.ts';
import { freePort, tmpDir } from '../../test/helpers.ts';
import { TcpDriver, UdsDriver } from './socket.ts';
import { parseRelayConfig, type TcpConsoleConfig, type UdsConsoleConfig } from '../config.ts';

function rig(dev: DeviceServer, driver: TcpDriver | UdsDriver, cfg: TcpConsoleConfig | UdsConsoleConfig, target: string): DriverRig {
  return {
    driver, cfg, target,
    received: () => dev.received(), clearReceived: () => dev.clearReceived(), emit: (b) => dev.emit(b),
    vanish: () => dev.vanish(), reappear: () => dev.reappear(), whenConnected: async () => { await dev.whenConnected(); },
    openFailsWhileGone: true, hasBreak: false,
    stop: () => dev.vanish(),
  };
}

function consoleCfg<T>(yaml: string): T {
  return Object.values(parseRelayConfig(yaml, 'test.yaml').consoles)[0] as T;
}

driverContract('tcp', async () => {
  const port = await freePort();
  const dev = await DeviceServer.start({ port });
  const cfg = consoleCfg<TcpConsoleConfig>(`consoles: { c: { type: tcp, host: 127.0.0.1, port: ${port} } }`);
  return rig(dev, new TcpDriver(cfg), cfg, `127.0.0.1:${port}`);
});

driverContract('uds', async () => {
  const p = path.join(tmpDir('uds'), 'console.sock');
  const dev = await DeviceServer.start({ path: p });
  const cfg = consoleCfg<UdsConsoleConfig>(`consoles: { c: { type: uds, path: ${p} } }`);
  return rig(dev, new UdsDriver(cfg), cfg, p);
});

test('tcp: a refused connection and an unknown host say so', async () => {
  const port = await freePort();
  const d = new TcpDriver({ host: '127.0.0.1', port });
  await assert.rejects(d.open({ onData() {}, onClose() {} }), new RegExp(`connect 127.0.0.1:${port}: connection refused`));
  const u = new UdsDriver({ path: '/nonexistent/console.sock' });
  await assert.rejects(u.open({ onData() {}, onClose() {} }), /connect \/nonexistent\/console.sock: no such socket/);
});

test('config: tcp needs host and port, uds a path', () => {
  assert.throws(() => parseRelayConfig('consoles: { a: { type: tcp, host: h }, b: { type: uds }, c: { type: tcp, host: "a b", port: 70000 } }', 'x.yaml'), (e: Error & { problems?: string[] }) => {
    assert.deepEqual(e.problems, [
      'console a: port: required for type tcp',
      'console b: path: required for type uds',
      'console c: host: must be a host name or address (got "a b")',
      'console c: port: must be one of 1..65535 (got 70000)',
    ]);
    return true;
  });
});
