// Contract suite for ConsoleRegistry: the fs registry (embedded) and the DynamoDB one run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsoleRecord, ConsoleRegistry } from '../../cloud/core/ports.ts';

export function consoleRegistryContract(name: string, make: () => Promise<ConsoleRegistry>): void {
  const rec = (n: string, over: Partial<ConsoleRecord> = {}): ConsoleRecord =>
    ({ name: n, type: 'serial', state: 'up', since: 1000, relay: 'edge1', relayConn: 'r1', resizable: false, ...over });
  const byName = (a: ConsoleRecord, b: ConsoleRecord) => (a.name < b.name ? -1 : 1);

  test(`${name}: put, get, list, overwrite`, async () => {
    const r = await make();
    assert.equal(await r.get('web01'), undefined);
    assert.deepEqual(await r.list(), []);
    await r.put(rec('web01'));
    await r.put(rec('db01', { type: 'exec', relay: 'edge2', relayConn: 'r2' }));
    assert.deepEqual(await r.get('web01'), rec('web01'));
    await r.put(rec('web01', { state: 'down', since: 2000, reason: 'device vanished' }));
    assert.deepEqual(await r.get('web01'), rec('web01', { state: 'down', since: 2000, reason: 'device vanished' }));
    assert.deepEqual((await r.list()).sort(byName), [rec('db01', { type: 'exec', relay: 'edge2', relayConn: 'r2' }), rec('web01', { state: 'down', since: 2000, reason: 'device vanished' })]);
  });

  test(`${name}: dropRelayConn marks that connection's consoles down, and only those`, async () => {
    const r = await make();
    await r.put(rec('a'));
    await r.put(rec('b'));
    await r.put(rec('c', { relayConn: 'r2' }));
    await r.put(rec('moved', { relayConn: 'r3' })); // re-published over another connection
    const dropped = await r.dropRelayConn('r1', 'relay edge1 disconnected', 5000);
    const down = (n: string) => { const x = rec(n, { state: 'down', since: 5000, reason: 'relay edge1 disconnected' }); delete x.relayConn; return x; };
    assert.deepEqual(dropped.sort(byName), [down('a'), down('b')]);
    assert.deepEqual(await r.get('a'), down('a'));
    assert.deepEqual(await r.get('c'), rec('c', { relayConn: 'r2' }));
    assert.deepEqual(await r.get('moved'), rec('moved', { relayConn: 'r3' }));
    assert.deepEqual(await r.dropRelayConn('r1', 'again', 6000), []);
  });

  test(`${name}: putIf stores only over a record of the expected relay, or, with null, where there is none`, async () => {
    const r = await make();
    assert.equal(await r.putIf(rec('web01'), null), true, 'a free name');
    assert.equal(await r.putIf(rec('web01', { relay: 'evil', relayConn: 'x' }), null), false, 'taken: not free');
    assert.equal(await r.putIf(rec('web01', { relay: 'evil', relayConn: 'x' }), 'evil'), false, 'not evil\'s');
    assert.deepEqual(await r.get('web01'), rec('web01'));
    assert.equal(await r.putIf(rec('web01', { state: 'down', reason: 'x' }), 'edge1'), true, 'the owner\'s own change');
    assert.equal(await r.putIf(rec('web01', { relay: 'edge2', relayConn: undefined }), 'edge1'), true, 'moved to edge2');
    assert.equal(await r.putIf(rec('web01', { state: 'up' }), 'edge1'), false, 'a write that read the record before the move');
    assert.equal((await r.get('web01'))?.relay, 'edge2');
    assert.equal(await r.putIf(rec('other'), 'edge1'), false, 'no record: not edge1\'s');
    assert.equal(await r.get('other'), undefined);
  });

  test(`${name}: of relays claiming a free name at once exactly one gets it`, async () => {
    const r = await make();
    const relays = Array.from({ length: 8 }, (_, i) => `relay${i}`);
    const won = await Promise.all(relays.map((x) => r.putIf(rec('contested', { relay: x, relayConn: `c-${x}` }), null)));
    assert.equal(won.filter(Boolean).length, 1);
    assert.equal((await r.get('contested'))?.relay, relays[won.indexOf(true)]);
  });

  test(`${name}: remove takes the record of its relay while no connection publishes it, and nothing else`, async () => {
    const r = await make();
    await r.put(rec('up1'));
    await r.put(rec('down1', { state: 'down', relayConn: undefined }));
    assert.equal(await r.remove('up1', 'edge1'), false, 'published over a connection now');
    assert.equal(await r.remove('down1', 'edge2'), false, 'not edge2\'s');
    assert.equal(await r.remove('nothing', 'edge1'), false);
    assert.ok(await r.get('down1'));
    assert.equal(await r.remove('down1', 'edge1'), true);
    assert.equal(await r.get('down1'), undefined);
    assert.deepEqual((await r.list()).map((x) => x.name), ['up1']);
    assert.equal(await r.putIf(rec('down1', { relay: 'edge2' }), null), true, 'the name is free again');
  });

  test(`${name}: 600 consoles (a big relay) list in full`, async () => {
    const r = await make();
    await Promise.all(Array.from({ length: 600 }, (_, i) => r.put(rec(`c${String(i).padStart(3, '0')}`, { reason: 'x'.repeat(200) }))));
    assert.equal((await r.list()).length, 600);
  });

  test(`${name}: a console name that is not one is refused (BadParameter, the rule)`, async () => {
    const r = await make();
    for (const bad of ['../../x', '..', 'a/b', '-rf', '_cloud', 'x'.repeat(129), '']) {
      await assert.rejects(r.put(rec(bad)), (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER' && /must be 1 to 128 letters|required/.test(e.message), bad);
    }
    assert.deepEqual(await r.list(), []);
  });
}
