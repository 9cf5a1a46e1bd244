// Console types and per-console behaviour end to end: real cloud and relay processes, the CLI on
// a pty, devices behind a TCP port and a unix socket. ondemand opens the device only while
// someone is attached; initcmd answers a login prompt; break sequences go from ^Ecl<c> to the
// device; `cloudcons console down|up` closes and reopens a console and the audit trail says who.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DeviceServer } from '../device-server.ts';
import { cleanup, cloudcons, createToken, freePort, startCloud, Terminal, tmpDir, until } from '../helpers.ts';

after(cleanup);

/** Runs the CLI without blocking this process (the devices live in it). */
async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const p = cloudcons(args, env);
  const code = await new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1)));
  return { code, out: p.out, err: p.err };
}

test('tcp + uds consoles: ondemand, initcmd, break sequences, console down/up, audit', async () => {
  const dir = tmpDir('consoles');
  const data = path.join(dir, 'data');
  const cloud = await startCloud(data);
  const relayTok = createToken(data, 'relay', 'edge1');
  const sw1 = await DeviceServer.start({ port: await freePort() });
  const vm1 = await DeviceServer.start({ path: path.join(dir, 'vm1.sock') });
  fs.writeFileSync(path.join(dir, 'relay.yaml'), `
relay: { name: edge1 }
breaks:
  x: { string: 'a\\db', delayMs: 50 }
consoles:
  sw1: { type: tcp, host: 127.0.0.1, port: ${sw1.port}, ondemand: true }
  vm1:
    type: uds
    path: ${dir}/vm1.sock
    break: 3
    initcmd: 'while read -r l; do case "$l" in *login:*) echo root; exit 0;; esac; done'
`);
  const relay = cloudcons(['relay', '--config', path.join(dir, 'relay.yaml'), '--spool', path.join(dir, 'spool'), '--cloud', cloud.url, '--token', relayTok]);
  const env = { CLOUDCONS_URL: cloud.url, CLOUDCONS_TOKEN: cloud.adminToken };
  await relay.waitFor(/console vm1 up/);
  await until('cloud lists both', async () => {
    const r = await run(['ls', '--json'], env);
    const cs = JSON.parse(r.out) as { name: string; state: string; reason?: string; ondemand?: boolean }[];
    return cs.length === 2 && cs.find((c) => c.name === 'vm1')?.state === 'up' ? cs : undefined;
  });
  const ls = await run(['ls'], env);
  assert.match(ls.out, /sw1\s+down\s+tcp\s+edge1\s+-\s+0\s+idle \(ondemand: opens when someone attaches\)/);
  assert.equal(sw1.connections, 0, 'ondemand: not opened while nobody is attached');

  // initcmd: answers the login prompt the device shows.
  await vm1.whenConnected();
  vm1.emit(Buffer.from('\r\nvm1 login: \n'));
  await until('initcmd typed the user name', () => vm1.received().toString() === 'root\n');

  // ondemand: attaching opens it; typing and output pass.
  const a = new Terminal(['attach', 'sw1'], env);
  await a.waitFor('[attached to sw1: read-write]');
  await until('sw1 opened on demand', () => sw1.connections === 1);
  await sw1.whenConnected();
  // Typed before the relay has it up, input is refused (and says so): wait for it, as a person would.
  await a.waitFor('[console up]');
  assert.match(a.screen, /\[console down: (idle|opening) \(ondemand: [^)]*\)\]/);
  a.write('show version\r');
  await until('typing reached the switch', () => sw1.received().includes('show version\r'));
  sw1.emit(Buffer.from('IOS 15.2\r\n'));
  await a.waitFor('IOS 15.2');
  a.write('\x05c.');

  // Break sequences: l0 is the console's default (3: "#."), lx a custom one, l? lists them.
  const b = new Terminal(['attach', 'vm1'], env);
  await b.waitFor('[attached to vm1: read-write]');
  vm1.clearReceived();
  b.write('\x05cl0');
  await b.waitFor('[cloudcons: break 0 sent]');
  b.write('\x05clx');
  await b.waitFor('[cloudcons: break x sent]');
  await until('break bytes at the device', () => vm1.received().toString() === '#.ab', 5000);
  b.write('\x05cl?');
  await b.waitFor(/3: "#\."\s+\(default: l0\)/);
  assert.match(b.screen, /x: "a\\\\db" \(delay 50 ms\)/);
  b.write('\x05cl9');
  await b.waitFor(/refused your break: no break sequence 9 on console vm1 \(there are: 1 2 3 4 x\)/);
  b.write('\x05c.');

  // console down / up.
  const down = await run(['console', 'down', 'vm1'], env);
  assert.equal(down.code, 0, down.err);
  assert.match(down.out, /console vm1: taken down \(relay edge1\)/);
  await until('vm1 down by admin', async () => /vm1\s+down\s+uds\s+edge1\s+-\s+0\s+down by admin \(cloudcons console up vm1 brings it back\)/.test((await run(['ls'], env)).out));
  const conns = vm1.connections;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(vm1.connections, conns, 'no reconnect while down by hand');
  const up = await run(['console', 'up', 'vm1'], env);
  assert.equal(up.code, 0, up.err);
  await until('vm1 reconnected', () => vm1.connections === conns + 1);
  const nope = await run(['console', 'down', 'vm9'], env);
  assert.equal(nope.code, 2);
  assert.match(nope.err, /console vm9 not found; known: sw1, vm1/);

  // The audit trail has the relay's events and who asked for down/up.
  const audit = (await run(['audit', 'vm1'], env)).out;
  for (const re of [/relay:edge1\s.*console\.initcmd\.start/, /relay:edge1\s.*console\.initcmd\.end.*exit 0/, /admin\s.*console\.down\.request/, /relay:edge1\s.*console\.manual\.down\s.*taken down by admin/, /relay:edge1\s.*console\.manual\.up\s.*brought up by admin/, /admin\s.*break\s.*break 0/]) {
    assert.match(audit, re);
  }
  await relay.kill();
});
