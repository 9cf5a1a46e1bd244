// The web viewer's numbers: `node --import tsx bench/web.ts` (needs Debian's chromium).
//
// 1. Time from opening a console page to the first byte of its history on screen (the page's
//    `cloudcons:first-output` performance mark, ms after navigation start), on a console with
//    HISTORY_LINES (1000) lines of history, RUNS (10) page loads. Target: under 300 ms on loopback.
// 2. Keystroke echo in the browser (xterm.js page -> cloud -> relay -> pty -> back to the page)
//    next to the CLI's (`cloudcons attach` on a pty -> cloud -> relay -> the same pty), N (300)
//    probes each, one at a time, on the same console (a `cat` whose tty echoes what it is sent).
// Real cloud and relay processes on 127.0.0.1; everything started here is stopped by its PID.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as pty from '@lydell/node-pty';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const CLI = path.join(ROOT, 'bin/cloudcons.js');
const RUNS = Number(process.env.RUNS ?? 10);
const N = Number(process.env.N ?? 300);
const HISTORY_LINES = Number(process.env.HISTORY_LINES ?? 1000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-bench-web-'));
const kids: ReturnType<typeof spawn>[] = [];

function start(args: string[]): Promise<string> {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(p);
  let out = '';
  return new Promise((resolve, reject) => {
    const on = (d: Buffer) => { out += d; const m = /listening on (http:\/\/\S+)|console demo up/.exec(out); if (m) resolve(m[1] ?? ''); };
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
    p.once('exit', (c) => reject(new Error(`${args[0]} exited ${c}: ${out}`)));
  });
}
const token = (kind: 'user' | 'relay', name: string) => spawnSync(process.execPath, [CLI, ...(kind === 'user' ? ['token', 'create', '--user', name] : ['relay-token', 'create', name]), '--data', path.join(dir, 'data')]).stdout.toString().trim();
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(2)} / p90 ${pct(xs, 90).toFixed(2)} / p99 ${pct(xs, 99).toFixed(2)} ms`;

try {
  const url = await start(['cloud', '--data', path.join(dir, 'data'), '--port', '0']);
  const user = token('user', 'bench');
  const relayTok = token('relay', 'edge1');
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `relay: { name: edge1 }\nconsoles:\n  demo: { type: exec, command: [/bin/sh, -c, 'seq -f "history line %g" ${HISTORY_LINES}; exec cat'] }\n`);
  await start(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', url, '--token', relayTok]);
  await new Promise((r) => setTimeout(r, 1500)); // the history is stored

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const ctx = await browser.newContext();
  // The token as the sign-in page would keep it (this tab's sessionStorage).
  await ctx.addInitScript((t) => (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem('cloudcons.token', t), user);
  const first: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await ctx.newPage();
    await page.goto(`${url}/#/c/demo`);
    const ms = await page.waitForFunction(() => performance.getEntriesByName('cloudcons:first-output')[0]?.startTime, undefined, { timeout: 10_000 });
    first.push(Number(await ms.jsonValue()));
    await page.close();
  }
  console.log(`web: page open -> first history byte on screen (${HISTORY_LINES} lines of history, ${RUNS} loads): ${fmt(first)}`);

  const page = await ctx.newPage();
  await page.goto(`${url}/#/c/demo`);
  await page.getByRole('button', { name: 'Take lock' }).click();
  await page.getByTestId('mode').filter({ hasText: 'read-write' }).waitFor();
  const web = (await page.evaluate(async (n) => {
    const cc = (globalThis as unknown as { cloudcons: { probe(t: string): Promise<number> } }).cloudcons;
    const out: number[] = [];
    for (let i = 0; i < n + 20; i++) out.push(await cc.probe(String.fromCharCode(97 + (i % 26))));
    return out.slice(20); // warm-up
  }, N)) as number[];
  await page.close();
  console.log(`web: keystroke echo (${N} probes): ${fmt(web)}`);

  // The CLI on a pty, the same console: force the lock, then probe.
  const term = pty.spawn(process.execPath, [CLI, 'attach', 'demo', '-f'], { cols: 100, rows: 30, env: { ...process.env, CLOUDCONS_URL: url, CLOUDCONS_TOKEN: user } as Record<string, string> });
  let screen = '';
  let waiter: ((s: string) => void) | undefined;
  term.onData((d) => { screen += d; waiter?.(d); });
  const deadline = Date.now() + 10_000;
  while (!screen.includes('read-write') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const cli: number[] = [];
  for (let i = 0; i < N + 20; i++) {
    const ch = String.fromCharCode(65 + (i % 26));
    const t0 = performance.now();
    await new Promise<void>((resolve) => { waiter = (d) => { if (d.includes(ch)) { waiter = undefined; resolve(); } }; term.write(ch); });
    if (i >= 20) cli.push(performance.now() - t0);
  }
  term.kill();
  console.log(`cli: keystroke echo (${N} probes): ${fmt(cli)}`);
  await browser.close();
} finally {
  for (const k of kids) k.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
}
