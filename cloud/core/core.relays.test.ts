// The core against hostile relays: a console name belongs to the relay that registered it until an
// admin moves or removes it; a relay's claims (fences, sessions) are checked; what a relay makes the
// cloud audit is rationed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from './ports.ts';
import { CLOUD_STREAM } from '../../protocol/names.ts';
import { CcError } from '../../protocol/errors.ts';
import { encodeGapSegment, encodeSegment } from '../../protocol/segment.ts';
import { cleanup } from '../../test/helpers.ts';
import { alice, b64, bob, coreRig, relay } from '../../test/core-rig.ts';

after(cleanup);

const evil: Principal = { kind: 'relay', name: 'evil', admin: false, tokenId: 'e' };
const root: Principal = { kind: 'user', name: 'root', admin: true, tokenId: 'root' };
const info = (name: string, over: Record<string, unknown> = {}) => ({ name, type: 'serial', state: 'up' as const, since: 1, ...over });
const hello = (relayName: string, ...consoles: ReturnType<typeof info>[]) => ({ v: 1 as const, t: 'hello' as const, relay: relayName, boot: 'b', consoles });
const code = (c: string) => (e: unknown) => e instanceof CcError && e.code === c;

test('a relay cannot take a console that belongs to another relay, connected or not: refused, audited, and no input or output of it goes there', async () => {
  const { core, ports, sender } = await coreRig();
  await core.relayMessage('E', evil, hello('evil', info('web01')));
  assert.match(String(sender.to('E', 'error')[0].message), /consoles refused \(ignored\): web01 \(registered to relay edge1\)/);
  await core.relayClosed('R'); // edge1 goes away: the name is still its
  await core.relayMessage('E', evil, hello('evil', info('web01')));
  assert.equal((await ports.consoles.get('web01'))?.relay, 'edge1');
  assert.equal((await ports.consoles.get('web01'))?.relayConn, undefined);
  assert.deepEqual(sender.to('E', 'welcome').map((w) => w.ends), [{}, {}]);
  const trail = (await ports.audit.list('web01')).filter((r) => r.type === 'relay.refused');
  assert.equal(trail.length, 2);
  assert.equal(trail[0].user, 'relay:evil');
  assert.match(trail[1].detail!, /relay evil tried to publish web01, which belongs to relay edge1 \(not connected\): refused/);
  assert.ok((await ports.audit.list(CLOUD_STREAM)).some((r) => r.type === 'relay.refused' && /web01 \(registered to relay edge1\)/.test(r.detail ?? '')));

  // An admin types: nothing reaches evil. evil's output for web01 is not stored, and audited.
  await core.clientMessage('A', root, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientMessage('A', root, { v: 1, t: 'in', d: b64('hunter2\r') });
  assert.deepEqual(sender.to('E', 'in'), []);
  await core.relayMessage('E', evil, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('login: ') });
  assert.equal(await core.log.end('web01'), 0);
  assert.ok((await ports.audit.list(CLOUD_STREAM)).some((r) => r.type === 'relay.refused' && /relay evil sent 'out' for console web01, which belongs to relay edge1: ignored/.test(r.detail ?? '')));
  // edge1 is back: the console is its again.
  await core.relayMessage('R2', relay, hello('edge1', info('web01')));
  assert.equal((await ports.consoles.get('web01'))?.relayConn, 'R2');
});

test('consoles per relay are capped: the new ones past maxConsolesPerRelay are refused with the limit named; its registered ones keep coming', async () => {
  const { core, ports, sender } = await coreRig({ maxConsolesPerRelay: 3 });
  await core.relayMessage('E', evil, hello('evil', ...['j1', 'j2', 'j3', 'j4', 'j5'].map((n) => info(n))));
  assert.deepEqual((await ports.consoles.list()).filter((r) => r.relay === 'evil').map((r) => r.name).sort(), ['j1', 'j2', 'j3']);
  const err = sender.to('E', 'error').at(-1)!;
  assert.equal(err.code, 'CC_ERR_RATE_LIMITED');
  assert.equal(err.message, 'relay evil has 3 consoles registered, its limit (maxConsolesPerRelay 3): 2 new consoles refused: j4, j5; an admin frees names with cloudcons console rm NAME');
  await core.relayMessage('E2', evil, hello('evil', info('j1'), info('j2'), info('j3'), info('j6')));
  assert.deepEqual(Object.keys(sender.to('E2', 'welcome')[0].ends as object).sort(), ['j1', 'j2', 'j3']);
  // The refusal names a few, not thousands (a frame holds 32 KiB).
  await core.relayMessage('E3', evil, hello('evil', ...Array.from({ length: 500 }, (_, i) => info(`x${i}`))));
  assert.match(String(sender.to('E3', 'error').at(-1)!.message), /500 new consoles refused: x0, x1, .*, x19 and 480 more;/);
  // An unknown name's answer names a few of the known ones, not thousands.
  const many = await coreRig();
  await many.core.relayMessage('E', evil, hello('evil', ...Array.from({ length: 100 }, (_, i) => info(`m${String(i).padStart(3, '0')}`))));
  await assert.rejects(many.core.getConsole(root, 'nope'), (e: Error) => /^console nope not found; known: m000, m001, .*, m049 and 51 more$/.test(e.message));
  // Another relay has its own count.
  await core.relayMessage('R', relay, hello('edge1', info('web01'), info('web02'), info('web03')));
  assert.equal((await ports.consoles.list()).filter((r) => r.relay === 'edge1').length, 3);
});

test('console rm (admins): frees the name, keeps output and audit; refused while its relay publishes it', async () => {
  const { core, ports, sender } = await coreRig();
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('evidence\n') });
  await assert.rejects(core.removeConsole(alice, 'web01'), code('CC_ERR_FORBIDDEN'));
  await assert.rejects(core.removeConsole(root, 'web01'), (e: Error) => code('CC_ERR_CONFLICT')(e) && /relay edge1 is connected and publishes it/.test(e.message));
  await assert.rejects(core.removeConsole(root, 'nope'), code('CC_ERR_NOT_FOUND'));
  await core.relayClosed('R');
  const view = await core.removeConsole(root, 'web01');
  assert.equal(view.name, 'web01');
  assert.equal(await ports.consoles.get('web01'), undefined);
  assert.equal((await core.log.read('web01', 0, 100)).toString(), 'evidence\n', 'output stays');
  const trail = await ports.audit.list('web01');
  assert.ok(trail.some((r) => r.type === 'console.up'), 'earlier records stay');
  assert.match(trail.at(-1)!.detail!, /removed by root: the name was relay edge1's and is free now; its output and audit are kept/);
  assert.ok((await ports.audit.list(CLOUD_STREAM)).some((r) => r.type === 'console.remove' && r.user === 'root' && /^console web01: /.test(r.detail!)));
  assert.ok((await ports.audit.list(CLOUD_STREAM)).some((r) => r.type === 'access.denied' && r.user === 'alice'));
  await core.requireKnown(root, 'web01', 'audit'); // its trail is still readable
  await core.requireKnown(root, 'web01', 'replay');
  // Also of a console that never had output: its audit is the evidence.
  await core.relayMessage('R2', relay, hello('edge1', info('quiet')));
  await core.relayClosed('R2');
  await core.removeConsole(root, 'quiet');
  await core.requireKnown(root, 'quiet', 'audit');
  // The name is free: the next relay to say hello with it has it.
  await core.relayMessage('E', evil, hello('evil', info('web01')));
  assert.equal((await ports.consoles.get('web01'))?.relay, 'evil');
  assert.deepEqual(sender.to('E', 'error'), []);
});

test('console move (admins): the console becomes the other relay\'s; a connected old owner is told to take it down and is refused from then on', async () => {
  const { core, ports, sender } = await coreRig();
  await assert.rejects(core.moveConsole(bob, 'web01', 'edge2'), code('CC_ERR_FORBIDDEN'));
  await assert.rejects(core.moveConsole(root, 'web01', 'edge1'), code('CC_ERR_CONFLICT'));
  await assert.rejects(core.moveConsole(root, 'web01', '../x'), code('CC_ERR_BAD_PARAMETER'));
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'spy' });
  const view = await core.moveConsole(root, 'web01', 'edge2');
  assert.deepEqual([view.relay, view.state], ['edge2', 'down']);
  assert.deepEqual(sender.to('R', 'ctl'), [{ v: 1, t: 'ctl', c: 'web01', op: 'down', by: 'root' }]);
  assert.match(String(sender.to('A', 'state').at(-1)!.reason), /moved from relay edge1 to relay edge2 by root/);
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('late') });
  await core.relayMessage('R', relay, { v: 1, t: 'console', info: info('web01') });
  assert.equal(await core.log.end('web01'), 0);
  assert.equal((await ports.consoles.get('web01'))?.relay, 'edge2', 'the old owner\'s state message does not undo the move');
  const edge2: Principal = { kind: 'relay', name: 'edge2', admin: false, tokenId: 'r2' };
  await core.relayMessage('R2', edge2, hello('edge2', info('web01')));
  assert.deepEqual([(await ports.consoles.get('web01'))?.relayConn, (await ports.consoles.get('web01'))?.state], ['R2', 'up']);
  for (const stream of ['web01', CLOUD_STREAM]) {
    assert.ok((await ports.audit.list(stream)).some((r) => r.type === 'console.move' && r.user === 'root'), `console.move in ${stream}`);
  }
  // The access rules decide too: a relay they do not let publish it cannot be given it.
  await core.setAccess(root, { relays: { edge2: ['web*'] }, default: 'rw' });
  await assert.rejects(core.moveConsole(root, 'web01', 'evil'), (e: Error) => code('CC_ERR_CONFLICT')(e) && /the access rules \(relays:\) do not let relay evil publish it/.test(e.message));
});

test('a relay\'s claim to have seen a fence far above what the cloud handed out is refused and audited; fencing goes on from the real one', async () => {
  const { core, ports, sender } = await coreRig({ fenceClaimSlack: 10 });
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  await core.clientClosed('A');
  await core.relayMessage('R2', relay, hello('edge1', info('web01', { fence: 2 ** 48 })));
  assert.match(String(sender.to('R2', 'error')[0].message), /relay edge1 claimed to have seen fence 281474976710656 for web01, but this cloud handed out at most 1 \(fenceClaimSlack 10\): the claim is ignored/);
  for (const stream of ['web01', CLOUD_STREAM]) assert.ok((await ports.audit.list(stream)).some((r) => r.type === 'relay.fence'), `relay.fence in ${stream}`);
  await core.clientMessage('B', bob, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  assert.equal(sender.to('B', 'attached')[0].fence, 2);
  // Within the slack (a restarted embedded cloud whose registry copy was saved a moment late): taken.
  await core.relayMessage('R3', relay, hello('edge1', info('web01', { fence: 12 })));
  assert.deepEqual(sender.to('R3', 'error'), []);
  assert.equal((await ports.locks.get('web01')).fence, 13, 'the writer was given a fence above the relay\'s');
  assert.equal((await ports.consoles.get('web01'))?.fence, 13, 'and the registry keeps the highest');
});

test('a relay that restarted the embedded cloud\'s lock store is believed up to the fence the registry kept', async () => {
  const { core, ports, sender } = await coreRig({ fenceClaimSlack: 0 });
  for (const c of ['A', 'B', 'C']) { await core.clientMessage(c, alice, { v: 1, t: 'attach', c: 'web01', mode: 'force' }); }
  assert.equal((await ports.consoles.get('web01'))?.fence, 3);
  const { MemoryLockStore } = await import('../adapters/memory/lock-store.ts');
  ports.locks = new MemoryLockStore(); // the cloud restarted: locks were in memory
  await core.relayMessage('R2', relay, hello('edge1', info('web01', { fence: 3 })));
  assert.deepEqual(sender.to('R2', 'error'), []);
  await core.relayMessage('R3', relay, hello('edge1', info('web01', { fence: 4 })));
  assert.match(String(sender.to('R3', 'error')[0]?.message), /handed out at most 3/);
});

test('`rejected` and `break-sent` count only for a session of that console: else no notice, no record in its trail', async () => {
  const { core, ports, sender } = await coreRig();
  await core.relayMessage('E', evil, hello('evil', info('evil1')));
  await core.clientMessage('A', alice, { v: 1, t: 'attach', c: 'web01', mode: 'rw' });
  const session = String(sender.to('A', 'attached')[0].session);
  const before = sender.to('A').length;
  await core.relayMessage('E', evil, { v: 1, t: 'rejected', c: 'evil1', fence: 1, session, what: 'in', reason: 'type your password again' });
  await core.relayMessage('E', evil, { v: 1, t: 'break-sent', c: 'evil1', fence: 1, session, seq: '1' });
  await core.relayMessage('E', evil, { v: 1, t: 'rejected', c: 'web01', fence: 1, session, what: 'in', reason: 'x' });
  assert.equal(sender.to('A').length, before, 'alice was told nothing');
  for (const c of ['web01', 'evil1']) assert.equal((await ports.audit.list(c)).filter((r) => /dropped/.test(r.type)).length, 0);
  const ignored = (await ports.audit.list(CLOUD_STREAM)).filter((r) => r.type === 'relay.ignored');
  assert.equal(ignored.length, 2);
  assert.match(ignored[0].detail!, /relay evil sent 'rejected' for console evil1 naming session .*, a session of another console: ignored/);
  // The console's own relay, about its own session: as before.
  await core.relayMessage('R', relay, { v: 1, t: 'rejected', c: 'web01', fence: 1, session, what: 'in', reason: 'stale fence' });
  assert.match(String(sender.to('A', 'notice').at(-1)!.text), /the relay refused your input: stale fence/);
  assert.equal((await ports.audit.list('web01')).filter((r) => r.type === 'input.dropped').length, 1);
});

test('audit records a relay causes are rationed: a flood leaves a bounded number, a note and a count', async () => {
  const { core, ports } = await coreRig({ relayAuditBurst: 50, relayAuditsPerMin: 60 });
  await core.relayMessage('E', evil, hello('evil', info('evil1')));
  for (let i = 0; i < 3003; i++) await core.relayMessage('E', evil, { v: 1, t: 'event', c: 'evil1', what: 'flapping', detail: `flap ${i}` });
  const trail = await ports.audit.list('evil1');
  assert.ok(trail.length <= 52, `${trail.length} records`);
  assert.ok(trail.filter((r) => r.type === 'console.flapping').length >= 45);
  await core.relayClosed('E');
  const notes = (await ports.audit.list(CLOUD_STREAM)).filter((r) => r.user === 'relay:evil' && r.type.startsWith('relay.audit'));
  assert.deepEqual(notes.map((r) => r.type), ['relay.audit.limited', 'relay.audit.suppressed']);
  assert.match(notes[1].detail!, /^\d{4} audit records caused by relay evil from .* were not written \(relayAuditsPerMin 60, relayAuditBurst 50\): console\.flapping x\d+, console\.down x1$/);
  // A relay that published nothing: its count is recorded when it leaves too.
  const mute: Principal = { kind: 'relay', name: 'mute', admin: false, tokenId: 'm' };
  for (let i = 0; i < 60; i++) await core.relayMessage('M', mute, { v: 1, t: 'event', c: 'web01', what: 'idle', detail: 'x' });
  await core.relayClosed('M', 'mute');
  const muted = (await ports.audit.list(CLOUD_STREAM)).filter((r) => r.user === 'relay:mute' && r.type === 'relay.audit.suppressed');
  assert.equal(muted.length, 1);
  assert.match(muted[0].detail!, /^10 audit records caused by relay mute .*: relay\.refused x10$/);
  // edge1 is not held back by evil's flood.
  await core.relayMessage('R', relay, { v: 1, t: 'event', c: 'web01', what: 'idle', detail: 'idle string sent' });
  assert.ok((await ports.audit.list('web01')).some((r) => r.type === 'console.idle'));
});

test('a segment that would change output stored live is refused (409) and audited in the console\'s trail; stored output is unchanged', async () => {
  const { core, ports } = await coreRig();
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'web01', o: 0, ts: 1, d: b64('AAAAYY') });
  const forged = await encodeSegment('web01', [{ offset: 0, ts: 1, data: Buffer.from('ZZZZZZ') }]);
  await assert.rejects(core.ingestSegment(relay, 'web01', forged), (e: Error) => code('CC_ERR_CONFLICT')(e) && /segment 0-6 of web01 differs from the output stored live at 0-6/.test(e.message));
  assert.equal((await core.log.read('web01', 0, 6)).toString(), 'AAAAYY');
  const rec = (await ports.audit.list('web01')).find((r) => r.type === 'output.conflict');
  assert.equal(rec?.user, 'relay:edge1');
  assert.match(rec!.detail!, /^segment 0-6 of web01 differs from the output stored live at 0-6 \(first at offset 0\): the output stored first is kept \(relay edge1's upload refused\)$/);
});

test('a gap whose audit record could not be written (a full disk) is audited when the relay sends it again, once', async () => {
  const { core, ports } = await coreRig();
  const gap = encodeGapSegment('web01', { offset: 0, bytes: 500, t0: 1000, t1: 2000, reason: 'relay spool disk full' });
  const append = ports.audit.append.bind(ports.audit);
  let fail = 1;
  ports.audit.append = async (rec) => {
    if (rec.type === 'output.gap' && fail-- > 0) throw new Error('ENOSPC: no space left on device, write');
    return append(rec);
  };
  await assert.rejects(core.ingestSegment(relay, 'web01', gap), /ENOSPC/);
  const gaps = async () => (await ports.audit.list('web01')).filter((r) => r.type === 'output.gap');
  assert.equal((await gaps()).length, 0, 'the first try stored the gap but not its record');
  assert.equal((await core.ingestSegment(relay, 'web01', gap)).created, false);
  assert.deepEqual((await gaps()).map((r) => [r.offset, r.detail]), [[0, '500 bytes lost at offset 0 (1970-01-01T00:00:01.000Z to 1970-01-01T00:00:02.000Z): relay spool disk full']]);
  await core.ingestSegment(relay, 'web01', gap);
  assert.equal((await gaps()).length, 1, 'audited once');
});

test('a relay that took a console out of its config (a reload) says it is removed: still its name, down, no longer published (console rm frees it); a later hello publishes it again', async () => {
  const { core, ports, sender } = await coreRig();
  await core.relayMessage('R', relay, hello('edge1', info('web01'), info('rm1')));
  await assert.rejects(core.removeConsole(root, 'rm1'), code('CC_ERR_CONFLICT'));
  await core.relayMessage('R', relay, { v: 1, t: 'console', info: info('rm1', { state: 'down', since: 2, reason: 'removed from the relay config' }), removed: true });
  const rec = (await ports.consoles.get('rm1'))!;
  assert.equal(rec.relay, 'edge1');
  assert.equal(rec.state, 'down');
  assert.equal(rec.relayConn, undefined);
  assert.equal((await ports.consoles.get('web01'))?.relayConn, 'R', 'its other consoles are untouched');
  assert.ok((await ports.audit.list('rm1')).some((r) => r.type === 'console.unpublished' && r.user === 'relay:edge1'));
  // Nothing more it says about it is taken until a hello has it again.
  await core.relayMessage('R', relay, { v: 1, t: 'out', c: 'rm1', o: 0, ts: 1, d: b64('late') });
  assert.equal(await core.log.end('rm1'), 0);
  assert.match(String(sender.to('R', 'error').at(-1)!.message), /console rm1 is not published by relay edge1/);
  await core.relayMessage('R', relay, hello('edge1', info('rm1')));
  assert.equal((await ports.consoles.get('rm1'))?.relayConn, 'R');
  await core.relayMessage('R', relay, { v: 1, t: 'console', info: info('rm1', { state: 'down', since: 3 }), removed: true });
  assert.equal((await core.removeConsole(root, 'rm1')).name, 'rm1');
});
