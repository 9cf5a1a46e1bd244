// Telnet driver: the protocol codec byte by byte, then the driver contract and RFC 2217 against a
// real ser2net (Debian's ser2net 4.x) exporting a socat pty; the "device" is the pty's other end.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { driverContract, type DriverRig } from '../../test/contracts/driver.contract.ts';
import { cleanup, freePort, openPtyPeer, Proc, PtyPair, tmpDir, until } from '../../test/helpers.ts';
import { TelnetCodec, TelnetDriver, IAC, WILL, WONT, DO, DONT, SB, SE, OPT, CPC, NEGOTIATION_LIMIT } from './telnet.ts';
import { parseRelayConfig, type TelnetConsoleConfig } from '../config.ts';

after(cleanup);
const run = promisify(execFile);

function codec() {
  const sent: number[] = [];
  const c = new TelnetCodec((b) => sent.push(...b));
  return { c, sent, take: () => sent.splice(0) };
}

test('codec: data with IAC IAC decodes to one 0xFF; encode doubles it', () => {
  const { c } = codec();
  assert.deepEqual([...c.decode(Buffer.from([1, IAC, IAC, 2]))], [1, 255, 2]);
  // split across chunks
  assert.deepEqual([...c.decode(Buffer.from([3, IAC]))], [3]);
  assert.deepEqual([...c.decode(Buffer.from([IAC, 4]))], [255, 4]);
  assert.deepEqual([...c.encode(Buffer.from([255, 0, 255]))], [255, 255, 0, 255, 255]);
});

test('codec: answers each request once and never loops, even against a peer that insists', () => {
  const { c, take } = codec();
  c.start(false);
  assert.deepEqual(take(), [IAC, WILL, OPT.BINARY, IAC, DO, OPT.BINARY, IAC, WILL, OPT.SGA, IAC, DO, OPT.SGA]);
  // The server agrees to everything we asked: no replies (the Q method's "wantyes -> yes").
  c.decode(Buffer.from([IAC, DO, OPT.BINARY, IAC, WILL, OPT.BINARY, IAC, DO, OPT.SGA, IAC, WILL, OPT.SGA]));
  assert.deepEqual(take(), []);
  assert.ok(c.binaryIn && c.binaryOut);
  // WILL ECHO, repeated: one DO, then silence.
  c.decode(Buffer.from([IAC, WILL, OPT.ECHO, IAC, WILL, OPT.ECHO, IAC, WILL, OPT.ECHO]));
  assert.deepEqual(take(), [IAC, DO, OPT.ECHO]);
  // Something we do not do (TTYPE 24, NAWS 31): refused, once per request.
  c.decode(Buffer.from([IAC, DO, 24, IAC, DO, 31]));
  assert.deepEqual(take(), [IAC, WONT, 24, IAC, WONT, 31]);
  // A hostile peer toggling an option forever gets a bounded number of answers.
  const flood: number[] = [];
  for (let i = 0; i < 1000; i++) flood.push(IAC, i % 2 ? DONT : DO, OPT.SGA);
  c.decode(Buffer.from(flood));
  const replies = take().length / 3;
  assert.ok(replies <= NEGOTIATION_LIMIT, `${replies} replies to 1000 toggles`);
  assert.equal(c.negotiations(OPT.SGA), 1002);
});

test('codec: without BINARY a lone CR travels as CR NUL and CR NUL arrives as CR', () => {
  const { c } = codec();
  c.decode(Buffer.from([IAC, WONT, OPT.BINARY, IAC, DONT, OPT.BINARY]));
  assert.deepEqual([...c.encode(Buffer.from('a\rb\r\n'))], [97, 13, 0, 98, 13, 10]);
  assert.deepEqual(c.decode(Buffer.from('x\r\0y\r\nz')).toString(), 'x\ry\r\nz');
  assert.deepEqual(c.decode(Buffer.from('1\r')).toString(), '1\r');
  assert.deepEqual(c.decode(Buffer.from('\x002')).toString(), '2', 'the NUL after a CR split across reads is dropped');
});

test('codec: RFC 2217 replies are parsed, with IAC doubled inside a subnegotiation', () => {
  const { c, take } = codec();
  c.start(true);
  take();
  c.decode(Buffer.from([IAC, DO, OPT.COM_PORT]));
  assert.equal(c.com.active, true);
  // baud 0x0001C2FF would not exist, but 0xFF inside a value must be un-doubled: 0x00FF00FF = 16711935
  const out = c.decode(Buffer.from([7, IAC, SB, OPT.COM_PORT, 100 + CPC.SET_BAUDRATE, 0, IAC, IAC, 0, IAC, IAC, IAC, SE, 8,
    IAC, SB, OPT.COM_PORT, 100 + CPC.SIGNATURE, ...Buffer.from('ts-1'), IAC, SE]));
  assert.deepEqual([...out], [7, 8]);
  assert.equal(c.com.baud, 0x00ff00ff);
  assert.equal(c.com.signature, 'ts-1');
  c.comPort(CPC.SET_BAUDRATE, [0, 0, 0xff, 0]);
  assert.deepEqual(take(), [IAC, SB, OPT.COM_PORT, 1, 0, 0, IAC, IAC, 0, IAC, SE]);
});

/** ser2net on a free port exporting the `dev` end of a socat pty pair. */
class Ser2net {
  proc?: Proc;
  constructor(readonly dir: string, readonly port: number, readonly dev: string, readonly accepter = 'telnet(rfc2217)') {}
  async start(): Promise<void> {
    const conf = path.join(this.dir, `ser2net-${this.port}.yaml`);
    fs.writeFileSync(conf, [
      'connection: &con0',
      `  accepter: ${this.accepter},tcp,127.0.0.1,${this.port}`,
      `  connector: serialdev,${this.dev},9600n81,local`,
      '  options:',
      '    kickolduser: true',
      '',
    ].join('\n'));
    this.proc = new Proc('ser2net', ['-d', '-c', conf, '-P', path.join(this.dir, `ser2net-${this.port}.pid`)]);
    await until('ser2net listening', () => new Promise<boolean>((r) => {
      const s = net.connect(this.port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    }), 10_000);
  }
  async stop(): Promise<void> { await this.proc?.kill(); }
}

/** Whether process `pid` has the tty behind `link` open. */
function holds(pid: number, link: string): boolean {
  const target = fs.realpathSync(link);
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === target; } catch { return false; } });
  } catch { return false; }
}

const haveSer2net = fs.existsSync('/usr/sbin/ser2net') || fs.existsSync('/usr/bin/ser2net');
const gate = haveSer2net ? {} : { skip: 'ser2net is not installed (apt-get install ser2net)' };

async function ser2netRig(t: TestContext, settings = ''): Promise<DriverRig & { s2n: Ser2net; pair: PtyPair; cfg: TelnetConsoleConfig }> {
  void t;
  const dir = tmpDir('telnet');
  const pair = await PtyPair.create(dir);
  const port = await freePort();
  const s2n = new Ser2net(dir, port, pair.dev);
  await s2n.start();
  const peer = openPtyPeer(pair.peer);
  let base = 0;
  const cfg = Object.values(parseRelayConfig(`consoles: { c: { type: telnet, host: 127.0.0.1, port: ${port}${settings} } }`, 'x.yaml').consoles)[0] as TelnetConsoleConfig;
  const driver = new TelnetDriver(cfg);
  return {
    s2n, pair, cfg, driver, target: `127.0.0.1:${port}`,
    received: () => peer.received().subarray(base), clearReceived: () => { base = peer.received().length; },
    emit: (b) => { peer.write(b); },
    vanish: () => s2n.stop(), reappear: () => s2n.start(),
    // ser2net opens the device only when a client connects; output before that is not carried.
    // ...and sets the line up after opening it (flushing what came meanwhile): give it a moment.
    whenConnected: async () => { await until('ser2net has the device open', () => holds(s2n.proc!.child.pid!, pair.dev), 5000); await new Promise((r) => setTimeout(r, 300)); },
    openFailsWhileGone: true, hasBreak: true,
    stop: async () => { await s2n.stop(); await pair.stop(); },
  };
}

if (haveSer2net) driverContract('telnet (ser2net)', (t) => ser2netRig(t));

test('telnet: RFC 2217 sets the line at the terminal server and sends BREAK through it', gate, async (t) => {
  const rig = await ser2netRig(t, ', baud: 115200, dataBits: 7, parity: even, stopBits: 2, flowControl: none, dtr: false, rts: true');
  t.after(() => rig.stop());
  await rig.driver.open({ onData() {}, onClose() {} });
  const d = rig.driver as TelnetDriver;
  await until('ser2net confirmed the settings', () => d.comPort?.stopBits !== undefined, 5000);
  assert.equal(d.comPort!.signature, 'ser2net');
  assert.deepEqual([d.comPort!.baud, d.comPort!.dataBits, d.comPort!.parity, d.comPort!.stopBits], [115200, 7, 3, 2]);
  // What the tty itself now says (ser2net applied it with tcsetattr on the pty). A Linux pty
  // forces cs8 and no parity whatever is asked, so speed and stop bits are what it can show.
  const stty = (await run('stty', ['-F', rig.pair.dev, '-a'])).stdout;
  assert.match(stty, /speed 115200 baud/);
  for (const flag of ['cstopb']) assert.match(stty, new RegExp(`(^|\\s)${flag}(\\s|$)`), `${flag} in ${stty}`);
  await d.sendBreak();
  await until('ser2net answered BREAK-ON and BREAK-OFF', () => d.comPort!.control.length >= 3, 5000).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(d.comPort)}`); });
  // ser2net confirms flow control and BREAK; DTR/RTS it leaves unanswered on a pty (no modem
  // lines), so what we send for them is checked byte by byte in the next test.
  assert.deepEqual(d.comPort!.control.slice(0, 2), [1, 5], 'flow none confirmed, then BREAK-ON');
  await d.close();
});

test('telnet: the RFC 2217 requests on the wire, DTR and RTS included, in order after the server agrees', async () => {
  const got: number[] = [];
  const server = net.createServer((c) => {
    c.on('data', (d: Buffer) => {
      got.push(...d);
      if (d.includes(Buffer.from([IAC, WILL, OPT.COM_PORT]))) c.write(Buffer.from([IAC, DO, OPT.COM_PORT]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const d = new TelnetDriver({ type: 'telnet', host: '127.0.0.1', port, baud: 9600, dtr: false, rts: true, breakDelayMs: 10 } as TelnetConsoleConfig);
  await d.open({ onData() {}, onClose() {} });
  const sb = (cmd: number, ...v: number[]) => Buffer.from([IAC, SB, OPT.COM_PORT, cmd, ...v, IAC, SE]).toString('hex');
  await until('the requests', () => Buffer.from(got).toString('hex').includes(sb(CPC.SET_CONTROL, 11)));
  const wire = Buffer.from(got).toString('hex');
  const order = [sb(CPC.SIGNATURE), sb(CPC.SET_BAUDRATE, 0, 0, 0x25, 0x80), sb(CPC.SET_CONTROL, 9), sb(CPC.SET_CONTROL, 11)].map((x) => wire.indexOf(x));
  assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `in order: ${order}`);
  await d.close();
  server.close();
});

test('telnet: a server without RFC 2217 still carries the console, says the settings were not applied, and breaks with IAC BRK', gate, async (t) => {
  const dir = tmpDir('telnet-plain');
  const pair = await PtyPair.create(dir);
  const port = await freePort();
  const s2n = new Ser2net(dir, port, pair.dev, 'telnet');
  await s2n.start();
  t.after(async () => { await s2n.stop(); await pair.stop(); });
  const peer = openPtyPeer(pair.peer);
  const d = new TelnetDriver({ type: 'telnet', host: '127.0.0.1', port, baud: 19200, breakDelayMs: 100 } as TelnetConsoleConfig, { comPortWaitMs: 500 });
  let got = '';
  await d.open({ onData: (b) => { got += b.toString('latin1'); }, onClose() {} });
  assert.equal(d.comPort!.active, false);
  assert.match(got, /does not offer RFC 2217; line settings not applied/);
  await d.sendBreak(); // IAC BRK: ser2net turns it into a serial break
  await new Promise((r) => setTimeout(r, 300));
  await d.write(Buffer.from('still there\r'));
  await until('input after the break', () => peer.received().includes('still there'), 5000);
  await d.close();
});
