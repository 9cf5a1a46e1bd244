// Local audit records a relay uploads (issue 17, relay-side.ts localAudit): chained in order, each
// journal seq once (a resend after a crash between upload and confirm is no second entry), marked
// `via: local`; refused when malformed or not the relay's console. On the embedded stores and on
// the AWS ones (DynamoDB audit store and console registry, against dynalite).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../../protocol/codec.ts';
import { relayToCloud, type LocalAuditRec } from '../../protocol/messages.ts';
import { cleanup } from '../../test/helpers.ts';
import { b64, coreRig, relay } from '../../test/core-rig.ts';
import { closeAwsPeers, freshStateTable } from '../../test/aws-peers.ts';
import { DynamoAuditStore } from '../adapters/aws/dynamo-audit-store.ts';
import { DynamoConsoleRegistry } from '../adapters/aws/dynamo-console-registry.ts';
import { CloudCore } from './core.ts';
import { localUser } from './relay-side.ts';
import type { AuditStore } from './ports.ts';

after(async () => { await closeAwsPeers(); await cleanup(); });

const rec = (seq: number, extra: Partial<LocalAuditRec> = {}): LocalAuditRec => ({ seq, what: 'input', user: 'root', session: 'ssh-1', ts: 1_700_000_000_000 + seq, d: b64(`cmd${seq}\r`), ...extra });

for (const store of ['fs', 'dynamodb'] as const) {
  test(`${store}: uploaded records are chained once each, in order, via local; a resend is confirmed and not chained again; verify passes`, { timeout: 60_000 }, async () => {
    const rig = await coreRig();
    let { core } = rig;
    const { ports, sender } = rig;
    if (store === 'dynamodb') {
      const { client, table } = await freshStateTable();
      const consoles = new DynamoConsoleRegistry(client, table);
      await consoles.put((await ports.consoles.get('web01'))!);
      Object.assign(ports, { audit: new DynamoAuditStore(client, table) as AuditStore, consoles });
      core = new CloudCore(ports, {});
    }
    const send = (recs: LocalAuditRec[], journal = 'j1') => core.relayMessage('R', relay, { v: 1, t: 'audit', c: 'web01', journal, recs });
    await send([rec(1), rec(2, { what: 'attach', d: undefined, detail: 'as writer' }), rec(3, { source: 'cloud', user: 'alice' })]);
    // The confirm went astray (a crash between upload and confirm): the relay says hello again,
    // and sends the same and the next again.
    await core.relayMessage('R', relay, { v: 1, t: 'hello', relay: 'edge1', boot: 'b2', consoles: [{ name: 'web01', type: 'serial', state: 'up', since: 2 }] });
    assert.deepEqual((await ports.consoles.get('web01'))?.localAudit, { journal: 'j1', seq: 3 }, 'the mark outlives a hello');
    await send([rec(2, { what: 'attach', d: undefined, detail: 'as writer' }), rec(3, { source: 'cloud', user: 'alice' }), rec(4)]);
    // A crash after chaining, before the registry's mark moved (it says the batch is pending): the
    // chain itself tells.
    const now = (await ports.consoles.get('web01'))!;
    await ports.consoles.put({ ...now, localAudit: { journal: 'j1', seq: 1, pending: 4 } });
    await send([rec(2, { what: 'attach', d: undefined, detail: 'as writer' }), rec(3, { source: 'cloud', user: 'alice' }), rec(4), rec(5)]);
    await ports.audit.settle?.();
    const local = (await ports.audit.list('web01')).filter((r) => r.via === 'local');
    assert.deepEqual(local.map((r) => [r.jseq, r.type, r.user, r.data ? Buffer.from(r.data, 'base64').toString() : r.detail, r.relayTime, r.relay, r.journal]), [
      [1, 'input', 'local:root@edge1', 'cmd1\r', 1_700_000_000_001, 'edge1', 'j1'],
      [2, 'attach', 'local:root@edge1', 'as writer', 1_700_000_000_002, 'edge1', 'j1'],
      [3, 'input', 'alice', 'cmd3\r', 1_700_000_000_003, 'edge1', 'j1'],
      [4, 'input', 'local:root@edge1', 'cmd4\r', 1_700_000_000_004, 'edge1', 'j1'],
      [5, 'input', 'local:root@edge1', 'cmd5\r', 1_700_000_000_005, 'edge1', 'j1'],
    ]);
    assert.ok(local.every((r) => typeof r.time === 'number' && r.session === 'ssh-1'));
    assert.deepEqual(sender.to('R', 'audit-ok').map((m) => m.seq), [3, 4, 5], 'each upload confirmed up to its last record');
    assert.deepEqual((await ports.consoles.get('web01'))?.localAudit, { journal: 'j1', seq: 5 }, 'no batch pending');
    // A new journal (the relay's spool was wiped) starts at 1 again and is chained.
    await send([rec(1)], 'j2');
    assert.equal((await ports.audit.list('web01')).filter((r) => r.via === 'local').length, 6);
    const v = await ports.audit.verify!('web01');
    assert.equal(v.ok, true, JSON.stringify(v));
  });
}

test('a relay cannot chain records into a console that is not its own; seqs out of order are refused whole', async () => {
  const { core, ports, sender } = await coreRig();
  const other = { ...relay, name: 'edge2' };
  await core.relayMessage('R2', other, { v: 1, t: 'hello', relay: 'edge2', boot: 'b2', consoles: [] });
  await core.relayMessage('R2', other, { v: 1, t: 'audit', c: 'web01', journal: 'j1', recs: [rec(1)] });
  assert.match(String(sender.to('R2', 'error').at(-1)?.message), /not published by relay edge2/);
  await core.relayMessage('R', relay, { v: 1, t: 'audit', c: 'web01', journal: 'j1', recs: [rec(1), rec(3)] });
  assert.match(String(sender.to('R', 'error').at(-1)?.message), /not consecutive/);
  assert.equal((await ports.audit.list('web01')).filter((r) => r.via === 'local').length, 0);
  assert.equal(sender.to('R', 'audit-ok').length + sender.to('R2', 'audit-ok').length, 0);
});

test('malformed audit uploads are refused by the codec, naming what is wrong', () => {
  const good = { v: 1, t: 'audit', c: 'web01', journal: 'j1', recs: [rec(1)] };
  assert.ok(decode(relayToCloud, JSON.stringify(good)).ok);
  const bad: [string, unknown][] = [
    ['no records', { ...good, recs: [] }],
    ['65 records', { ...good, recs: Array.from({ length: 65 }, (_, i) => rec(i + 1)) }],
    ['seq 0', { ...good, recs: [rec(0)] }],
    ['a fractional seq', { ...good, recs: [rec(1.5)] }],
    ['a journal id with a slash', { ...good, journal: '../x' }],
    ['a user with a space', { ...good, recs: [rec(1, { user: 'ro ot' })] }],
    ['what in capitals', { ...good, recs: [rec(1, { what: 'INPUT' })] }],
    ['data not base64', { ...good, recs: [rec(1, { d: 'not base64!' })] }],
    ['input over 4 KiB', { ...good, recs: [rec(1, { d: Buffer.alloc(4097).toString('base64') })] }],
    ['a time past 9999', { ...good, recs: [rec(1, { ts: 1e15 })] }],
    ['a bad fingerprint', { ...good, recs: [rec(1, { fp: 'MD5:aa' })] }],
    ['a bad source', { ...good, recs: [{ ...rec(1), source: 'ldap' }] }],
  ];
  for (const [why, msg] of bad) assert.equal(decode(relayToCloud, JSON.stringify(msg)).ok, false, why);
  assert.ok(encode({ t: 'audit', c: 'web01', journal: 'j1', recs: [rec(1)] }).length < 1024);
});

test('local user names: the cloud\'s user for a key from the cloud, local:<name>@<relay> otherwise', () => {
  assert.equal(localUser({ user: 'Alice', source: 'cloud' }, 'edge1'), 'alice');
  assert.equal(localUser({ user: 'sso:alice', source: 'cloud' }, 'edge1'), 'sso:alice');
  assert.equal(localUser({ user: 'relay:edge2', source: 'cloud' }, 'edge1'), 'local:relay:edge2@edge1', 'no relay names from a relay');
  assert.equal(localUser({ user: 'root', source: 'relay.yaml' }, 'edge1'), 'local:root@edge1');
  assert.equal(localUser({ user: 'alice' }, 'edge1'), 'local:alice@edge1');
});
