// How fast a console is back after its device returns: `node --import tsx bench/reconnect.ts`.
//
// serial: a socat pty pair is stopped (the device node vanishes, as a USB adapter unplugged) for
//   OUTAGE_MS, then started again; measured from the moment the device node exists again to the
//   supervisor reporting the console up (default SupervisorOptions: the backoff has grown to
//   seconds by then; the driver's device watch is what makes it fast).
// tcp: a device behind a TCP port (a terminal server's port) stops listening for OUTAGE_MS and
//   listens again; measured from listening to up. A network peer gives no such hint: this is
//   bounded by the backoff (0.5 s doubling to 30 s, reset after 10 s up).
// ipmi: a simulated BMC (OpenIPMI's ipmi_sim, test/ipmi-sim.ts) is killed while its host prints a
//   line every 50 ms, and started again BMC_OUTAGE_MS (5 s, a BMC reset) later; measured from the
//   kill to the host's output flowing through the console again, and from the BMC answering again
//   to that. The driver's RMCP ping (1 s, 3 misses) notices the drop; the supervisor reopens SOL.
//   Needs ipmi_sim and ipmitool (apt-get install openipmi ipmitool).
// RUNS (5) repetitions each; prints every sample and min / median / max in ms.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Supervisor } from '../edge-relay/supervisor.ts';
import { createDriver } from '../edge-relay/drivers/index.ts';
import { parseRelayConfig } from '../edge-relay/config.ts';
import { DeviceServer } from '../test/device-server.ts';
import { freePort } from '../test/helpers.ts';
import { Bmc, PASSWORD, USER } from '../test/ipmi-sim.ts';

const RUNS = Number(process.env.RUNS ?? 5);
const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 5000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-reconnect-'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(fn: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) { if (Date.now() > end) throw new Error('timed out'); await sleep(1); }
}
const stats = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return `min ${s[0]} / median ${s[Math.floor(s.length / 2)]} / max ${s.at(-1)} ms`; };

function startSocat(): ChildProcess {
  return spawn('socat', [`pty,raw,echo=0,link=${dir}/dev`, `pty,raw,echo=0,link=${dir}/peer`], { stdio: 'ignore' });
}
async function stopSocat(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await gone;
}

async function serial(): Promise<number[]> {
  let socat = startSocat();
  const cfg = parseRelayConfig(`consoles: { s: { type: serial, device: ${dir}/dev, baud: 115200 } }`, 'bench.yaml').consoles.s;
  const sup = new Supervisor('s', cfg, createDriver(cfg), { flapMax: 1000 }); // repeated unplugs on purpose: no flap hold
  const out: number[] = [];
  try { // socat is stopped whatever happens (a timeout must not leave it running)
    await until(() => fs.existsSync(`${dir}/dev`));
    sup.start();
    await until(() => sup.state.state === 'up');
    for (let i = 0; i < RUNS; i++) {
      await stopSocat(socat);
      await until(() => sup.state.state === 'down');
      await sleep(OUTAGE_MS);
      socat = startSocat();
      await until(() => fs.existsSync(`${dir}/dev`));
      const t0 = Date.now();
      await until(() => sup.state.state === 'up');
      out.push(Date.now() - t0);
      await sleep(200);
    }
  } finally {
    await sup.stop();
    await stopSocat(socat);
  }
  return out;
}

async function tcp(): Promise<number[]> {
  const port = await freePort();
  const dev = await DeviceServer.start({ port });
  const cfg = parseRelayConfig(`consoles: { t: { type: tcp, host: 127.0.0.1, port: ${port} } }`, 'bench.yaml').consoles.t;
  const sup = new Supervisor('t', cfg, createDriver(cfg), { flapMax: 1000 });
  sup.start();
  await until(() => sup.state.state === 'up');
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await dev.vanish();
    await until(() => sup.state.state === 'down');
    await sleep(OUTAGE_MS);
    await dev.reappear();
    const t0 = Date.now();
    await until(() => sup.state.state === 'up');
    out.push(Date.now() - t0);
    await sleep(11_000); // stay up past resetAfterMs, so each outage starts from the same backoff
  }
  await sup.stop();
  await dev.vanish();
  return out;
}

const BMC_OUTAGE_MS = Number(process.env.BMC_OUTAGE_MS ?? 5000);
const afterBack: number[] = [];
const noticed: number[] = [];
async function ipmi(): Promise<number[]> {
  const bmc = await Bmc.start();
  const cfg = parseRelayConfig(`consoles: { b: { type: ipmi, host: 127.0.0.1, port: ${bmc.port}, user: ${USER}, password: '${PASSWORD}', cipherSuite: 3 } }`, 'bench.yaml').consoles.b;
  // The supervisor's default backoff would have grown by the second run: start each from scratch.
  const out: number[] = [];
  let sup: Supervisor | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try { // ipmi_sim and socat are stopped whatever happens
    for (let i = 0; i < RUNS; i++) {
      const s = sup = new Supervisor('b', cfg, createDriver(cfg), { minBackoffMs: 200, maxBackoffMs: 2000 });
      let lastAt = 0;
      let downAt = 0;
      s.on('data', (d: Buffer, at: number) => { if (d.includes('tick')) lastAt = at; });
      s.on('state', (st) => { if (st.state === 'down' && !downAt) downAt = Date.now(); });
      s.start();
      await until(() => s.state.state === 'up', 30_000);
      ticker = setInterval(() => { void bmc.hostWrite('tick\r\n').catch(() => {}); }, 50);
      await until(() => lastAt > 0, 10_000);
      const t0 = Date.now();
      await bmc.killSim();
      await sleep(BMC_OUTAGE_MS);
      await bmc.startSim();
      const back = Date.now();
      await until(() => lastAt > back && s.state.state === 'up', 30_000);
      out.push(lastAt - t0);
      afterBack.push(lastAt - back);
      noticed.push(downAt - t0);
      clearInterval(ticker);
      await s.stop();
    }
  } finally {
    clearInterval(ticker);
    await sup?.stop();
    await bmc.stop();
  }
  return out;
}

const s = await serial();
console.log(`serial device back -> console up (${OUTAGE_MS} ms outage, ${RUNS} runs): ${s.join(', ')} ms; ${stats(s)}`);
const t = await tcp();
console.log(`tcp peer back -> console up (${OUTAGE_MS} ms outage, ${RUNS} runs): ${t.join(', ')} ms; ${stats(t)}`);
try {
  const b = await ipmi();
  console.log(`ipmi: BMC killed, back ${BMC_OUTAGE_MS} ms later -> SOL output flowing again (${RUNS} runs): ${b.join(', ')} ms; ${stats(b)}`);
  console.log(`ipmi: BMC killed -> drop noticed (console down): ${noticed.join(', ')} ms; ${stats(noticed)}`);
  console.log(`ipmi: BMC answering again -> SOL output flowing: ${afterBack.join(', ')} ms; ${stats(afterBack)}`);
} catch (e) {
  console.log(`ipmi: not measured: ${(e as Error).message}`);
}
fs.rmSync(dir, { recursive: true, force: true });
