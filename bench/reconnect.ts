// How fast a console is back after its device returns: `node --import tsx bench/reconnect.ts`.
//
// serial: a socat pty pair is stopped (the device node vanishes, as a USB adapter unplugged) for
//   OUTAGE_MS, then started again; measured from the moment the device node exists again to the
//   supervisor reporting the console up (default SupervisorOptions: the backoff has grown to
//   seconds by then; the driver's device watch is what makes it fast).
// tcp: a device behind a TCP port (a terminal server's port) stops listening for OUTAGE_MS and
//   listens again; measured from listening to up. A network peer gives no such hint: this is
//   bounded by the backoff (0.5 s doubling to 30 s, reset after 10 s up).
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
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await gone;
}

async function serial(): Promise<number[]> {
  let socat = startSocat();
  await until(() => fs.existsSync(`${dir}/dev`));
  const cfg = parseRelayConfig(`consoles: { s: { type: serial, device: ${dir}/dev, baud: 115200 } }`, 'bench.yaml').consoles.s;
  const sup = new Supervisor('s', cfg, createDriver(cfg));
  sup.start();
  await until(() => sup.state.state === 'up');
  const out: number[] = [];
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
  await sup.stop();
  await stopSocat(socat);
  return out;
}

async function tcp(): Promise<number[]> {
  const port = await freePort();
  const dev = await DeviceServer.start({ port });
  const cfg = parseRelayConfig(`consoles: { t: { type: tcp, host: 127.0.0.1, port: ${port} } }`, 'bench.yaml').consoles.t;
  const sup = new Supervisor('t', cfg, createDriver(cfg));
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

const s = await serial();
console.log(`serial device back -> console up (${OUTAGE_MS} ms outage, ${RUNS} runs): ${s.join(', ')} ms; ${stats(s)}`);
const t = await tcp();
console.log(`tcp peer back -> console up (${OUTAGE_MS} ms outage, ${RUNS} runs): ${t.join(', ')} ms; ${stats(t)}`);
fs.rmSync(dir, { recursive: true, force: true });
