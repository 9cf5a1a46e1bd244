// `cloudcons relays` end to end, a real cloud and real relay processes: what a relay runs (its
// hello), its connection, its spool's backlog and its last upload; a relay without a name in its
// config takes its token's and keeps its spool across restarts; a name that is not the token's is
// refused clearly, and so is a spool that belongs to another relay.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pkg from '../../package.json' with { type: 'json' };
import type { RelayView } from '../../cloud/core/core.ts';
import { cleanup, cloudcons, createToken, freePort, startCloud, tmpDir, until } from '../helpers.ts';

after(cleanup);

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const p = cloudcons(args, env);
  const code = await new Promise<number>((r) => p.child.once('close', (c) => r(c ?? -1)));
  return { code, out: p.out, err: p.err };
}

/** A relay's environment: its token in a file, its state (the default spool) under `state`, no
 *  systemd StateDirectory from the environment the tests run in. */
function relayEnv(dir: string, token: string, state: string): NodeJS.ProcessEnv {
  const file = path.join(dir, `token-${token.slice(-6)}`);
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { CLOUDCONS_TOKEN_FILE: file, XDG_STATE_HOME: state, STATE_DIRECTORY: '' };
}

test('a relay without a name takes its token\'s, says what it runs (cloudcons relays), keeps its spool across restarts; other names and other relays\' spools are refused clearly', { timeout: 90_000 }, async () => {
  const dir = tmpDir('relays-name');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data, 0);
  const edge7 = createToken(data, 'relay', 'edge7');
  const edge8 = createToken(data, 'relay', 'edge8');
  const admin = { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: cloud.adminToken };
  const yaml = path.join(dir, 'relay.yaml');
  fs.writeFileSync(yaml, 'consoles:\n  c7: { type: exec, command: [/bin/sh, -c, "echo started; exec sleep 100000"] }\n');
  const state = path.join(dir, 'state');
  const spool = path.join(state, 'cloudcons', 'spool', 'default');
  const relays = async () => JSON.parse((await run(['relays', '--json'], admin)).out) as RelayView[];

  let relay = cloudcons(['relay', '--config', yaml, '--cloud', cloud.url], relayEnv(dir, edge7, state));
  await relay.waitFor(/relay: \(no name in relay\.yaml: it takes its token's, which the cloud says\) holding c7/);
  await relay.waitFor(/this relay is edge7: the name its token was made for/);
  const r7 = await until('edge7 in cloudcons relays with c7', async () => (await relays()).find((r) => r.name === 'edge7' && r.consoles.includes('c7')));
  assert.deepEqual([r7.version, r7.protocol, r7.arch, r7.connected], [pkg.version, 1, process.arch, true]);
  assert.ok(r7.os?.includes(os.release()), `os ${r7.os} names the kernel release ${os.release()}`);
  assert.ok(!/CC_ERR/.test(relay.err), relay.err);
  assert.equal(fs.readFileSync(path.join(spool, '.relay-name'), 'utf8'), 'edge7\n', 'the learned name is recorded in the fixed default spool');
  const human = await run(['relays'], admin);
  assert.match(human.out, /^NAME\s+VERSION\s+OS\s+CONNECTED\s+CONSOLES\s+BACKLOG\s+OLDEST UNSENT\s+LAST UPLOAD\n/);
  assert.match(human.out, new RegExp(`\\nedge7\\s+${pkg.version.replace(/\./g, '\\.')}\\s+.*${process.arch}\\s+up \\d+s\\s+1\\s`));

  // Restarted: the same spool, the name from it, the console still edge7's and its output one stream.
  await relay.kill();
  relay = cloudcons(['relay', '--config', yaml, '--cloud', cloud.url], relayEnv(dir, edge7, state));
  await relay.waitFor(new RegExp(`relay: edge7 \\(the name its spool ${spool.replace(/[/.]/g, '\\$&')} was first used under; relay\\.yaml names none\\) holding c7`));
  await until('c7 up again', async () => (await relays()).find((r) => r.name === 'edge7' && r.connected && r.connectedSince! > r7.connectedSince!));
  const replay = async () => (await run(['replay', 'c7'], admin)).out;
  await until('both starts in c7\'s one stream', async () => ((await replay()).match(/started/g)?.length === 2 ? true : undefined), 20_000);
  assert.deepEqual(fs.readdirSync(path.join(state, 'cloudcons', 'spool')), ['default'], 'no second spool');
  await relay.kill();

  // The same box given relay edge8's token: its spool is edge7's, so it says hello as edge7 and the cloud refuses.
  relay = cloudcons(['relay', '--config', yaml, '--cloud', cloud.url], relayEnv(dir, edge8, state));
  await relay.waitFor(/cloud: CC_ERR_FORBIDDEN: this token belongs to relay edge8, but the relay says it is edge7 \(relay\.name in its config, or the name its spool was first used under\): nothing is published\. Give the relay relay edge7's token, or set relay\.name to edge8/);
  await relay.kill();
  assert.equal((await relays()).find((r) => r.name === 'edge8'), undefined, 'edge8 published nothing');

  // A configured name that is not its token's (its own spool): refused with the same clear error.
  const named = path.join(dir, 'named.yaml');
  fs.writeFileSync(named, 'relay: { name: other }\nconsoles:\n  c9: { type: exec, command: cat }\n');
  relay = cloudcons(['relay', '--config', named, '--spool', path.join(dir, 'spool-other'), '--cloud', cloud.url], relayEnv(dir, edge7, state));
  await relay.waitFor(/this token belongs to relay edge7, but the relay says it is other .*: nothing is published/);
  await relay.kill();
  const ls = JSON.parse((await run(['ls', '--json'], admin)).out) as { name: string }[];
  assert.deepEqual(ls.map((c) => c.name), ['c7'], 'c9 was not published under any name');

  // A configured name and a spool recorded for another relay: refused at start, nothing opened.
  const wrong = await run(['relay', '--config', named, '--spool', spool, '--cloud', cloud.url], relayEnv(dir, edge7, state));
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.err, new RegExp(`spool ${spool.replace(/[/.]/g, '\\$&')} holds relay edge7's output \\(.*\\.relay-name\\), but relay\\.yaml names this relay other: give relay other a spool of its own`));
  assert.ok(!fs.existsSync(path.join(spool, 'c9')), 'nothing of c9 in edge7\'s spool');
});

test('cloudcons relays: the spool backlog and its oldest byte\'s age grow while the cloud refuses uploads and drain when it takes them; a relay cut off reconnects', { timeout: 90_000 }, async (t) => {
  const dir = tmpDir('relays-backlog');
  const data = path.join(dir, 'data');
  const port = await freePort();
  let cloud = await startCloud(data, port, { args: ['--relay-status-min-ms', '0'] });
  const tok = createToken(data, 'relay', 'edge1');
  // Segment uploads (HTTP) go through this proxy, which refuses them while `refuse` is set; the
  // WebSocket goes to the cloud itself.
  let refuse = true;
  let refused = 0;
  const proxy = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      if (refuse && /\/segments/.test(req.url ?? '')) { refused++; res.writeHead(503).end('the test refuses uploads'); return; }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length', 'transfer-encoding'].includes(k))) as Record<string, string>;
      fetch(`${cloud.url}${req.url}`, { method: req.method, headers, body: ['GET', 'HEAD'].includes(req.method!) ? undefined : Buffer.concat(parts) })
        .then(async (r) => { res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' }).end(Buffer.from(await r.arrayBuffer())); })
        .catch((e: Error) => res.writeHead(502).end(e.message));
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  t.after(() => { proxy.closeAllConnections(); proxy.close(); });
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  fs.writeFileSync(path.join(dir, 'relay.yaml'), 'relay: { name: edge1 }\nconsoles:\n  tick: { type: exec, command: [/bin/sh, -c, "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done"] }\n');
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', proxyUrl, '--ws-url', `${cloud.url.replace(/^http/, 'ws')}/v1/relay`,
    '--segment-ms', '300', '--status-ms', '200', '--upload-max-backoff-ms', '1000', '--reconnect-max-backoff-ms', '500'], relayEnv(dir, tok, path.join(dir, 'state')));
  const api = async () => {
    const r = await fetch(`${cloud.url}/v1/relays`, { headers: { authorization: `Bearer ${cloud.adminToken}` } }).catch(() => undefined);
    return r?.ok ? ((await r.json()) as { relays: RelayView[] }).relays.find((x) => x.name === 'edge1') : undefined;
  };

  // Refused: the backlog grows, and so does its oldest byte's age; no upload.
  const first = await until('a backlog reported', async () => { const r = await api(); return r?.spool?.bytes && r.spool.oldestUnsentMs! > 1000 ? r : undefined; }, 20_000);
  await until('the relay\'s uploads refused', () => (refused >= 2 ? true : undefined), 20_000);
  const later = await until('the backlog grown', async () => { const r = await api(); return r!.spool!.bytes > first.spool!.bytes && r!.spool!.reportedAt > first.spool!.reportedAt + 1500 ? r : undefined; }, 20_000);
  // Reports 1.5 s apart, the same oldest byte: its age grew by about that (less the difference of
  // the two reports' transit times, which a loaded machine stretches).
  assert.ok(later.spool!.oldestUnsentMs! >= first.spool!.oldestUnsentMs! + 1000, `oldest unsent ${first.spool!.oldestUnsentMs} then ${later.spool!.oldestUnsentMs} ms`);
  assert.equal(later.lastUpload, undefined);
  const cliView = (JSON.parse((await run(['relays', '--json'], { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: cloud.adminToken })).out) as RelayView[])[0];
  assert.ok(cliView.spool!.bytes >= later.spool!.bytes, 'cloudcons relays --json says the same');

  // Taken: the backlog drains to what the active log holds (a fraction of a second of output).
  const opened = Date.now();
  refuse = false;
  const drained = await until('the backlog drained', async () => { const r = await api(); return r?.lastUpload && r.spool!.reportedAt > r.lastUpload && r.spool!.bytes < 2000 && (r.spool!.oldestUnsentMs ?? 0) < 3000 ? r : undefined; }, 30_000);
  assert.ok(drained.lastUpload! >= opened, 'the last upload is after the uploads were let through');

  // Cut off (the cloud killed) while the device prints, then back: reconnected, and what was
  // spooled meanwhile uploaded.
  await cloud.proc.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 1500));
  const back = Date.now();
  cloud = await startCloud(data, port, { args: ['--relay-status-min-ms', '0'] });
  const again = await until('connected again, the backlog drained', async () => { const r = await api(); return r?.connected && r.connectedSince! >= back && r.lastUpload! >= back && r.spool!.reportedAt > r.lastUpload! && r.spool!.bytes < 2000 ? r : undefined; }, 30_000);
  assert.equal(again.consoles.join(), 'tick');
  await relay.kill();
  const gone = await until('the relay down, last seen', async () => { const r = await api(); return r && !r.connected ? r : undefined; });
  assert.ok(gone.lastSeen! >= again.spool!.reportedAt, 'last seen when it went away');
});
