import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CloudPorts, Principal } from './ports.ts';
import { encodeGapSegment, encodeSegment, segmentKey } from '../../protocol/segment.ts';
import { cleanup } from '../../test/helpers.ts';
import { alice, b64, bob, coreRig as setup, relay } from '../../test/core-rig.ts';

after(cleanup);

test('the first rw attach takes the lock, the second joins as spy and cannot type', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(sender.to('A', 'attached')[0].mode, 'rw');
  assert.equal(sender.to('B', 'attached')[0].mode, 'spy');
  assert.match(String(sender.to('B', 'notice')[0].text), /in use by alice/);
  await core.clientMessage('B', bob, { v: 1, t: 'in', d: b64('rm -rf /\r') });
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('uptime\r') });
  const toRelay = sender.to('R', 'in');
  assert.equal(toRelay.length, 1, 'only the writer\'s input reaches the relay');
  assert.equal(Buffer.from(String(toRelay[0].d), 'base64').toString(), 'uptime\r');
  assert.equal(toRelay[0].fence, 1);
  const audit = await ports.audit.list('web01');
  const denied = audit.find((r) => r.type === 'input.denied');
  assert.equal(denied?.user, 'bob');
  assert.equal(Buffer.from(denied!.data!, 'base64').toString(), 'rm -rf /\r');
  const accepted = audit.find((r) => r.type === 'input');
  assert.equal(accepted?.user, 'alice');
  assert.equal(accepted?.fence, 1);
});

test('force moves the lock: the old writer is bumped to spy and its input is refused', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'force' });
  const bumped = sender.to('A', 'mode')[0];
  assert.deepEqual({ mode: bumped.mode, by: bumped.bumpedBy }, { mode: 'spy', by: 'bob' });
  assert.equal(sender.to('B', 'attached')[0].mode, 'rw');
  assert.equal(sender.to('B', 'attached')[0].fence, 2);
  assert.deepEqual(sender.to('R', 'fence').map((m) => m.fence), [1, 2]);
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('x') });
  await core.clientMessage('B', bob, { v: 1, t: 'in', d: b64('y') });
  assert.deepEqual(sender.to('R', 'in').map((m) => [m.d, m.fence]), [[b64('y'), 2]]);
  const types = (await ports.audit.list('web01')).map((r) => `${r.type}:${r.user}`);
  for (const t of ['lock.take:alice', 'lock.force:bob', 'lock.bumped:alice', 'input.denied:alice', 'input:bob']) assert.ok(types.includes(t), `${t} in ${types}`);
  const who = await core.who('web01');
  assert.deepEqual(who.map((v) => [v.user, v.mode]), [['alice', 'spy'], ['bob', 'rw']]);
});

test('the lock is freed when the writer leaves, and ^Eca then takes it', async () => {
  const { core, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.clientMessage('B', bob, { v: 1, t: 'lock', op: 'take' });
  assert.match(String(sender.to('B', 'notice').at(-1)?.text), /in use by alice/);
  await core.clientClosed('A');
  await core.clientMessage('B', bob, { v: 1, t: 'lock', op: 'take' });
  assert.equal(sender.to('B', 'mode').at(-1)?.mode, 'rw');
});

test('output is stored once and shown live once, even when the relay resends it', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('hello ') });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 3, ts: 2, d: b64('lo world') });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 3, d: b64('hello world') });
  assert.equal((await core.log.read('web01', 0, 100)).toString(), 'hello world');
  const live = sender.to('A', 'out').map((m) => Buffer.from(String(m.d), 'base64').toString()).join('');
  assert.equal(live, 'hello world');
});

test('segments are taken only from the relay that publishes the console; a gap segment is audited and announced', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  const seg = await encodeSegment('web01', [{ offset: 0, ts: 1, data: Buffer.from('boot\n') }]);
  await assert.rejects(core.ingestSegment({ ...relay, name: 'other' }, 'web01', seg), /published by relay edge1, not other/);
  await assert.rejects(core.ingestSegment(alice, 'web01', seg), /only relay tokens/);
  await assert.rejects(core.ingestSegment(relay, 'web99', seg), /not registered/);
  assert.deepEqual(await core.ingestSegment(relay, 'web01', seg), { key: segmentKey({ console: 'web01', start: 0, end: 5, t0: 1, t1: 1 }), start: 0, end: 5, created: true });
  assert.equal((await core.ingestSegment(relay, 'web01', seg)).created, false);
  await core.ingestSegment(relay, 'web01', encodeGapSegment('web01', { offset: 5, bytes: 1000, t0: 2, t1: 3, reason: 'relay spool full' }));
  assert.match(String(sender.to('A', 'notice').at(-1)?.text), /1000 bytes lost at offset 5 .*relay spool full/);
  const audit = await ports.audit.list('web01');
  assert.equal(audit.filter((r) => r.type === 'output.gap').length, 1);
  assert.equal(await core.log.end('web01'), 1005);
});

test('output a segment brings before (or instead of) its live copy reaches viewers once, in frame-sized pieces', async () => {
  const { core, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('live ') });
  // 0-5 arrived live; 5-60005 only in the segment (the live message is slower than the upload).
  const big = Buffer.alloc(60_000, 'x');
  const seg = await encodeSegment('web01', [{ offset: 0, ts: 1, data: Buffer.from('live ') }, { offset: 5, ts: 2, data: big }], { blockBytes: 16_384 });
  await core.ingestSegment(relay, 'web01', seg);
  const outs = sender.to('A', 'out').map((m) => ({ o: Number(m.o), d: Buffer.from(String(m.d), 'base64') }));
  assert.deepEqual(outs.map((m) => [m.o, m.d.length]), [[0, 5], [5, 22_528], [22_533, 22_528], [45_061, 14_944]]);
  assert.ok(Buffer.concat(outs.map((m) => m.d)).equals(Buffer.concat([Buffer.from('live '), big])));
  // The slow live copy arrives after the segment: stored already, so not shown again.
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 5, ts: 2, d: big.subarray(0, 20_000).toString('base64') });
  assert.equal(sender.to('A', 'out').length, 4);
  // A segment of output every viewer already had live brings nothing new.
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 60_005, ts: 3, d: b64('tail') });
  await core.ingestSegment(relay, 'web01', await encodeSegment('web01', [{ offset: 60_005, ts: 3, data: Buffer.from('tail') }]));
  assert.equal(sender.to('A', 'out').length, 5);
});

test('attaching to an unknown console names the known ones', async () => {
  const { core } = await setup();
  await assert.rejects(core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web99', mode: 'rw' }), /console web99 not found; known: web01/);
});

test('a relay that disconnects takes its consoles down, and input is refused with the reason', async () => {
  const { core, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.relayClosed('R');
  assert.equal(sender.to('A', 'state').at(-1)?.state, 'down');
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('x') });
  assert.match(String(sender.to('A', 'notice').at(-1)?.text), /console is down/);
  assert.equal((await core.getConsole(alice, 'web01')).state, 'down');
});

test('a relay that re-dialled while input was on its way gets it on its new connection; a relay gone for good: the writer is told and the audit says so', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  // The registry still named R when the input was read; meanwhile the relay said hello on R2
  // (make-before-break) and closed R.
  sender.gone.add('R');
  sender.beforeRefusal = async () => {
    sender.beforeRefusal = undefined;
    await core.relayMessage('R2', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 1 }] });
  };
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('uptime\r') });
  assert.deepEqual(sender.to('R2', 'in').map((m) => Buffer.from(String(m.d), 'base64').toString()), ['uptime\r']);
  await core.clientMessage('A', alice, { v: 1, t: 'break', seq: '0' });
  assert.equal(sender.to('R2', 'break').length, 1);
  assert.deepEqual(sender.to('A', 'notice'), [], 'nothing to tell the writer');

  // Now R2 is gone too and no other connection has said hello: nothing reached a relay.
  sender.gone.add('R2');
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('reboot\r') });
  await core.clientMessage('A', alice, { v: 1, t: 'break', seq: '0' });
  assert.deepEqual(sender.to('A', 'notice').map((m) => m.text), [
    '[cloudcons: input not sent: relay edge1 is not connected (it may be reconnecting); try again]',
    '[cloudcons: break not sent: relay edge1 is not connected (it may be reconnecting); try again]',
  ]);
  const trail = (await ports.audit.list('web01')).filter((r) => r.type.startsWith('input') || r.type.startsWith('break'));
  assert.deepEqual(trail.map((r) => `${r.type}:${r.detail ?? Buffer.from(r.data ?? '', 'base64').toString()}`), [
    'input:uptime\r', 'break:break 0',
    'input:reboot\r', 'input.undelivered:relay edge1 is not connected (it may be reconnecting); try again',
    'break:break 0', 'break.undelivered:break 0: relay edge1 is not connected (it may be reconnecting); try again',
  ]);
});

test('a relay cannot publish output for a console another relay announced; its own second connection (make-before-break) can', async () => {
  const { core, sender } = await setup();
  const other: Principal = { kind: 'relay', name: 'edge2', admin: false, tokenId: 'r2' };
  await core.relayMessage('R2', other, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('spoof') });
  assert.equal(await core.log.end('web01'), 0);
  assert.match(String(sender.to('R2', 'error')[0].message), /console web01 is not published by relay edge2/);
  await core.relayMessage('R3', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('mine') });
  assert.equal(await core.log.end('web01'), 4);
});

test('a restarted cloud learns fences from the relay and never reuses one', async () => {
  const { core, sender } = await setup();
  await core.relayMessage('R', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 1, fence: 9 }] });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(sender.to('A', 'attached')[0].fence, 10);
});

test('a writer who re-attached before the relay did gets a fence above what the relay has seen', async () => {
  const { core, sender } = await setup();
  await core.relayClosed('R'); // as after a cloud restart: the writer is back first
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(sender.to('A', 'attached')[0].fence, 1);
  await core.relayMessage('R', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 1, fence: 7 }] });
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('after') });
  assert.deepEqual(sender.to('R', 'in').map((m) => m.fence), [8]);
});

test('live mode `watched`: the relay is told to stream a console while someone is attached, from the stored end, and to stop when the last one leaves', async () => {
  const { core, sender } = await setup({ live: 'watched' });
  const welcome = sender.to('R', 'welcome')[0];
  assert.equal(welcome.live, 'watched');
  assert.deepEqual(welcome.watched, [], 'nobody watches yet');
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('boot\r\n') });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  assert.deepEqual(sender.to('R', 'watch'), [{ v: 1, t: 'watch', c: 'web01', on: true, from: 6 }]);
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  for (let id = 1; id <= 6; id++) await core.clientMessage('B', bob, { v: 1, t: 'ping', id });
  assert.equal(sender.to('R', 'watch').length, 3, 'repeated on attach and every 6th heartbeat (the relay ignores an `on` it already follows)');
  assert.ok(sender.to('R', 'watch').every((m) => m.on === true));
  // The relay reconnects: its welcome names the watched consoles.
  await core.relayMessage('R2', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 1 }] });
  assert.deepEqual(sender.to('R2', 'welcome')[0].watched, ['web01']);
  await core.clientClosed('A');
  assert.equal(sender.to('R2', 'watch').filter((m) => m.on === false).length, 0, 'bob still watches');
  await core.clientClosed('B');
  assert.deepEqual(sender.to('R2', 'watch').at(-1), { v: 1, t: 'watch', c: 'web01', on: false });
});

test('live mode `always` (the embedded default): no watch messages, a plain welcome (the relay name and the ends)', async () => {
  const { core, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.clientClosed('A');
  assert.equal(sender.to('R', 'watch').length, 0);
  assert.deepEqual(Object.keys(sender.to('R', 'welcome')[0]).sort(), ['ends', 'relay', 't', 'v']);
});

test('input typed at a password prompt is audited redacted (also when refused); after the prompt, in clear', async () => {
  const { core, ports } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  let o = 0;
  const out = async (s: string) => { await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o, ts: Date.now(), d: b64(s) }); o += Buffer.byteLength(s); };
  await out('web01 login: ');
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('root\r') });
  await out('root\r\nPass'); // the prompt split across two output messages
  await out('word: ');
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('hunter2\r') });
  await core.clientMessage('B', bob, { v: 1, t: 'in', d: b64('bobsecret\r') });
  await out('\r\n\x1b[1mroot@web01:~#\x1b[0m ');
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('uname -a\r') });
  const recs = (await ports.audit.list('web01')).filter((r) => r.type.startsWith('input'));
  const shown = recs.map((r) => [r.type, r.user, r.data ? Buffer.from(r.data, 'base64').toString() : r.detail]);
  assert.deepEqual([shown[0], shown[1], shown[3]], [
    ['input', 'alice', 'root\r'],
    ['input', 'alice', '[redacted: 8 bytes typed at a password prompt]'],
    ['input', 'alice', 'uname -a\r'],
  ]);
  assert.deepEqual(shown[2].slice(0, 2), ['input.denied', 'bob']);
  assert.match(String(shown[2][2]), / \[redacted: 10 bytes typed at a password prompt\]$/, 'the reason, then the redaction');
  assert.ok(!JSON.stringify(await ports.audit.list('web01')).includes(b64('hunter2\r')), 'the password is nowhere in the audit');
});

/** A writer alice at web01 and what the audit says she typed (the bytes, or the redaction). */
async function typist() {
  const { core, ports } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  let o = 0;
  return {
    ports,
    /** Output of web01 at offset `at` (default: where the last ended). */
    out: async (s: string | Buffer, at = o) => { const b = Buffer.from(s); await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: at, ts: Date.now(), d: b.toString('base64') }); o = at + b.length; },
    type: (s: string) => core.clientMessage('A', alice, { v: 1, t: 'in', d: b64(s) }),
    typed: async () => (await ports.audit.list('web01')).filter((r) => r.type === 'input').map((r) => (r.data ? Buffer.from(r.data, 'base64').toString() : r.detail)),
  };
}
const redacted = (n: number) => `[redacted: ${n} bytes typed at a password prompt]`;

test('every key typed at a prompt that echoes * is audited redacted, erases too; after Enter, input is audited in clear', async () => {
  const { out, type, typed } = await typist();
  await out('alice@web01:~$ sudo -i\r\n[sudo] password for alice: '); // sudo with pwfeedback
  for (const key of 'hunter2') { await type(key); await out('*'); }
  await type('\x7f');
  await out('\b \b\x1b[K');
  await type('3');
  await out('*');
  await type('\r');
  await out('\r\n');
  await type('id\r');
  assert.deepEqual(await typed(), [...Array(10).fill(redacted(1)), 'id\r']);
});

test('a prompt another Lambda instance saw keeps the keys this one sees echoed redacted, until the newline', async () => {
  const { ports, out, type, typed } = await typist();
  // Another instance handled the prompt's output (bytes 0..27 of web01) and set the registry's state.
  await ports.consoles.put({ ...(await ports.consoles.get('web01'))!, secretPrompt: true });
  await type('h');
  await out('*', 27);
  await type('i');
  await out('*');
  await type('\r');
  await out('\r\nroot@web01:~# ');
  await type('ls\r');
  assert.deepEqual(await typed(), [redacted(1), redacted(1), redacted(1), 'ls\r']);
});

test('prompts with colons inside, terminal sequences after, non-English words split inside a character, long key paths: input redacted', async () => {
  const prompts: (string | Buffer)[][] = [
    ["Password for 'https://alice@git.example.com': "],
    ['Password: \x1b(B\x1b[m'],
    [Buffer.from('[sudo] Passwort f\xc3', 'latin1'), Buffer.from('\xbcr alice: ', 'latin1')],
    ['密码', '：'],
    [`Enter passphrase for /home/alice/${'keys/'.repeat(100)}`, 'id_ed25519: '],
  ];
  const { out, type, typed } = await typist();
  for (const pieces of prompts) {
    for (const p of pieces) await out(p);
    await type('s3cret\r');
    await out('\r\n$ ');
    await type('ls\r');
  }
  assert.deepEqual(await typed(), prompts.flatMap(() => [redacted(7), 'ls\r']));
});

test('a password prompt that reaches the cloud only in a segment (live mode watched: printed while nobody watched) redacts what is typed at it', async () => {
  const { core, ports } = await setup({ live: 'watched' });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  const seg = await encodeSegment('web01', [{ offset: 0, ts: Date.now(), data: Buffer.from('web01 login: root\r\nPassword: ') }]);
  await core.ingestSegment(relay, 'web01', seg);
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('s3cret\r') });
  const input = (await ports.audit.list('web01')).filter((r) => r.type === 'input');
  assert.deepEqual(input.map((r) => [r.data, r.detail]), [[undefined, redacted(7)]]);
});

test('with redaction off, input at a password prompt is audited in clear', async () => {
  const { core, ports } = await setup({ redactSecrets: false });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: Date.now(), d: b64('Password: ') });
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('hunter2\r') });
  const rec = (await ports.audit.list('web01')).find((r) => r.type === 'input');
  assert.equal(Buffer.from(rec!.data!, 'base64').toString(), 'hunter2\r');
});

test('access rules: attach alone lets a user attach rw (a writer sees its console); spy alone downgrades rw to spy; neither hides the console', async () => {
  const { core, ports, sender } = await setup({ accessCacheMs: 0 });
  assert.ok(await ports.access.put({ rules: [{ consoles: 'web01', who: 'alice', allow: ['attach'] }, { consoles: 'web01', who: 'bob', allow: ['spy'] }] }, 0));
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(sender.to('A', 'attached')[0]?.mode, 'rw');
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(sender.to('B', 'attached')[0]?.mode, 'spy');
  assert.match(String(sender.to('B', 'notice')[0]?.text), /you may not write to web01/);
  const carol: Principal = { kind: 'user', name: 'carol', admin: false, tokenId: (await ports.tokens.create({ kind: 'user', name: 'carol' })).id };
  await assert.rejects(core.clientMessage('C', carol, { v: 1, t: 'attach', c: 'web01', mode: 'spy' }), /console web01 not found; known: \(none\)/);
});

test('a relay is who its token says: its config may write the name in capitals, another name is refused whole, closed and audited', async () => {
  const { core, sender, ports } = await setup();
  await core.relayMessage('R2', relay, { v: 1, t: 'hello', relay: 'Edge1', boot: 'b2', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 1 }] });
  assert.deepEqual(sender.to('R2', 'error'), [], 'Edge1 is edge1');
  await core.relayMessage('R3', relay, { v: 1, t: 'hello', relay: 'edge2', boot: 'b3', consoles: [{ name: 'web02', type: 'serial', state: 'up', since: 1 }] });
  assert.match(String(sender.to('R3', 'error')[0]?.message), /^this token belongs to relay edge1, but the relay says it is edge2 .*: nothing is published\. Give the relay relay edge2's token, or set relay\.name to edge1/);
  // Refused whole: no welcome, nothing registered, the connection closed.
  assert.deepEqual(sender.to('R3', 'welcome'), []);
  assert.equal(await ports.consoles.get('web02'), undefined);
  assert.deepEqual(sender.closed.filter((c) => c.conn === 'R3').map((c) => c.code), [4003]);
  assert.ok((await ports.audit.list('_cloud')).some((r) => r.type === 'relay.name' && r.user === 'relay:edge1'));
});

// ------------------------------------------------------- issue 14: re-checks on the server's clock

const fromB64 = (m: Record<string, unknown>) => Buffer.from(String(m.d), 'base64').toString();
const auditTypes = async (ports: CloudPorts, console = 'web01') => (await ports.audit.list(console)).map((r) => `${r.type}:${r.user}`);

test('a revoked token: input right after the revocation is refused (not forwarded), audited, and the connection closed, whatever its pings say', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('before\r') });
  for (let id = 1; id <= 9; id++) await core.clientMessage('A', alice, { v: 1, t: 'ping', id });
  await ports.tokens.revoke(alice.tokenId, 'root', Date.now()); // no hook: the store alone
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('after\r') });
  await core.clientMessage('A', alice, { v: 1, t: 'break', seq: '0' });
  assert.deepEqual(sender.to('R', 'in').map(fromB64), ['before\r'], 'nothing after the revocation reaches the relay');
  assert.equal(sender.to('R', 'break').length, 0);
  assert.equal(sender.closed[0]?.conn, 'A');
  assert.equal(sender.closed[0]?.code, 4001);
  assert.match(String(sender.to('A', 'error')[0]?.message), new RegExp(`your token ${alice.tokenId} was revoked at .* by root: sign in again`));
  const types = await auditTypes(ports);
  assert.ok(types.includes('input.denied:alice') && types.includes('session.ended:alice'), types.join(' '));
  assert.deepEqual(await ports.sessions.byConn('A'), [], 'its session ended with the token');
  assert.equal((await ports.locks.get('web01')).session, undefined, 'its write lock was released');
  assert.ok((await ports.audit.list('_cloud')).some((r) => r.type === 'auth.ended' && r.user === 'alice'));
});

test('tokenRevoked closes every connection of that token at once (not the owner\'s others); recheckConnection finds expiry and revocation on its own', async () => {
  const { core, ports, sender, clock } = await setup();
  const second = await ports.tokens.create({ kind: 'user', name: 'alice' });
  const alice2: Principal = { ...alice, tokenId: second.id };
  const open = new Map<string, Principal>([['A', alice], ['A2', alice2], ['B', bob]]);
  ports.connections = { of: async (w) => [...open].filter(([, p]) => p.kind === w.kind && p.name === w.name).map(([conn, who]) => ({ conn, who })) };
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.clientMessage('A2', alice2, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  const info = await ports.tokens.revoke(alice.tokenId, 'root', Date.now());
  assert.equal(await core.tokenRevoked(info!), 1);
  assert.deepEqual(sender.closed.map((c) => [c.conn, c.code]), [['A', 4001]]);
  assert.equal(await core.recheckConnection('A2', alice2), true, 'the other token of alice still counts');
  // Expiry, with no message from the client at all.
  const brief: Principal = { ...bob, expires: Date.now() + 60_000 };
  await core.clientMessage('B', brief, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  assert.equal(await core.recheckConnection('B', brief), true);
  clock.at = Date.now() + 61_000;
  assert.equal(await core.recheckConnection('B', brief), false);
  assert.match(String(sender.to('B', 'error')[0]?.message), /your token .* expired at .*: sign in again/);
  // A relay's token: its connection closes, its consoles go down.
  clock.at = undefined;
  await ports.tokens.revoke(relay.tokenId, 'root', Date.now());
  assert.equal(await core.recheckConnection('R', relay), false);
  assert.equal((await ports.consoles.get('web01'))?.relayConn, undefined);
});

test('live output stops for a viewer whose token expired, without a word from it', async () => {
  const { core, ports, sender, clock } = await setup();
  const brief: Principal = { ...bob, expires: Date.now() + 60_000 };
  await core.clientMessage('B', brief, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('one ') });
  clock.at = Date.now() + 61_000;
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 4, ts: 2, d: b64('two') });
  assert.deepEqual(sender.to('B', 'out').map(fromB64), ['one ']);
  assert.equal(sender.closed[0]?.code, 4001);
  assert.deepEqual(await ports.sessions.byConsole('web01'), []);
});

const root: Principal = { kind: 'user', name: 'root', admin: true, tokenId: 'root-token' };

test('rights taken away: a spy\'s session ends at once (told, audited, no more output); a writer becomes a spy; resize, replay and who ask again', async () => {
  const { core, ports, sender } = await setup({ accessCacheMs: 60_000 });
  await core.setAccess(root, { rules: [{ consoles: '*', who: 'alice', allow: 'rw' }, { consoles: '*', who: 'bob', allow: 'ro' }] });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw', cols: 80, rows: 24 });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('before ') });
  // (The cache is a minute: what follows holds at once because this process made the change.)
  await core.setAccess(root, { rules: [{ consoles: '*', who: 'alice', allow: 'ro' }] });
  assert.equal(sender.closed.find((c) => c.conn === 'B')?.code, 4003);
  assert.match(String(sender.to('B', 'error')[0]?.message), /your session on web01 ended: you may no longer see web01: no rule allows it \(default: none\)/);
  assert.equal(sender.to('A', 'mode').at(-1)?.mode, 'spy');
  assert.match(String(sender.to('A', 'notice').at(-1)?.text), /you may no longer write to web01 .*; you are a spy now/);
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 7, ts: 2, d: b64('after') });
  assert.deepEqual(sender.to('B', 'out').map(fromB64), ['before ']);
  assert.deepEqual(sender.to('A', 'out').map(fromB64), ['before ', 'after']);
  const resizes = sender.to('R', 'resize').length;
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('x') });
  await core.clientMessage('A', alice, { v: 1, t: 'resize', cols: 100, rows: 40 });
  assert.equal(sender.to('R', 'in').length, 0);
  assert.equal(sender.to('R', 'resize').length, resizes, 'no resize from a writer that lost its rights');
  const types = await auditTypes(ports);
  for (const t of ['session.ended:bob', 'lock.revoked:alice', 'input.denied:alice']) assert.ok(types.includes(t), `${t} in ${types.join(' ')}`);
  assert.deepEqual((await core.who('web01')).map((v) => [v.user, v.mode]), [['alice', 'spy']]);
  // replay and who are asked when they come: a user who may spy but not replay, nor list.
  await core.setAccess(root, { rules: [{ consoles: '*', who: 'alice', allow: 'spy', deny: ['replay', 'list'] }] });
  await assert.rejects(core.clientMessage('A', alice, { v: 1, t: 'replay', lines: 10 }), /user alice may not replay web01: denied by rule 1/);
  await assert.rejects(core.clientMessage('A', alice, { v: 1, t: 'who' }), /user alice may not list web01/);
  assert.equal(sender.to('A', 'history').filter((m) => m.kind === 'replay').length, 0);
});

test('rules changed by another process: output stops at the first live message after tokenRecheckMs, the session ends at the sweep that sees the new version', async () => {
  const { core, ports, sender } = await setup({ accessCacheMs: 0, tokenRecheckMs: 100 });
  await core.setAccess(root, { rules: [{ consoles: '*', who: 'bob', allow: 'ro' }] });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('public ') });
  assert.ok(await ports.access.put({ rules: [] }, 1)); // as another process would
  await new Promise((r) => setTimeout(r, 120));
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 7, ts: 1, d: b64('secret') });
  assert.deepEqual(sender.to('B', 'out').map(fromB64), ['public ']);
  assert.equal(sender.closed[0]?.conn, 'B');
  // The sweep: a session attached again under other rules, then taken away behind the core's back.
  await core.setAccess(root, { rules: [{ consoles: '*', who: 'bob', allow: 'ro' }] });
  await core.clientMessage('B2', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  assert.ok(await ports.access.put({ rules: [] }, 3));
  await core.recheckIfRulesChanged();
  assert.equal(sender.closed.at(-1)?.conn, 'B2');
  assert.ok((await auditTypes(ports)).filter((t) => t === 'session.ended:bob').length === 2);
});

test('a lapsed lease: input is refused and said why, lock.expired audited once, the writer is a spy, `who` shows no writer, a heartbeat does not revive it', async () => {
  const { core, ports, sender, clock } = await setup({ leaseMs: 30_000 });
  const t0 = Date.now();
  clock.at = t0;
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  clock.at = t0 + 31_000;
  assert.deepEqual((await core.who('web01')).map((v) => v.mode), ['spy'], 'a lapsed lease is nobody\'s');
  assert.equal((await core.getConsole(alice, 'web01')).writer, undefined);
  await core.clientMessage('A', alice, { v: 1, t: 'ping', id: 1 }); // too late: not renewed
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('late\r') });
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('later\r') });
  await core.clientMessage('A', alice, { v: 1, t: 'resize', cols: 90, rows: 30 });
  assert.equal(sender.to('R', 'in').length, 0);
  assert.equal(sender.to('R', 'resize').length, 0);
  const at = new Date(t0 + 30_000).toISOString().replace(/[.]/g, '\\.');
  assert.match(String(sender.to('A', 'notice').find((m) => /lapsed/.test(String(m.text)))?.text), new RegExp(`your write lock lapsed at ${at} \\(no heartbeat for 30 s\\): \\^Eca takes it again if it is free`));
  assert.equal(sender.to('A', 'mode').at(-1)?.mode, 'spy');
  const types = await auditTypes(ports);
  assert.equal(types.filter((t) => t === 'lock.expired:alice').length, 1, types.join(' '));
  // ^Eca takes it again, with a new fence; nothing is audited twice.
  await core.clientMessage('A', alice, { v: 1, t: 'lock', op: 'take' });
  assert.equal(sender.to('A', 'mode').at(-1)?.mode, 'rw');
  assert.equal(sender.to('A', 'mode').at(-1)?.fence, 2);
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('again\r') });
  assert.deepEqual(sender.to('R', 'in').map(fromB64), ['again\r']);
  assert.equal((await auditTypes(ports)).filter((t) => t === 'lock.expired:alice').length, 1);
});

test('a lapsed lock taken by another: the old holder is audited (lock.expired) and told, its input refused', async () => {
  const { core, ports, sender, clock } = await setup({ leaseMs: 30_000 });
  const t0 = Date.now();
  clock.at = t0;
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  clock.at = t0 + 45_000;
  await core.clientMessage('B', bob, { v: 1, t: 'lock', op: 'take' }); // a plain take, no force
  assert.equal(sender.to('B', 'mode').at(-1)?.mode, 'rw');
  assert.deepEqual({ mode: sender.to('A', 'mode').at(-1)?.mode, writer: sender.to('A', 'mode').at(-1)?.writer }, { mode: 'spy', writer: 'bob' });
  assert.ok(sender.to('A', 'notice').some((m) => /your write lock lapsed at .* \(no heartbeat for 30 s\) and bob took it; you are a spy now/.test(String(m.text))));
  const rec = (await ports.audit.list('web01')).find((r) => r.type === 'lock.expired');
  assert.equal(rec?.user, 'alice');
  assert.equal(rec?.fence, 1);
  assert.match(String(rec?.detail), /taken by bob/);
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('x') });
  assert.equal(sender.to('R', 'in').length, 0);
  assert.deepEqual((await core.who('web01')).map((v) => [v.user, v.mode]), [['alice', 'spy'], ['bob', 'rw']]);
});

test('the periodic re-check tells a silent writer that its lease lapsed', async () => {
  const { core, ports, sender, clock } = await setup({ leaseMs: 30_000 });
  const t0 = Date.now();
  clock.at = t0;
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(await core.recheckConnection('A', alice), true);
  assert.equal(sender.to('A', 'mode').length, 0);
  clock.at = t0 + 30_000;
  assert.equal(await core.recheckConnection('A', alice), true);
  assert.equal(sender.to('A', 'mode').at(-1)?.mode, 'spy');
  assert.ok((await auditTypes(ports)).includes('lock.expired:alice'));
});

test('a revoked token can no longer attach, take the lock or replay on a connection still open', async () => {
  const { core, ports, sender } = await setup();
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await ports.tokens.revoke(alice.tokenId, 'root', Date.now());
  await core.clientMessage('A', alice, { v: 1, t: 'lock', op: 'force' });
  assert.equal((await ports.locks.get('web01')).user, 'bob', 'the lock stays with bob');
  assert.equal(sender.to('B', 'mode').length, 0, 'bob was not bumped');
  await core.clientMessage('A', alice, { v: 1, t: 'replay', lines: 10 });
  await core.clientMessage('A2', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  assert.equal(sender.to('A', 'history').filter((m) => m.kind === 'replay').length, 0);
  assert.equal(sender.to('A2', 'attached').length, 0);
  assert.deepEqual([...new Set(sender.closed.map((c) => `${c.conn}:${c.code}`))], ['A:4001', 'A2:4001']);
});

test('a spy who types on and on, and asks for what it may not: the refusals are audited up to its ration, then counted; its input never reaches the relay', async () => {
  const { core, ports, sender, clock } = await setup({ userAuditBurst: 20, userAuditsPerMin: 60 });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  for (let i = 0; i < 500; i++) await core.clientMessage('B', bob, { v: 1, t: 'in', d: b64('x') });
  for (let i = 0; i < 50; i++) await core.clientMessage('B', bob, { v: 1, t: 'break', seq: '1' });
  assert.equal(sender.to('R', 'in').length, 0);
  assert.equal(sender.to('B', 'notice').filter((m) => /input not sent/.test(String(m.text))).length, 500, 'each refusal is still told');
  const denied = (await ports.audit.list('web01')).filter((r) => r.user === 'bob' && r.type.endsWith('.denied'));
  assert.equal(denied.length, 20, 'the burst, one by one');
  // Alice is not held back by bob's flood.
  await core.clientMessage('A', alice, { v: 1, t: 'in', d: b64('ok\r') });
  assert.equal((await ports.audit.list('web01')).filter((r) => r.user === 'alice' && r.type === 'input').length, 1);
  clock.at = Date.now() + 61_000;
  await core.flushAuditRations();
  const notes = (await ports.audit.list('_cloud')).filter((r) => r.user === 'bob' && r.type.startsWith('user.audit'));
  assert.deepEqual(notes.map((r) => r.type), ['user.audit.limited', 'user.audit.suppressed']);
  assert.match(notes[1].detail!, /^530 audit records caused by user bob from .* were not written \(userAuditsPerMin 60, userAuditBurst 20\): input\.denied x480, break\.denied x50$/);
});
