// The console driver contract: what every ConsoleDriver (edge-relay/driver.ts) must do, whatever
// it talks to. Each driver's test file builds a DriverRig around a real peer (socat ptys, ser2net,
// sshd, a socket server) and calls driverContract(); the same checks then run against each.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsoleDriver } from '../../edge-relay/driver.ts';
import { Supervisor } from '../../edge-relay/supervisor.ts';
import type { ConsoleConfig } from '../../edge-relay/config.ts';
import { cleanup, until } from '../helpers.ts';

export interface DriverRig {
  driver: ConsoleDriver;
  cfg: ConsoleConfig;
  /** What the device side has received so far. */
  received(): Buffer;
  /** Forget what the device received (before a new check). */
  clearReceived(): void;
  /** The device emits bytes. */
  emit(b: Buffer): void;
  /** The peer goes away (server stopped, device unplugged). */
  vanish(): Promise<void>;
  /** The peer is back. */
  reappear(): Promise<void>;
  /** Whether a device can take output right after open (false: the rig must see its connection
   *  first; emitWhenReady waits for it). */
  whenConnected?(): Promise<void>;
  /** open() rejects while the peer is gone (false where opening succeeds and the session then
   *  ends, as with a command that exits). */
  openFailsWhileGone: boolean;
  /** Text the open-failure message names (host:port, path). */
  target?: string;
  /** sendBreak() does something on this console type (else it must reject saying so). */
  hasBreak: boolean;
  /** Byte values that cannot pass this console type unchanged (none for a clean 8-bit path). */
  unclean?: number[];
  stop(): Promise<void>;
}

interface Opened { data(): Buffer; closes: string[]; clear(): void }

async function openRig(rig: DriverRig): Promise<Opened> {
  let chunks: Buffer[] = [];
  const closes: string[] = [];
  await rig.driver.open({ onData: (d) => chunks.push(Buffer.from(d)), onClose: (r) => closes.push(r) });
  if (rig.whenConnected) await rig.whenConnected();
  return { data: () => Buffer.concat(chunks), closes, clear: () => { chunks = []; } };
}

function allBytes(rig: DriverRig, times: number): Buffer {
  const bad = new Set(rig.unclean ?? []);
  const one = Buffer.from([...Array(256).keys()].filter((b) => !bad.has(b)));
  return Buffer.concat(Array(times).fill(one));
}

export function driverContract(name: string, make: (t: TestContext) => Promise<DriverRig>): void {
  after(cleanup);

  test(`${name}: bytes pass both ways unchanged`, async (t) => {
    const rig = await make(t);
    t.after(() => rig.stop());
    const o = await openRig(rig);
    const out = allBytes(rig, 16); // ~4 KiB: every byte value, several reads
    rig.emit(out);
    await until('device output at the driver', () => o.data().length >= out.length, 10_000);
    assert.equal(o.data().toString('hex'), out.toString('hex'));
    const inp = allBytes(rig, 8);
    await rig.driver.write(inp);
    await until('input at the device', () => rig.received().length >= inp.length, 10_000);
    assert.equal(rig.received().toString('hex'), inp.toString('hex'));
    await rig.driver.close();
    assert.deepEqual(o.closes, ['closed'], 'a close we asked for is reported once, as "closed"');
  });

  test(`${name}: a vanished peer ends the session with a reason; reopening works once it is back`, async (t) => {
    const rig = await make(t);
    t.after(() => rig.stop());
    const o = await openRig(rig);
    await rig.vanish();
    await until('onClose after the peer vanished', () => o.closes.length > 0, 5000);
    assert.equal(o.closes.length, 1);
    assert.notEqual(o.closes[0], 'closed');
    assert.ok(o.closes[0].length > 3, `reason: ${o.closes[0]}`);
    await assert.rejects(rig.driver.write(Buffer.from('x')), /./, 'write after the end rejects');
    if (rig.openFailsWhileGone) {
      const err = await rig.driver.open({ onData() {}, onClose() {} }).then(() => undefined, (e: Error) => e);
      assert.ok(err, 'open while the peer is gone must fail');
      if (rig.target) assert.match(err.message, new RegExp(escapeRe(rig.target)), `message names the target: ${err.message}`);
    }
    await rig.reappear();
    const o2 = await openRig(rig);
    await emitUntilSeen(rig, 'back again', () => o2.data().toString('latin1'));
    await rig.driver.close();
  });

  test(`${name}: close is idempotent and the driver opens again after it`, async (t) => {
    const rig = await make(t);
    t.after(() => rig.stop());
    await rig.driver.close(); // not open: a no-op
    const o = await openRig(rig);
    await rig.driver.close();
    await rig.driver.close();
    assert.deepEqual(o.closes, ['closed']);
    const o2 = await openRig(rig);
    rig.clearReceived();
    await rig.driver.write(Buffer.from('after reopen\n'));
    await until('input after reopen', () => rig.received().includes('after reopen'), 10_000);
    await rig.driver.close();
    assert.deepEqual(o2.closes, ['closed']);
  });

  test(`${name}: sendBreak ${'does its job or says why not'}`, async (t) => {
    const rig = await make(t);
    t.after(() => rig.stop());
    await openRig(rig);
    if (rig.hasBreak) await rig.driver.sendBreak();
    else await assert.rejects(rig.driver.sendBreak(), /break/i);
    await rig.driver.close();
  });

  test(`${name}: under the supervisor the console goes down and comes back up by itself`, async (t) => {
    const rig = await make(t);
    t.after(() => rig.stop());
    const sup = new Supervisor('c1', rig.cfg, rig.driver, { minBackoffMs: 100, maxBackoffMs: 400, resetAfterMs: 60_000, jitter: 0 });
    const states: string[] = [];
    let data = '';
    sup.on('state', (s) => states.push(s.state + (s.reason ? `: ${s.reason}` : '')));
    sup.on('data', (d) => { data += d.toString('latin1'); });
    t.after(() => sup.stop());
    sup.start();
    await until('up', () => sup.state.state === 'up', 10_000);
    if (rig.whenConnected) await rig.whenConnected();
    await rig.vanish();
    await until('down', () => sup.state.state === 'down', 5000);
    assert.ok(sup.state.reason, 'a down console says why');
    const back = Date.now();
    await rig.reappear();
    await until('up again', () => sup.state.state === 'up', 10_000);
    const upMs = Date.now() - back;
    if (rig.whenConnected) await rig.whenConnected();
    await emitUntilSeen(rig, 'after the outage', () => data);
    t.diagnostic(`${name}: up ${upMs} ms after the peer came back; states ${JSON.stringify(states)}`);
    await sup.stop();
  });
}

/** The device says `text` (again every 500 ms) until the driver side has it: a peer that just came
 *  back may still be setting its line up and drop the first bytes (ser2net flushes the tty after
 *  opening it); what is tested here is that the console works again, not those bytes. */
async function emitUntilSeen(rig: DriverRig, text: string, seen: () => string): Promise<void> {
  let last = 0;
  await until(`"${text}" after the peer came back`, () => {
    if (seen().includes(text)) return true;
    if (Date.now() - last >= 500) { last = Date.now(); rig.emit(Buffer.from(`${text}\r\n`)); }
    return false;
  }, 10_000, 20);
}

function escapeRe(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }
