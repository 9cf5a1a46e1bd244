// IpmiDriver against a real BMC simulator: OpenIPMI's ipmi_sim on 127.0.0.1 (a free UDP port),
// its SOL wired to one end of a socat pty pair while the test holds the other end as the host's
// serial port (the set-up of ../shared/peers/run-ipmi-sol.sh, fixtures in test/fixtures/ipmi/).
// For BREAK the SOL goes to a TCP server of the test instead (`sol "telnet:..."`): ipmi_sim's
// break on a serial device is tcsendbreak(), which a pty ignores (Linux ptys have no break_ctl),
// while over telnet it sends IAC BREAK, which the test can see.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pty from '@lydell/node-pty';
import { IpmiDriver, OutputFilter, type IpmiDriverOptions } from './ipmi.ts';
import { Bmc, freeUdpPort, PASSWORD, USER } from '../../test/ipmi-sim.ts';
import { Supervisor } from '../supervisor.ts';
import { driverContract } from '../../test/contracts/driver.contract.ts';
import type { IpmiConsoleConfig } from '../config.ts';

/** ipmi_sim quirks FreeIPMI needs worked around: it answers Open Session with maximum privilege 0
 *  (opensesspriv), dies on Get Channel Payload Support (solchannelsupport), and reports a 16384-byte
 *  outbound SOL payload size (solpayloadsize). */
const IPMICONSOLE_SIM_WORKAROUNDS = ['opensesspriv', 'solchannelsupport', 'solpayloadsize'];

function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const f = path.join(d, bin);
    try { fs.accessSync(f, fs.constants.X_OK); return f; } catch { /* next */ }
  }
  return undefined;
}
const missing = ['ipmi_sim', 'ipmitool', 'socat'].filter((b) => !which(b));
const SKIP: string | false = missing.length ? `needs ${missing.join(', ')}: apt-get install openipmi ipmitool socat` : false;
const SKIP_IPMICONSOLE: string | false = SKIP || (which('ipmiconsole') ? false : 'needs ipmiconsole: apt-get install freeipmi-tools');
if (SKIP) console.log(`# ipmi driver tests skipped: ${SKIP}`);
else if (SKIP_IPMICONSOLE) console.log(`# ipmiconsole tests skipped: ${SKIP_IPMICONSOLE}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 10_000, seen?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${seen ? `; seen: ${JSON.stringify(seen())}` : ''}`);
    await sleep(10);
  }
}

/** Cleanups run last-registered first (node:test runs t.after hooks in registration order, which
 *  would stop the BMC before the driver on it is closed). */
function cleanups(t: TestContext): (fn: () => unknown) => void {
  const fns: (() => unknown)[] = [];
  t.after(async () => { for (const fn of fns.reverse()) await fn(); });
  return (fn) => { fns.push(fn); };
}
const deferred = new WeakMap<TestContext, (fn: () => unknown) => void>();
function defer(t: TestContext, fn: () => unknown): void {
  let add = deferred.get(t);
  if (!add) { add = cleanups(t); deferred.set(t, add); }
  add(fn);
}

/** Someone else's SOL session (ipmitool on a pty, as a person would run it). */
async function otherSession(t: TestContext, bmc: Bmc): Promise<void> {
  const p = pty.spawn('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(bmc.port), '-U', 'ipmiusr', '-E', '-C', '3', 'sol', 'activate'],
    { env: { ...process.env, IPMI_PASSWORD: 'test' } as Record<string, string>, encoding: null });
  let out = '';
  let gone = false;
  p.onData((d: string | Buffer) => { out += d.toString(); });
  p.onExit(() => { gone = true; });
  defer(t, async () => { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } await until('other session gone', () => gone, 5000); });
  await until('the other session', () => out.includes('SOL Session operational'), 10_000, () => out);
}

/** A simulated BMC stopped when the test ends. */
async function startBmc(t: TestContext, kind: 'pty' | 'telnet' = 'pty'): Promise<Bmc> {
  const b = await Bmc.start(kind);
  defer(t, () => b.stop());
  return b;
}

function cfg(bmc: Bmc, over: Partial<IpmiConsoleConfig> = {}): IpmiConsoleConfig {
  return { type: 'ipmi', host: '127.0.0.1', port: bmc.port, user: USER, password: PASSWORD, tool: 'ipmitool', privilege: 'ADMINISTRATOR', cipherSuite: 3, breakDelayMs: 250, ...over };
}

/** An opened driver with its output and close reasons recorded; closed at the end of the test. */
async function openDriver(t: TestContext, c: IpmiConsoleConfig, opts: IpmiDriverOptions = {}) {
  const driver = new IpmiDriver(c, { killGraceMs: 2000, ...opts });
  const chunks: Buffer[] = [];
  const closes: string[] = [];
  const events = { onData: (d: Buffer) => chunks.push(d), onClose: (r: string) => closes.push(r) };
  await driver.open(events);
  const pids = new Set<number>([driver.pid!]);
  defer(t, async () => {
    await driver.close();
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone, as it should be */ } }
  });
  const out = () => Buffer.concat(chunks);
  return {
    driver, closes, out, events,
    text: () => out().toString('latin1'),
    clear: () => { chunks.length = 0; },
    reopen: async () => { await driver.open(events); pids.add(driver.pid!); },
  };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

test('ipmitool: bytes flow both ways; typed lines starting with ~. ~B ~? ~~ reach the host unchanged', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const con = await openDriver(t, cfg(bmc));
  assert.equal(con.driver.type, 'ipmi');
  assert.equal(con.driver.resizable, false);
  await bmc.hostWrite('login: ');
  await until('host output', () => con.text().includes('login: '), 5000, con.text);
  assert.equal(con.text(), 'login: ', 'ipmitool banner must not reach the console');
  // At the start, after CR and after LF, `~` is ipmitool's escape; the user's must pass as data.
  // Also split over writes: the line-start state carries from one write to the next.
  const typed = '~.\r~B\r~?\n~~\ra~.b\r~';
  await con.driver.write(Buffer.from(typed));
  await con.driver.write(Buffer.from('.'));
  await con.driver.write(Buffer.from('\r'));
  await con.driver.write(Buffer.from('~'));
  await con.driver.write(Buffer.from('.end\r'));
  await until('typed bytes at the host', () => bmc.rxText().endsWith('.end\r'), 10_000, () => bmc.rxText());
  assert.equal(bmc.rxText(), `${typed}.\r~.end\r`);
  assert.deepEqual(con.closes, [], 'the session must survive the typed ~.');
  assert.ok(alive(con.driver.pid!));
  await bmc.hostWrite('still here\r\n');
  await until('output after the typed escapes', () => con.text().includes('still here\r\n'), 5000, con.text);
});

test('ipmitool: every byte value 0x00-0xff passes both ways (SOL carries all 256)', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const con = await openDriver(t, cfg(bmc));
  // Host -> console: all bytes, twice (the second time not at the start of a read).
  const down = Buffer.concat([ALL_BYTES, ALL_BYTES]);
  await bmc.hostWrite(down);
  await until('all bytes at the console', () => con.out().length >= down.length, 10_000);
  assert.deepEqual(con.out(), down);
  // Console -> host: all bytes (0x7e follows 0x7d, so it is no escape), then `~` right after
  // CR and after LF, where the driver must double it.
  const up = Buffer.concat([ALL_BYTES, Buffer.from('\r~x\n~~y\r')]);
  await con.driver.write(up);
  await until('all bytes at the host', () => bmc.rx.length >= up.length, 15_000, () => `${bmc.rx.length} bytes`);
  assert.deepEqual(bmc.rx, up);
  assert.deepEqual(con.closes, []);
});

test('ipmitool: the password is not on the command line (/proc/<pid>/cmdline) nor in the console output', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const pwFile = path.join(bmc.dir, 'pw');
  fs.writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
  const con = await openDriver(t, cfg(bmc, { password: undefined, passwordFile: pwFile }));
  const pid = con.driver.pid!;
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /ipmitool$/, 'the pid is ipmitool itself (the wrapper exec-ed it)');
  assert.ok(argv.includes('activate') && argv.includes(USER), `cmdline: ${argv.join(' ')}`);
  assert.ok(!argv.join(' ').includes(PASSWORD), `password on the command line: ${argv.join(' ')}`);
  assert.ok(argv.includes('-E') && !argv.includes('-P'), 'password from the environment (-E), never -P');
  await bmc.hostWrite('ok\r\n');
  await until('output', () => con.text().includes('ok'), 5000, con.text);
  assert.ok(!con.text().includes(PASSWORD));
});

test('ipmitool: a wrong password or user fails open() with ipmitool\'s own reason', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const wrong = 'Wr0ng-pass-77';
  const d = new IpmiDriver(cfg(bmc, { password: wrong }));
  const closes: string[] = [];
  const err = await d.open({ onData: () => {}, onClose: (r) => closes.push(r) }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'open must fail');
  assert.match(err.message, new RegExp(`^ipmi 127\\.0\\.0\\.1:${bmc.port}: authentication failed \\(wrong password or K_g\\?\\): RAKP 2 HMAC is invalid; Error: Unable to establish IPMI v2 / RMCP\\+ session$`));
  assert.ok(!err.message.includes(wrong));
  assert.deepEqual(closes, []);
  assert.equal(d.pid, undefined);
  const e2 = await new IpmiDriver(cfg(bmc, { user: 'nosuchuser' })).open({ onData: () => {}, onClose: () => {} }).then(() => undefined, (e: Error) => e);
  assert.match(e2?.message ?? '', /^ipmi 127\.0\.0\.1:\d+: authentication failed \(unknown user\): RAKP 2 message indicates an error : unauthorized name/);
  // A password ipmitool rejects before sending anything.
  const e3 = await new IpmiDriver(cfg(bmc, { password: 'x'.repeat(21) })).open({ onData: () => {}, onClose: () => {} }).then(() => undefined, (e: Error) => e);
  assert.match(e3?.message ?? '', /password is longer than 20 bytes/);
});

test('ipmitool: a BMC that does not answer fails open() after openTimeoutMs; K_g ipmitool cannot take safely is refused', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const port = await freeUdpPort(); // nothing listens there
  const c = { type: 'ipmi', host: '127.0.0.1', port, user: USER, password: PASSWORD, tool: 'ipmitool', privilege: 'ADMINISTRATOR', cipherSuite: 3, breakDelayMs: 250 } as const;
  const t0 = Date.now();
  await assert.rejects(new IpmiDriver(c, { openTimeoutMs: 1500 }).open({ onData: () => {}, onClose: () => {} }),
    { message: `ipmi 127.0.0.1:${port}: no SOL session after 2 s (is the BMC answering?)` });
  assert.ok(Date.now() - t0 < 5000);
  // close() while an open is in flight: the open ends at once, the tool with it.
  const d = new IpmiDriver(c);
  const opening = d.open({ onData: () => {}, onClose: () => {} }).then(() => undefined, (e: Error) => e);
  await sleep(300);
  const t1 = Date.now();
  await d.close();
  assert.equal((await opening)?.message, `ipmi 127.0.0.1:${port}: closed while opening`);
  assert.ok(Date.now() - t1 < 3000, `open ended ${Date.now() - t1} ms after close()`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipmi-kg-'));
  defer(t, () => fs.rmSync(dir, { recursive: true, force: true }));
  const kg = (text: string) => { const f = path.join(dir, `kg${Math.random()}`); fs.writeFileSync(f, `${text}\n`); return f; };
  const open = (kgFile: string) => new IpmiDriver({ ...c, kgFile }).open({ onData: () => {}, onClose: () => {} });
  await assert.rejects(open(kg('0x00ff')), /K_g has bytes ipmitool can only take on its command line \(-y\), which would expose it; use tool: ipmiconsole/);
  await assert.rejects(open(kg('0x123')), /K_g: odd number of hex digits/);
  await assert.rejects(open(kg('k'.repeat(21))), /K_g is longer than 20 bytes/);
  await assert.rejects(open(path.join(dir, 'missing')), { message: `ipmi 127.0.0.1:${port}: K_g file ${path.join(dir, 'missing')}: no such file` });
});

test('a missing tool binary fails open() saying what to install', async () => {
  const base = { type: 'ipmi', host: '127.0.0.1', port: 623, user: 'u', tool: 'ipmitool', privilege: 'ADMINISTRATOR', breakDelayMs: 250 } as const;
  const env = { PATH: '/nonexistent' };
  await assert.rejects(new IpmiDriver(base, { env }).open({ onData: () => {}, onClose: () => {} }), { message: 'ipmi 127.0.0.1:623: ipmitool not found: install ipmitool' });
  await assert.rejects(new IpmiDriver({ ...base, tool: 'ipmiconsole' }, { env }).open({ onData: () => {}, onClose: () => {} }), { message: 'ipmi 127.0.0.1:623: ipmiconsole not found: install freeipmi-tools' });
  await assert.rejects(new IpmiDriver({ ...base, passwordEnv: 'NO_SUCH_VAR_X' }, { env: { PATH: process.env.PATH } }).open({ onData: () => {}, onClose: () => {} }),
    SKIP ? Error : { message: 'ipmi 127.0.0.1:623: password: environment variable NO_SUCH_VAR_X is not set' });
});

test('ipmitool: "SOL payload already active on another session" is deactivated and open() succeeds', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  await otherSession(t, bmc);
  const probe = await bmc.ipmitool(['sol', 'activate']);
  assert.match(probe.out, /SOL payload already active on another session/, 'the BMC really has SOL taken');

  const con = await openDriver(t, cfg(bmc));
  assert.equal(con.text(), '\r\n[cloudcons: SOL was active elsewhere; deactivated it]\r\n');
  await bmc.hostWrite('mine now\r\n');
  await until('output', () => con.text().includes('mine now'), 5000, con.text);
  await con.driver.write(Buffer.from('typed\r'));
  await until('input', () => bmc.rxText() === 'typed\r', 5000, () => bmc.rxText());
});

test('ipmitool: BMC dies -> onClose within the ping window with the reason; reopen works once it is back', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const con = await openDriver(t, cfg(bmc), { pingIntervalMs: 300, pingMisses: 3 });
  const pid = con.driver.pid!;
  await bmc.hostWrite('before\r\n');
  await until('output', () => con.text().includes('before'), 5000, con.text);
  // Missed pings count only once the BMC has answered one (one that never does is left to ipmitool).
  await until('the BMC answered a ping', () => con.driver.bmcAnsweredPing, 5000);
  const t0 = Date.now();
  await bmc.killSim();
  await until('onClose', () => con.closes.length > 0, 5000);
  const took = Date.now() - t0;
  assert.ok(took < 2000, `onClose after ${took} ms`);
  assert.equal(con.closes.length, 1);
  assert.match(con.closes[0], new RegExp(`^ipmi 127\\.0\\.0\\.1:${bmc.port}: BMC stopped answering \\(no reply to 3 RMCP pings 300 ms apart\\); ended ipmitool$`));
  await until('ipmitool gone', () => !alive(pid), 3000);
  assert.equal(con.driver.pid, undefined);
  await assert.rejects(con.driver.write(Buffer.from('x')), /SOL session is not open/);

  await bmc.startSim();
  con.clear();
  await con.reopen();
  assert.equal(con.text(), '', 'a fresh BMC has no SOL session to deactivate');
  await bmc.hostWrite('after\r\n');
  await until('output after reopen', () => con.text().includes('after'), 5000, con.text);
});

test('ipmitool: SOL deactivated by another session -> the next keystroke ends it with ipmitool\'s reason; reopen works', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const con = await openDriver(t, cfg(bmc));
  const d = await bmc.ipmitool(['sol', 'deactivate']);
  assert.equal(d.code, 0, d.out);
  // ipmi_sim tells nobody; ipmitool's Get Device ID keepalive still works, so only sending
  // something shows the payload is gone.
  const t0 = Date.now();
  await con.driver.write(Buffer.from('x'));
  await until('onClose', () => con.closes.length > 0, 20_000);
  console.log(`# deactivated SOL noticed ${Date.now() - t0} ms after the next keystroke`);
  assert.match(con.closes[0], new RegExp(`^ipmi 127\\.0\\.0\\.1:${bmc.port}: ipmitool ended \\(code 1\\): Error sending SOL data: FAIL; SOL session closed by BMC$`));
  await con.reopen();
  await bmc.hostWrite('back\r\n');
  await until('output after reopen', () => con.text().includes('back'), 5000, con.text);
});

test('ipmitool: break at a line start sends only the break; mid-line it needs (and sends) one CR first', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t, 'telnet');
  const con = await openDriver(t, cfg(bmc));
  // ipmi_sim queues IAC BREAK for its SOL connection but only writes it out with the next data
  // (sol.c enables writing only when data arrives), so each break is followed by a byte here.
  await con.driver.sendBreak();
  await con.driver.write(Buffer.from('1'));
  await until('first break', () => bmc.breaks.length === 1 && bmc.rxText() === '1', 5000, () => bmc.rxText());
  assert.equal(bmc.breaks[0], 0, 'nothing before the break');
  await con.driver.sendBreak(); // after "1": not at a line start
  // After ~B ipmitool is still at a line start: the next ~ is the user's and passes as data.
  await con.driver.write(Buffer.from('~.\r'));
  await until('second break', () => bmc.breaks.length === 2 && bmc.rxText() === '1\r~.\r', 5000, () => bmc.rxText());
  assert.equal(bmc.breaks[1], 2, 'one CR, then the break (not the other way round)');
  await bmc.hostWrite('out\r\n');
  await until('output', () => con.text().includes('out\r\n'), 5000, con.text);
  assert.equal(con.text(), 'out\r\n', 'ipmitool\'s "~B [send break]" echo must not reach the console');
  assert.deepEqual(con.closes, []);
});

test('ipmitool: close() releases SOL at the BMC, at a line start (~.) and mid-line (EOF, no CR sent)', { skip: SKIP, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const con = await openDriver(t, cfg(bmc));
  // ipmi_sim keeps the sequence number of the last SOL packet it acked across sessions and drops a
  // new session's first packet as a duplicate if it has the same number (ipmitool starts every
  // session at 1). So the first session sends two packets ("l", "s\r"), the second one ("abc").
  for (const [how, packets] of [['line start', ['l', 's\r']], ['mid-line', ['abc']]] as const) {
    const pid = con.driver.pid!;
    bmc.rx = Buffer.alloc(0);
    let typed = '';
    for (const p of packets) {
      typed += p;
      await con.driver.write(Buffer.from(p));
      await until('typed', () => bmc.rxText() === typed, 5000, () => bmc.rxText());
    }
    const t0 = Date.now();
    await con.driver.close();
    const took = Date.now() - t0;
    assert.ok(took < 1500, `${how}: close took ${took} ms (the tool should leave by itself)`);
    assert.deepEqual(con.closes, ['closed']);
    assert.ok(!alive(pid), `${how}: ipmitool still running`);
    await sleep(300);
    assert.equal(bmc.rxText(), typed, `${how}: closing must not send anything to the host`);
    const probe = await bmc.ipmitool(['sol', 'deactivate']);
    assert.match(probe.out, /SOL payload already de-activated/, `${how}: SOL still active at the BMC: ${probe.out}`);
    con.closes.length = 0;
    con.clear();
    await con.reopen();
    assert.equal(con.text(), '', `${how}: reopen must not find SOL active`);
  }
  await con.driver.close();
  await con.driver.close(); // repeated close is fine
  assert.deepEqual(con.closes, ['closed']);
  await assert.rejects(con.driver.write(Buffer.from('x')), /SOL session is not open/);
  await assert.rejects(con.driver.sendBreak(), /SOL session is not open/);
});

test('ipmitool + Supervisor: a BMC that drops is noticed by the RMCP ping and the console comes back with output by itself (bench/reconnect.ts times it)', { skip: SKIP, timeout: 90_000 }, async (t) => {
  const bmc = await startBmc(t);
  const driver = new IpmiDriver(cfg(bmc)); // default liveness: a ping every 1 s, 3 missed = gone
  const sup = new Supervisor('bmc', cfg(bmc), driver, { minBackoffMs: 200, maxBackoffMs: 2000, jitter: 0 });
  const seen: { at: number; text: string }[] = [];
  const states: { at: number; state: string; reason?: string }[] = [];
  sup.on('data', (d, at) => seen.push({ at, text: d.toString('latin1') }));
  sup.on('state', (s) => states.push({ at: Date.now(), state: s.state, reason: s.reason }));
  defer(t, () => sup.stop());
  sup.start();
  await until('up', () => sup.state.state === 'up', 15_000);
  let n = 0;
  const ticker = setInterval(() => { void bmc.hostWrite(`tick ${n++}\r\n`).catch(() => {}); }, 50);
  defer(t, () => clearInterval(ticker));
  await until('ticks flowing', () => seen.some((s) => s.text.includes('tick')), 5000);
  await until('the BMC answered a ping', () => driver.bmcAnsweredPing, 5000);

  const t0 = Date.now();
  await bmc.killSim();
  await until('down', () => sup.state.state === 'down', 10_000);
  const tDown = Date.now();
  await bmc.startSim(); // the BMC is back
  const tBack = Date.now();
  await until('ticks flowing again', () => seen.some((s) => s.at > tBack && s.text.includes('tick')), 15_000);
  const tFlow = seen.find((s) => s.at > tBack && s.text.includes('tick'))!.at;
  t.diagnostic(`BMC drop -> output flowing again: ${tFlow - t0} ms (drop noticed after ${tDown - t0} ms; BMC back after ${tBack - t0} ms)`);
  assert.match(states.find((s) => s.state === 'down' && s.at >= t0)?.reason ?? '', /./, 'down says why');
  assert.equal(sup.state.state, 'up');
});

test('OutputFilter: drops a break echo split across reads, passes look-alikes on', async () => {
  const out: Buffer[] = [];
  const f = new OutputFilter(['[closing the connection]'], (d) => out.push(d), 200, 50);
  f.expect('~B [send break]\n');
  f.push(Buffer.from('ab~B [se'));
  f.push(Buffer.from('nd break]\ncd'));
  assert.equal(Buffer.concat(out).toString(), 'abcd');
  f.push(Buffer.from('x~B [send break]\n')); // no echo expected any more: data
  f.push(Buffer.from('y[clos'));
  assert.equal(Buffer.concat(out).toString(), 'abcdx~B [send break]\ny');
  await sleep(100); // the held "[clos" was not followed by the rest: it was data
  assert.equal(Buffer.concat(out).toString(), 'abcdx~B [send break]\ny[clos');
  f.push(Buffer.from('z\r\n[closing the connection]\r\n'));
  assert.equal(f.end(), '[closing the connection]\r\n', 'a goodbye line before the exit is held back and handed to the close reason');
  assert.equal(Buffer.concat(out).toString(), 'abcdx~B [send break]\ny[closz\r\n');
});

// ipmiconsole (FreeIPMI) works against ipmi_sim only with the three workarounds above.
const ic = (bmc: Bmc, over: Partial<IpmiConsoleConfig> = {}) => cfg(bmc, { tool: 'ipmiconsole', workarounds: IPMICONSOLE_SIM_WORKAROUNDS, ...over });

test('ipmiconsole: bytes both ways, typed & and &. reach the host, password only answered at its prompt', { skip: SKIP_IPMICONSOLE, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  const con = await openDriver(t, ic(bmc));
  const pid = con.driver.pid!;
  assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /ipmiconsole$/);
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  assert.ok(argv.includes('-P') && !argv.join(' ').includes(PASSWORD), `cmdline: ${argv.join(' ')}`);
  await bmc.hostWrite('login: ');
  await until('output', () => con.text().includes('login: '), 5000, con.text);
  assert.equal(con.text(), 'login: ', 'the "[SOL established]" banner must not reach the console');
  const typed = '&.\r&B &D &? &&x a&.b\r';
  await con.driver.write(Buffer.from(typed));
  await until('typed', () => bmc.rxText() === typed, 10_000, () => bmc.rxText());
  const down = Buffer.concat([ALL_BYTES, ALL_BYTES]);
  await bmc.hostWrite(down);
  await until('all bytes', () => con.out().length >= 7 + down.length, 10_000);
  assert.deepEqual(con.out().subarray(7), down);
  bmc.rx = Buffer.alloc(0);
  await con.driver.write(ALL_BYTES);
  await until('all bytes at the host', () => bmc.rx.length >= 256, 10_000, () => `${bmc.rx.length}`);
  assert.deepEqual(bmc.rx, ALL_BYTES);
  assert.deepEqual(con.closes, []);
});

test('ipmiconsole: wrong password fails open() with its own reason', { skip: SKIP_IPMICONSOLE, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t);
  await assert.rejects(new IpmiDriver(ic(bmc, { password: 'Wr0ng-pass-77' })).open({ onData: () => {}, onClose: () => {} }),
    { message: `ipmi 127.0.0.1:${bmc.port}: [error received]: password invalid` });
});

test('ipmiconsole: SOL in use elsewhere is deactivated; break, close releases the session', { skip: SKIP_IPMICONSOLE, timeout: 60_000 }, async (t) => {
  const bmc = await startBmc(t, 'telnet');
  await otherSession(t, bmc);

  const con = await openDriver(t, ic(bmc));
  assert.equal(con.text(), '\r\n[cloudcons: SOL was active elsewhere; deactivated it]\r\n');
  con.clear();
  await con.driver.write(Buffer.from('abc'));
  await until('typed', () => bmc.rxText() === 'abc', 5000, () => bmc.rxText());
  await con.driver.sendBreak();
  await con.driver.write(Buffer.from('d')); // ipmi_sim sends a queued break out with the next data
  await until('break', () => bmc.breaks.length === 1 && bmc.rxText() === 'abcd', 5000, () => bmc.rxText());
  assert.equal(bmc.breaks[0], 3, '&B needs no line start: nothing injected');
  await bmc.hostWrite('out\r\n');
  await until('output', () => con.text().includes('out'), 5000, con.text);
  assert.equal(con.text(), 'out\r\n', 'the "[generate break]" echo must not reach the console');
  const pid = con.driver.pid!;
  await con.driver.close();
  assert.deepEqual(con.closes, ['closed']);
  assert.ok(!alive(pid));
  assert.equal(con.text(), 'out\r\n', 'ipmiconsole\'s goodbye line must not reach the console');
  const probe = await bmc.ipmitool(['sol', 'deactivate']);
  assert.match(probe.out, /SOL payload already de-activated/, `SOL still active: ${probe.out}`);
  con.clear();
  await con.reopen();
  assert.equal(con.text(), '', 'reopen must not find SOL active');
});

test('ipmiconsole goodbye lines ("[error received]: ...") become the close reason, not console data (stub tool)', async (t) => {
  // A real ipmiconsole took 40 s to give up on a SOL session ipmi_sim had deactivated ("excess
  // retransmissions sent"), so this stands in for it, printing what ipmiconsole.c prints.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipmi-stub-'));
  defer(t, () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'ipmiconsole'), [
    '#!/bin/sh',
    "printf '[SOL established]\\r\\n'",
    "printf 'device says hi\\r\\n'",
    'sleep 0.3',
    "printf '\\r\\n[error received]: session timeout\\r\\n'",
    "printf '\\r\\n[closing the connection]\\r\\n'",
    '',
  ].join('\n'), { mode: 0o755 });
  const c: IpmiConsoleConfig = { type: 'ipmi', host: '127.0.0.1', port: 9, user: '', tool: 'ipmiconsole', privilege: 'ADMINISTRATOR', breakDelayMs: 250 };
  const con = await openDriver(t, c, { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  await until('onClose', () => con.closes.length > 0, 5000);
  assert.deepEqual(con.closes, ['ipmi 127.0.0.1:9: ipmiconsole ended (code 0): [error received]: session timeout']);
  // The CR LF before the line is a write of its own (line-buffered stdout) and passes as data.
  assert.equal(con.text(), 'device says hi\r\n\r\n');
});

// The shared driver contract (test/contracts/driver.contract.ts), against ipmi_sim: the peer
// vanishing is the BMC dying (noticed by the RMCP ping, here every 300 ms), coming back is
// ipmi_sim restarting.
if (!SKIP) {
  driverContract('ipmi (ipmitool, ipmi_sim)', async () => {
    const bmc = await Bmc.start();
    let base = 0;
    const c = cfg(bmc);
    const driver = new IpmiDriver(c, { pingIntervalMs: 300, openTimeoutMs: 5000, killGraceMs: 1000 });
    return {
      driver, cfg: c, target: `127.0.0.1:${bmc.port}`,
      received: () => bmc.rx.subarray(base), clearReceived: () => { base = bmc.rx.length; },
      emit: (b) => { void bmc.hostWrite(b); },
      vanish: () => bmc.killSim(), reappear: () => bmc.startSim(),
      // Missed pings count only once the BMC has answered one (a BMC without RMCP ping support
      // must not look dead): wait for the first pong before the BMC is killed.
      whenConnected: () => until('the BMC answered a ping', () => driver.bmcAnsweredPing, 5000),
      openFailsWhileGone: true, hasBreak: true,
      stop: () => bmc.stop(),
    };
  });
}
