// What the cloud records of its relays (hello: what each runs; status: its spool's backlog; its
// uploads; its connection) and who sees it in `cloudcons relays`: admins every relay, a user the
// relays of the consoles they may list, with only those consoles.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from './ports.ts';
import { encodeSegment } from '../../protocol/segment.ts';
import { cleanup } from '../../test/helpers.ts';
import { alice, bob, coreRig, relay } from '../../test/core-rig.ts';

after(cleanup);

const root: Principal = { kind: 'user', name: 'root', admin: true, tokenId: 'root' };
const edge2: Principal = { kind: 'relay', name: 'edge2', admin: false, tokenId: 'e2' };
const about = { version: '0.1.0', os: 'Debian GNU/Linux 12 (bookworm) (Linux 6.1.0)', arch: 'arm64' };
const info = (name: string) => ({ name, type: 'serial', state: 'up' as const, since: 1 });

test('a hello records version, protocol, os and arch; status the backlog on the cloud\'s clock; an upload its time; a close that the relay is down', async () => {
  const { core, ports, clock } = await coreRig({ relayStatusMinMs: 1000 });
  clock.at = 1_000_000;
  await core.relayMessage('R2', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b2', consoles: [info('web01')], ...about });
  await core.relayMessage('R2', relay, { v: 1, t: 'status', spool: { bytes: 4096, oldestMs: 90_000 } });
  let [r] = await core.listRelays(root);
  assert.deepEqual(r, { name: 'edge1', ...about, protocol: 1, connected: true, connectedSince: 1_000_000, lastSeen: 1_000_000, consoles: ['web01'],
    spool: { bytes: 4096, oldestUnsentAt: 910_000, oldestUnsentMs: 90_000, reportedAt: 1_000_000 }, lastUpload: undefined });
  clock.at += 500;
  await core.relayMessage('R2', relay, { v: 1, t: 'status', spool: { bytes: 1 } }); // within relayStatusMinMs: ignored
  clock.at += 30_000;
  [r] = await core.listRelays(root);
  assert.deepEqual(r.spool, { bytes: 4096, oldestUnsentAt: 910_000, oldestUnsentMs: 120_500, reportedAt: 1_000_000 }, 'the age grows until the next report');
  await core.ingestSegment(relay, 'web01', await encodeSegment('web01', [{ offset: 0, ts: 1, data: Buffer.from('hello') }]));
  await core.relayMessage('R2', relay, { v: 1, t: 'status', spool: { bytes: 0 } });
  [r] = await core.listRelays(root);
  assert.deepEqual([r.spool, r.lastUpload], [{ bytes: 0, reportedAt: 1_030_500 }, 1_030_500]);
  clock.at += 1000;
  await core.relayClosed('R', 'edge1'); // the rig's first connection: moved away from already
  assert.equal((await core.listRelays(root))[0].connected, true);
  await core.relayClosed('R2', 'edge1');
  [r] = await core.listRelays(root);
  assert.deepEqual([r.connected, r.connectedSince, r.lastSeen], [false, 1_000_000, 1_031_500]);
});

test('a relay without a name in its config says none and is welcomed with its token\'s; a status before any hello is dropped', async () => {
  const { core, ports, sender } = await coreRig();
  await core.relayMessage('E', edge2, { v: 1, t: 'status', spool: { bytes: 5 } });
  assert.equal(await ports.relays.get('edge2'), undefined);
  await core.relayMessage('E', edge2, { v: 1, t: 'hello', boot: 'x', consoles: [info('db01')] });
  assert.deepEqual(sender.to('E', 'error'), []);
  const [w] = sender.to('E', 'welcome');
  assert.deepEqual([w.relay, w.ends], ['edge2', { db01: 0 }]);
  assert.equal((await ports.consoles.get('db01'))?.relay, 'edge2');
  const r = (await core.listRelays(root)).find((x) => x.name === 'edge2')!;
  assert.deepEqual([r.version, r.os, r.arch, r.protocol, r.consoles], [undefined, undefined, undefined, 1, ['db01']], 'an older relay that says nothing of itself');
});

test('cloudcons relays: admins see every relay; a user only the relays of consoles they may list, with only those consoles; relay tokens nothing', async () => {
  const { core, ports } = await coreRig();
  await core.relayMessage('R', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b1', consoles: [info('web01'), info('web02'), info('db01')] });
  await core.relayMessage('E', edge2, { v: 1, t: 'hello', relay: 'edge2', boot: 'x', consoles: [info('lab1')], ...about });
  await ports.relays.connected('edge3', 'E3', { protocol: 1, boot: 'y' }, 1); // no consoles
  await core.setAccess(root, { rules: [{ consoles: 'web01', who: 'alice', allow: 'spy' }, { consoles: 'db*', who: 'alice', allow: 'spy', deny: ['list'] }] });
  const names = (rs: { name: string; consoles: string[] }[]) => rs.map((r) => `${r.name}:${r.consoles.join(',')}`);
  assert.deepEqual(names(await core.listRelays(root)), ['edge1:db01,web01,web02', 'edge2:lab1', 'edge3:']);
  assert.deepEqual(names(await core.listRelays(alice)), ['edge1:web01'], 'alice: only edge1, only web01 (db01 she may spy but not list)');
  assert.deepEqual(await core.listRelays(bob), [], 'bob may list nothing: no relay, not even that there are some');
  assert.deepEqual(await core.listRelays(relay), []);
  const json = JSON.stringify(await core.listRelays(root));
  assert.ok(!/"conn"|"boot"|\bE3\b|"R"/.test(json), `no connection id or boot id in the list: ${json}`);
});
