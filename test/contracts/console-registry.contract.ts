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
