// Hostile queries against a real cloud process (issue 14, items 1 and 2): a read-only user floods
// replays over WebSockets, bursts HTTP replays and greps, sends patterns a backtracking engine
// chokes on; a user without rights sends a glob of many `*` against long console names. Through
// all of it /healthz (from a process of its own) stays fast, the cloud's memory stays bounded,
// the honest relay stays connected, and work ends when its requester leaves.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { cleanup, openPtyPeer, until } from '../helpers.ts';
import { assertResponsive, HEALTH_MAX_MS, hostileRig, type HostileRig, type WsPeer } from '../hostile-rig.ts';

after(cleanup);

const MiB = 1024 * 1024;
const LOG_BYTES = 16 * MiB;
const GREP_MS = 3000;
let rig: HostileRig;
let logEnd = 0;

/** CPU seconds (user + system) the process has used (/proc/PID/stat fields 14 and 15, in ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The stored end of ser1 (a replay of its last line answers it in a header). */
async function storedEnd(): Promise<number> {
  const r = await rig.as(rig.adminToken, '/v1/consoles/ser1/replay?tail=1');
  await r.arrayBuffer();
  return Number(r.headers.get('x-cloudcons-end'));
}

before(async () => {
  rig = await hostileRig('hq', { cloud: { args: ['--max-grep-ms', String(GREP_MS)] } });
  // The device prints 16 MiB of short numbered lines (many lines: what `replay 100000` looks for),
  // then one 300 KB line of a and b (what a pattern with a huge DFA thrashes on).
  const peer = openPtyPeer(rig.pair.peer);
  let x = 1;
  const ab = Array.from({ length: 300_000 }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) & 1 ? 'a' : 'b').join('');
  const lines = Buffer.from(Array.from({ length: LOG_BYTES / 32 }, (_, i) => `line ${String(i).padStart(10, '0')} ${'-'.repeat(15)}\n`).join('') + ab + '\n');
  for (let p = 0; p < lines.length;) {
    try { p += peer.write(lines.subarray(p, p + 65536)); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  await until('the cloud to store the whole log', async () => ((logEnd = await storedEnd()) >= lines.length ? true : undefined), 120_000, 500);
});

test('a replay flood over many sessions: /healthz stays fast, memory bounded, the relay connected, work ends at hang-up', { timeout: 180_000 }, async () => {
  const health = await rig.health(50);
  const cloudPid = rig.cloud.child.pid!;
  const rss0 = rig.rss();
  let rssMax = rss0;
  const sampler = setInterval(() => { rssMax = Math.max(rssMax, rig.rss()); }, 100);
  // Four sessions of `reader` (ro everywhere); two read what they get, two never read at all.
  const peers: WsPeer[] = [];
  for (let i = 0; i < 4; i++) {
    const p = await rig.socket('session', rig.reader);
    p.send({ t: 'attach', c: 'ser1', mode: 'spy' });
    await p.next((m) => m.t === 'history' && m.last === true);
    if (i >= 2) (p.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    peers.push(p);
  }
  const t0 = Date.now();
  for (let round = 0; round < 100; round++) for (const p of peers) p.send({ t: 'replay', lines: 100_000 });
  await new Promise((r) => setTimeout(r, 8000));
  const during = Date.now() - t0;
  // What the reading sessions got: histories of at most maxHistoryBytes, the rest refused at once.
  for (const p of peers.slice(0, 2)) {
    const hist = p.msgs.filter((m) => m.t === 'history' && m.kind === 'replay');
    const bytes = hist.reduce((a, m) => a + Buffer.from(String(m.d), 'base64').length, 0);
    const done = hist.filter((m) => m.last).length;
    assert.ok(done >= 1, 'at least one replay was sent in full');
    assert.ok(bytes <= (done + 1) * MiB, `${bytes} bytes for ${done} replays: at most 1 MiB each`);
    assert.ok(p.msgs.some((m) => m.t === 'notice' && /replay refused: this session is still sending the previous one/.test(String(m.text))));
  }
  // Hang up, then the cloud's CPU use falls back within a second or two.
  for (const p of peers) p.close();
  await new Promise((r) => setTimeout(r, 1500));
  const cpu0 = cpuSeconds(cloudPid);
  await new Promise((r) => setTimeout(r, 1000));
  const idleCpu = cpuSeconds(cloudPid) - cpu0;
  clearInterval(sampler);
  const h = await health.stop();
  const grew = (rssMax - rss0) / MiB;
  console.log(`replay flood: ${during} ms, /healthz p50 ${h.p50.toFixed(1)} p99 ${h.p99.toFixed(1)} max ${h.max.toFixed(1)} ms (${h.samples.length} samples); RSS ${(rss0 / MiB).toFixed(0)} -> max ${(rssMax / MiB).toFixed(0)} MiB (+${grew.toFixed(0)}); CPU 1.5-2.5 s after hang-up ${idleCpu.toFixed(2)} s`);
  assert.ok(h.samples.length > 50, `${h.samples.length} health samples`);
  assertResponsive(h, 'during the flood');
  // Bound: 4 query slots of reader x (1 MiB read + 256 KiB on the socket), frames and garbage.
  assert.ok(grew < 150, `the cloud grew by ${grew.toFixed(0)} MiB during the flood`);
  assert.ok(idleCpu < 0.2, `the cloud used ${idleCpu.toFixed(2)} s of CPU in the second after the flood's hang-up`);
  assert.doesNotMatch(rig.relay.out + rig.relay.err, /disconnected from cloud/, 'the honest relay stayed connected');
});

test('a burst of HTTP replays and greps by one user: beyond maxQueriesPerUser 429, the rest complete', { timeout: 120_000 }, async () => {
  // Six full replays at once; their bodies are not read yet, so each holds its slot.
  const replays = await Promise.all(Array.from({ length: 6 }, () => rig.as(rig.reader, '/v1/consoles/ser1/replay?from=0&format=raw')));
  const ok = replays.filter((r) => r.status === 200);
  const refused = replays.filter((r) => r.status === 429);
  assert.equal(ok.length, 4);
  assert.equal(refused.length, 2);
  for (const r of refused) assert.match((await r.json() as { error: { message: string } }).error.message, /user reader has 4 replay, export, grep or history requests running, the limit \(maxQueriesPerUser 4\): wait for one to end/);
  const grep = await rig.as(rig.reader, '/v1/grep?pattern=line%200000123456');
  assert.equal(grep.status, 429);
  await grep.arrayBuffer();
  // The admitted ones complete, byte for byte.
  for (const r of ok) assert.equal((await r.arrayBuffer()).byteLength, Number(r.headers.get('x-cloudcons-end')) - Number(r.headers.get('x-cloudcons-from')));
  const again = await rig.as(rig.reader, '/v1/grep?pattern=line%20000012345%5B6%5D');
  assert.equal(again.status, 200);
  const hits = (await again.text()).trim().split('\n').map((l) => JSON.parse(l) as { line?: string });
  assert.deepEqual(hits.map((h) => h.line), [`line 0000123456 ${'-'.repeat(15)}`]);
});

test('grep patterns: backreferences and lookaround are a clear 400; a catastrophic allowed one ends at its time bound, the cloud responsive', { timeout: 120_000 }, async () => {
  for (const [p, why] of [
    ['(a)\\1', /pattern: backreference \\1 cannot be matched in time linear in the output/],
    ['x(?=y)', /pattern: lookahead \(\?=\.\.\.\) cannot be matched/],
    ['(?<!x)y', /pattern: lookbehind \(\?<!\.\.\.\) cannot be matched/],
    ['a'.repeat(1001), /pattern: 1001 characters, longer than the 1000 this cloud accepts \(maxPatternLength\)/],
    ['(a{1000}){1000}', /pattern: too complex: it would compile to 1000000 matcher states, more than the 4000 allowed \(maxPatternStates\)/],
  ] as const) {
    const r = await rig.as(rig.reader, `/v1/grep?pattern=${encodeURIComponent(p)}`);
    assert.equal(r.status, 400, p);
    const e = (await r.json() as { error: { code: string; message: string } }).error;
    assert.equal(e.code, 'CC_ERR_BAD_PARAMETER');
    assert.match(e.message, why);
  }
  // (a|b)*a(a|b){1200}c: a DFA of 2^1200 states; on the 300 KB line of a and b every byte is a
  // new one. It runs until maxGrepMs, in slices, then says it stopped.
  const health = await rig.health(20); // the scan lasts ~3 s: at least 100 samples
  const t0 = Date.now();
  const r = await rig.as(rig.reader, `/v1/grep?pattern=${encodeURIComponent('(a|b)*a(a|b){1200}c')}`);
  const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as { truncated?: number; reason?: string });
  const took = Date.now() - t0;
  const h = await health.stop();
  console.log(`catastrophic grep: ${took} ms, /healthz p99 ${h.p99.toFixed(1)} max ${h.max.toFixed(1)} ms (${h.samples.length} samples)`);
  assert.equal(r.status, 200);
  assert.match(String(lines.at(-1)?.reason), new RegExp(`grep stopped out of time after ${GREP_MS} ms \\(maxGrepMs\\), having scanned \\d+ bytes`));
  assert.ok(took < GREP_MS + 3000, `took ${took} ms`);
  assertResponsive(h, 'during the grep');
});

test('a user without rights: a glob of many * against long console names answers at once, evaluated against nothing', { timeout: 60_000 }, async () => {
  // The hostile relay publishes 40 consoles with names of 128 characters.
  const evil = await rig.socket('relay', rig.evil);
  const names = Array.from({ length: 40 }, (_, i) => `${'a'.repeat(124)}${String(i).padStart(4, '0')}`);
  evil.send({ t: 'hello', relay: 'evil', boot: 'b1', consoles: names.map((name) => ({ name, type: 'serial', state: 'up', since: 1 })) });
  await evil.next((m) => m.t === 'welcome');
  // As a regex (^.*a.*a...b$) this glob backtracks for hours on each of those names; matched
  // directly it takes microseconds. The bound (HEALTH_MAX_MS) leaves room for a loaded machine.
  const glob = `${'*a'.repeat(60)}*b`;
  for (const who of [rig.nobody, rig.reader]) {
    const t0 = Date.now();
    const r = await rig.as(who, `/v1/grep?pattern=x&console=${encodeURIComponent(glob)}`);
    const body = await r.text();
    const ms = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(body, '', 'no console matches');
    assert.ok(ms < HEALTH_MAX_MS, `answered in ${ms} ms`);
  }
  const t0 = Date.now();
  const r = await rig.as(rig.nobody, `/v1/grep?pattern=x&console=${encodeURIComponent('*'.repeat(257))}`);
  assert.equal(r.status, 400);
  assert.match(await r.text(), /console: glob .*: 257 characters, longer than 256/);
  assert.ok(Date.now() - t0 < HEALTH_MAX_MS);
  evil.close();
});
