// Contract suite for RelayRegistry: the fs registry (embedded) and the DynamoDB one run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RelayRegistry } from '../../cloud/core/ports.ts';

export function relayRegistryContract(name: string, make: () => Promise<RelayRegistry>): void {
  const about = { version: '0.1.0', protocol: 1, os: 'Debian GNU/Linux 12 (bookworm)', arch: 'arm64', boot: 'b1' };

  test(`${name}: a hello records what the relay runs and its connection; a new process starts connectedSince over, a move keeps it`, async () => {
    const r = await make();
    assert.equal(await r.get('edge1'), undefined);
    assert.deepEqual(await r.list(), []);
    await r.connected('edge1', 'c1', about, 1000);
    assert.deepEqual(await r.get('edge1'), { name: 'edge1', ...about, conn: 'c1', connectedSince: 1000, lastSeen: 1000 });
    // The same process moves to a new connection (make-before-break): still connected since 1000.
    await r.connected('edge1', 'c2', about, 2000);
    assert.deepEqual(await r.get('edge1'), { name: 'edge1', ...about, conn: 'c2', connectedSince: 1000, lastSeen: 2000 });
    // The old connection closing changes nothing; the current one's does.
    await r.disconnected('edge1', 'c1', 2500);
    assert.equal((await r.get('edge1'))?.conn, 'c2');
    await r.disconnected('edge1', 'c2', 3000);
    assert.deepEqual(await r.get('edge1'), { name: 'edge1', ...about, connectedSince: 1000, lastSeen: 3000 });
    await r.disconnected('edge1', 'c2', 3500); // repeated: harmless
    assert.equal((await r.get('edge1'))?.lastSeen, 3000);
    // An older relay process (another boot) that says nothing of itself: the old facts go.
    await r.connected('edge1', 'c3', { protocol: 1, boot: 'b2' }, 4000);
    assert.deepEqual(await r.get('edge1'), { name: 'edge1', protocol: 1, boot: 'b2', conn: 'c3', connectedSince: 4000, lastSeen: 4000 });
    await r.connected('edge2', 'c9', about, 4100);
    assert.deepEqual((await r.list()).map((x) => x.name).sort(), ['edge1', 'edge2']);
  });

  test(`${name}: status stores the backlog at most every minMs, only for a relay that said hello; uploads only move forward`, async () => {
    const r = await make();
    assert.equal(await r.status('edge1', { bytes: 5 }, 1000, 100), false, 'no record: nothing created');
    await r.uploaded('edge1', 1000);
    assert.equal(await r.get('edge1'), undefined);
    await r.connected('edge1', 'c1', about, 1000);
    assert.equal(await r.status('edge1', { bytes: 4096, oldestAt: 900 }, 1100, 100), true);
    assert.deepEqual((await r.get('edge1'))?.spool, { bytes: 4096, oldestAt: 900, at: 1100 });
    assert.equal(await r.status('edge1', { bytes: 1 }, 1150, 100), false, 'sooner than minMs: ignored');
    assert.equal(await r.status('edge1', { bytes: 0 }, 1200, 100), true);
    const rec = (await r.get('edge1'))!;
    assert.deepEqual([rec.spool, rec.lastSeen, rec.conn], [{ bytes: 0, at: 1200 }, 1200, 'c1']);
    await r.uploaded('edge1', 1300);
    await r.uploaded('edge1', 1250); // handled late: never back
    assert.equal((await r.get('edge1'))?.lastUpload, 1300);
    // A hello keeps the backlog and the last upload.
    await r.connected('edge1', 'c2', { ...about, boot: 'b2' }, 1400);
    assert.deepEqual([(await r.get('edge1'))?.spool, (await r.get('edge1'))?.lastUpload], [{ bytes: 0, at: 1200 }, 1300]);
  });

  test(`${name}: local access is on until an admin turns it off; a hello keeps the decision; a relay never seen gets a record`, async () => {
    const r = await make();
    await r.connected('edge1', 'c1', about, 1000);
    assert.equal((await r.get('edge1'))?.localOff, undefined);
    assert.deepEqual((await r.setLocal('edge1', { by: 'root', at: 1100 })).localOff, { by: 'root', at: 1100 });
    await r.connected('edge1', 'c2', { ...about, boot: 'b2' }, 1200);
    await r.status('edge1', { bytes: 1 }, 1300, 0);
    await r.disconnected('edge1', 'c2', 1400);
    assert.deepEqual((await r.get('edge1'))?.localOff, { by: 'root', at: 1100 });
    const on = await r.setLocal('edge1', undefined);
    assert.equal(on.localOff, undefined);
    assert.equal(on.lastSeen, 1400, 'nothing else changes');
    assert.deepEqual(await r.setLocal('edge9', { by: 'root', at: 1500 }), { name: 'edge9', localOff: { by: 'root', at: 1500 } });
    await r.connected('edge9', 'c9', about, 1600);
    assert.deepEqual((await r.get('edge9'))?.localOff, { by: 'root', at: 1500 });
  });
}
