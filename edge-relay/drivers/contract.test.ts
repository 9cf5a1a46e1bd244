// The driver contract (test/contracts/driver.contract.ts) for the serial and exec drivers; the
// other drivers run it in their own test files against their own peers.
import path from 'node:path';
import { driverContract } from '../../test/contracts/driver.contract.ts';
import { DeviceServer } from '../../test/device-server.ts';
import { openPtyPeer, PtyPair, tmpDir } from '../../test/helpers.ts';
import { parseRelayConfig, type ExecConsoleConfig, type SerialConsoleConfig } from '../config.ts';
import { SerialDriver } from './serial.ts';
import { ExecDriver } from './exec.ts';

driverContract('serial (socat pty)', async () => {
  const dir = tmpDir('contract-serial');
  const pair = await PtyPair.create(dir);
  let peer = openPtyPeer(pair.peer);
  let base = 0;
  const cfg = Object.values(parseRelayConfig(`consoles: { s: { type: serial, device: ${pair.dev}, baud: 115200, readHoldoffMs: 0 } }`, 'x.yaml').consoles)[0] as SerialConsoleConfig;
  return {
    driver: new SerialDriver(cfg, { watchIntervalMs: 200 }), cfg, target: pair.dev,
    received: () => peer.received().subarray(base), clearReceived: () => { base = peer.received().length; },
    emit: (b) => { peer.write(b); },
    // Unplugged: the pty pair goes away (its node with it); replugged: a new pair on the same path.
    vanish: async () => { peer.close(); await pair.stop(); },
    reappear: async () => { await pair.start(); peer = openPtyPeer(pair.peer); base = 0; },
    openFailsWhileGone: true, hasBreak: true,
    stop: async () => { peer.close(); await pair.stop(); },
  };
});

driverContract('exec (a command wired to a socket device)', async () => {
  const sock = path.join(tmpDir('contract-exec'), 'dev.sock');
  const dev = await DeviceServer.start({ path: sock });
  // The pty the command runs on is made raw, so bytes pass unchanged as on a serial line.
  const cfg = Object.values(parseRelayConfig(`consoles: { e: { type: exec, command: 'stty raw -echo; exec socat - UNIX-CONNECT:${sock}' } }`, 'x.yaml').consoles)[0] as ExecConsoleConfig;
  return {
    driver: new ExecDriver(cfg), cfg,
    received: () => dev.received(), clearReceived: () => dev.clearReceived(), emit: (b) => dev.emit(b),
    vanish: () => dev.vanish(), reappear: () => dev.reappear(), whenConnected: async () => { await dev.whenConnected(); },
    // The command starts whether or not its device is there; it then exits, which ends the session.
    openFailsWhileGone: false, hasBreak: false,
    stop: () => dev.vanish(),
  };
});
