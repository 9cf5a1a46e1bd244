// Contract suites for AuditStore: the fs store (embedded) and the DynamoDB ones (alone, and with
// the S3 archive) run them. auditStoreContract: what the core relies on (order, limit, since).
// auditChainContract: the hash chain (core/audit-chain.ts): gapless seqs and seals, concurrent
// appends, a crash after the record and an append interrupted before it, verify catching every
// tampering of the stored records (an edited byte, a deleted record, two swapped, the end cut off
// or replaced, a record added after the head) and of the head (removed, unreadable) and naming
// the first broken record; appends refusing records the head does not prove; reseal refusing a
// replaced end and saying what it cannot know.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chained, headOf, recordHash, SEAL_TYPE, type ChainOptions } from '../../cloud/core/audit-chain.ts';
import type { AuditVerifyResult } from '../../cloud/core/audit-walker.ts';
import type { AuditHeadStore, AuditRecord, AuditStore } from '../../cloud/core/ports.ts';

/** A record without its chain fields (what was appended). */
export function plain(r: AuditRecord): AuditRecord {
  const { seq: _s, prev: _p, hash: _h, ...rest } = r;
  return rest;
}

export function auditStoreContract(name: string, make: () => Promise<AuditStore>): void {
  const rec = (time: number, over: Partial<AuditRecord> = {}): AuditRecord => ({ time, console: 'web01', type: 'input', user: 'alice', session: 's1', fence: 3, data: Buffer.from(`k${time}`).toString('base64'), offset: time, ...over });

  test(`${name}: records come back in order, whole, per console`, async () => {
    const a = await make();
    assert.deepEqual(await a.list('web01'), []);
    const { data: _none, ...attach } = rec(1000, { type: 'session.attach' });
    const recs = [attach, rec(1001), rec(1001, { data: Buffer.from('same ms').toString('base64') }), rec(1002, { type: 'lock.force', detail: 'bob forced' })];
    for (const r of recs) await a.append(r);
    await a.append(rec(1001, { console: 'db01', user: 'bob' }));
    assert.deepEqual((await a.list('web01')).map(plain), recs);
    assert.deepEqual((await a.list('db01')).map((r) => r.user), ['bob']);
  });

  test(`${name}: limit gives the newest N (oldest first), since the ones at or after a time`, async () => {
    const a = await make();
    for (let i = 0; i < 30; i++) await a.append(rec(2000 + i * 10));
    assert.deepEqual((await a.list('web01', { limit: 3 })).map((r) => r.time), [2270, 2280, 2290]);
    assert.deepEqual((await a.list('web01', { since: 2265 })).map((r) => r.time), [2270, 2280, 2290]);
    assert.deepEqual((await a.list('web01', { since: 2200, limit: 2 })).map((r) => r.time), [2280, 2290]);
    assert.equal((await a.list('web01', { limit: 1000 })).length, 30);
  });

  test(`${name}: 600 records (1.2 MB) of one console, appended back to back, all listed in order`, async () => {
    const a = await make();
    for (let i = 0; i < 600; i++) await a.append(rec(5000, { offset: i, data: Buffer.alloc(1500, i % 256).toString('base64') })); // same ms: order by append; >1 MB: pages
    const got = await a.list('web01');
    assert.deepEqual(got.map((r) => r.offset), Array.from({ length: 600 }, (_, i) => i));
  });
}

export function auditNameContract(name: string, make: () => Promise<AuditStore>): void {
  test(`${name}: a console name that is not one is refused (BadParameter, the rule) before it makes a path or key; _cloud is the cloud's stream`, async () => {
    const a = await make();
    const refused = (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER' && /must be 1 to 128 letters|required/.test(e.message);
    for (const bad of ['../../x', '..', 'a/b', '-rf', 'x'.repeat(129), '']) {
      await assert.rejects(a.append({ time: 1, console: bad, type: 'input' }), refused, bad);
      await assert.rejects(a.list(bad), refused, bad);
      await assert.rejects(a.verify!(bad), refused, bad);
      await assert.rejects(a.reseal!(bad, 'root', 1), refused, bad);
    }
    await a.append({ time: 1, console: '_cloud', type: 'auth.failure' });
    assert.equal((await a.list('_cloud')).length, 1);
    assert.ok((await a.verify!('_cloud')).ok);
  });
}

/** Direct access to what a store holds, to tamper with it as an attacker with write access to the
 *  audit store (but not to the head) could. */
export interface StoredRecords {
  /** Where the record with this seq is stored (a file line, a table item, a line of an archive
   *  object): reading it gives the stored JSON, writing replaces it in place. */
  locate(console: string, seq: number): Promise<{ read(): Promise<string>; write(json: string): Promise<void>; delete(): Promise<void> }>;
  /** Stores records the way the store did before chaining existed (no seq). */
  legacy(recs: AuditRecord[]): Promise<void>;
  /** Stores a record at its seq, as someone with write access to the store but not the head. */
  add(rec: AuditRecord): Promise<void>;
  /** The head as stored: removed, or replaced by something that is not a head (returns how the
   *  store names it, e.g. its file). */
  head(console: string): { remove(): Promise<void>; garble(): Promise<string> };
}

export interface ChainRig {
  store: AuditStore & { verify(console: string): Promise<AuditVerifyResult> };
  /** A second writer on the same stored chain (another Lambda); the same store for one process. */
  twin(): AuditStore;
  heads: AuditHeadStore;
  raw: StoredRecords;
}

export function auditChainContract(name: string, make: (opts: Partial<ChainOptions>) => Promise<ChainRig>): void {
  const T = Date.UTC(2026, 2, 1, 12);
  const rec = (i: number, over: Partial<AuditRecord> = {}): AuditRecord => ({ time: T + i * 1000, console: 'web01', type: 'input', user: 'alice', session: 's1', fence: 2, data: Buffer.from(`line ${i}\r`).toString('base64'), offset: i * 10, ...over });
  /** A rig with 12 records appended (seals every 5th seq: 14 stored, seq 1..14, seals at 5 and 10). */
  const filled = async () => {
    const rig = await make({ sealEvery: 5 });
    for (let i = 0; i < 12; i++) await rig.store.append(rec(i));
    const v = await rig.store.verify('web01');
    assert.ok(v.ok, JSON.stringify(v));
    return rig;
  };
  const edit = async (rig: ChainRig, seq: number, f: (json: string) => string) => {
    const slot = await rig.raw.locate('web01', seq);
    await slot.write(f(await slot.read()));
  };
  const broken = async (rig: ChainRig, want: { seq: number; problem: string; detail?: RegExp }) => {
    const v = await rig.store.verify('web01');
    assert.equal(v.ok, false, `verify should fail: ${JSON.stringify(v)}`);
    assert.equal(v.broken?.problem, want.problem, JSON.stringify(v.broken));
    assert.equal(v.broken?.seq, want.seq, JSON.stringify(v.broken));
    if (want.detail) assert.match(v.broken!.detail, want.detail);
    return v;
  };

  test(`${name}: chain: seq 1.. without gaps, each prev the hash before, seals every 5th seq, verify ok`, async () => {
    const rig = await filled();
    const got = await rig.store.list('web01');
    assert.deepEqual(got.map((r) => r.seq), Array.from({ length: 14 }, (_, i) => i + 1));
    assert.deepEqual(got.filter((r) => r.type === SEAL_TYPE).map((r) => r.seq), [5, 10]);
    assert.equal(got[0].prev, '0'.repeat(64));
    for (const [i, r] of got.entries()) {
      assert.equal(r.hash, recordHash(r));
      if (i) assert.equal(r.prev, got[i - 1].hash);
    }
    assert.equal(got[4].detail, `sealed 4 records, head ${got[3].hash}`);
    assert.deepEqual(got.filter((r) => r.type !== SEAL_TYPE).map(plain), Array.from({ length: 12 }, (_, i) => rec(i)));
    assert.deepEqual(await rig.heads.get('web01'), { seq: 14, hash: got[13].hash, time: got[13].time });
    const v = await rig.store.verify('web01');
    assert.deepEqual({ ok: v.ok, records: v.records, seals: v.seals, unchained: v.unchained, end: v.end?.seq }, { ok: true, records: 14, seals: 2, unchained: 0, end: 14 });
    assert.deepEqual(await rig.store.verify('nothing'), { console: 'nothing', ok: true, records: 0, unchained: 0, seals: 0, end: undefined, head: undefined, headState: 'matches' });
  });

  test(`${name}: verify catches one edited byte (hash mismatch) and names the record`, async () => {
    const rig = await filled();
    await edit(rig, 7, (j) => j.replace('"alice"', '"alicf"'));
    await broken(rig, { seq: 7, problem: 'hash mismatch', detail: /changed/ });
    const v = await rig.store.verify('web01');
    assert.equal(v.broken?.type, 'input');
    assert.equal(v.broken?.time, T + 5000);
  });

  test(`${name}: verify catches a byte that breaks the record's JSON (unreadable), a deleted record (missing seq), two swapped (out of order)`, async () => {
    let rig = await filled();
    await edit(rig, 8, (j) => j.replace('{', '['));
    await broken(rig, { seq: 8, problem: 'unreadable' });

    rig = await filled();
    await (await rig.raw.locate('web01', 8)).delete();
    await broken(rig, { seq: 8, problem: 'missing seq', detail: /seq 8 is missing: after seq 7 .* comes seq 9/ });

    rig = await filled();
    const [x, y] = [await rig.raw.locate('web01', 8), await rig.raw.locate('web01', 9)];
    const [a, b] = [await x.read(), await y.read()];
    await x.write(b);
    await y.write(a);
    await broken(rig, { seq: 9, problem: 'out of order', detail: /seq 9 is stored before seq 8/ });
  });

  test(`${name}: verify catches records cut off the end (head mismatch), a rewritten tail with fresh hashes, a forged seal`, async () => {
    let rig = await filled();
    await (await rig.raw.locate('web01', 14)).delete();
    await (await rig.raw.locate('web01', 13)).delete();
    await broken(rig, { seq: 13, problem: 'head mismatch', detail: /ends at seq 12 .* head says seq 14 .*2 record\(s\) cut off the end/ });

    // Rewriting a record and every one after it with correct hashes still leaves the head behind.
    rig = await filled();
    let prev = JSON.parse(await (await rig.raw.locate('web01', 11)).read()).hash as string;
    for (let seq = 12; seq <= 14; seq++) {
      await edit(rig, seq, (j) => {
        const r = JSON.parse(j) as AuditRecord;
        if (seq === 12) r.user = 'mallory';
        r.prev = prev;
        r.hash = recordHash(r);
        prev = r.hash;
        return JSON.stringify(r);
      });
    }
    await broken(rig, { seq: 14, problem: 'head mismatch', detail: /replaced/ });

    rig = await filled();
    await edit(rig, 10, (j) => {
      const seal = JSON.parse(j) as AuditRecord;
      seal.detail = seal.detail!.replace('sealed 9', 'sealed 7');
      seal.hash = recordHash(seal);
      return JSON.stringify(seal);
    });
    await broken(rig, { seq: 10, problem: 'seal mismatch' });
  });

  test(`${name}: an append after records cut off the end is refused (no skipped seq that would read as a deletion); after a reseal appends go on`, async () => {
    const rig = await filled();
    await (await rig.raw.locate('web01', 14)).delete();
    await (await rig.raw.locate('web01', 13)).delete();
    for (const store of [rig.store, rig.twin()]) {
      await assert.rejects(store.append(rec(30)), /the head proves seq 14, but .*records were cut off; nothing more is appended/);
    }
    assert.deepEqual((await rig.store.list('web01')).map((r) => r.seq).slice(-2), [11, 12], 'nothing stored over the gap');
    await rig.store.reseal!('web01', 'root', T + 99_000);
    await rig.store.append(rec(31));
    assert.deepEqual((await rig.store.list('web01')).map((r) => r.seq).slice(-2), [13, 14]);
    assert.ok((await rig.store.verify('web01')).ok);
  });

  test(`${name}: records from before chaining are counted, not broken; the chain starts after them`, async () => {
    const rig = await make({ sealEvery: 0 });
    await rig.raw.legacy([rec(0, { detail: 'old' }), rec(1, { detail: 'old' }), rec(2, { detail: 'old' })]);
    for (let i = 3; i < 6; i++) await rig.store.append(rec(i));
    const got = await rig.store.list('web01');
    assert.deepEqual(got.map((r) => r.seq), [undefined, undefined, undefined, 1, 2, 3]);
    const v = await rig.store.verify('web01');
    assert.deepEqual({ ok: v.ok, unchained: v.unchained, records: v.records }, { ok: true, unchained: 3, records: 3 });
  });

  test(`${name}: 20 concurrent appends through two writers give a gapless valid chain`, async () => {
    const rig = await make({ sealEvery: 7 });
    const writers = [rig.store, rig.twin()];
    await Promise.all(Array.from({ length: 20 }, (_, i) => writers[i % 2].append(rec(i, { detail: `w${i % 2}` }))));
    const got = await rig.store.list('web01');
    assert.deepEqual(got.map((r) => r.seq), Array.from({ length: 23 }, (_, i) => i + 1), 'seq 1..23: 20 records, seals at 7, 14 and 21');
    assert.deepEqual(got.filter((r) => r.type !== SEAL_TYPE).map((r) => r.offset).sort((a, b) => a! - b!), Array.from({ length: 20 }, (_, i) => i * 10));
    const v = await rig.store.verify('web01');
    assert.ok(v.ok && !v.note, JSON.stringify(v));
    assert.equal((await rig.heads.get('web01'))?.seq, 23);
  });

  test(`${name}: reseal: refused on an intact chain and on broken records; records cut off the end: the head moves to the last one and the chain says so`, async () => {
    let rig = await filled();
    await assert.rejects(rig.store.reseal!('web01', 'root', T + 99_000), /ends where its head proves \(seq 14\): nothing to reseal/);
    await edit(rig, 7, (j) => j.replace('"alice"', '"alicf"'));
    await assert.rejects(rig.store.reseal!('web01', 'root', T + 99_000), /broken at seq 7 \(hash mismatch.*keep the evidence/);

    rig = await filled();
    await (await rig.raw.locate('web01', 14)).delete();
    await (await rig.raw.locate('web01', 13)).delete();
    const r = await rig.store.reseal!('web01', 'root', T + 99_000);
    assert.equal(r.from?.seq, 14);
    assert.equal(r.to.seq, 12);
    assert.equal(r.record.seq, 13);
    assert.match(r.record.detail!, /head moved from seq 14 .* to seq 12 .*the last stored record; 2 record\(s\) after it were missing/);
    const v = await rig.store.verify('web01');
    assert.ok(v.ok, JSON.stringify(v));
    await rig.store.append(rec(20));
    const all = await rig.store.list('web01');
    assert.deepEqual(all.slice(-2).map((x) => [x.seq, x.type, x.user]), [[13, 'audit.reseal', 'root'], [14, 'input', 'alice']]);
    assert.ok((await rig.store.verify('web01')).ok);
  });

  test(`${name}: a crash between the record and the head's move: verify accepts the record the head announces, the next append moves the head on`, async () => {
    const rig = await make({ sealEvery: 0 });
    for (let i = 0; i < 3; i++) await rig.store.append(rec(i));
    const advance = rig.heads.advance.bind(rig.heads);
    rig.heads.advance = async (c, from, to) => { if (!to.pending) throw new Error('process killed'); return advance(c, from, to); };
    await rig.store.append(rec(3)).catch((e: Error) => assert.match(e.message, /process killed/)); // a store may move the head after append resolved
    await rig.store.settle?.();
    rig.heads.advance = advance;
    assert.deepEqual([(await rig.heads.get('web01'))?.seq, (await rig.heads.get('web01'))?.pending?.seq], [3, 4]);
    const v = await rig.store.verify('web01');
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.headState, 'lags');
    assert.match(v.note ?? '', /the head announces the last record, seq 4, and was not moved to it yet/);
    await rig.store.append(rec(4));
    assert.deepEqual((await rig.store.list('web01')).map((r) => r.seq), [1, 2, 3, 4, 5]);
    await rig.store.settle?.();
    assert.deepEqual(await rig.heads.get('web01'), headOf((await rig.store.list('web01'))[4]));
    const after = await rig.store.verify('web01');
    assert.ok(after.ok && !after.note, JSON.stringify(after));
  });

  test(`${name}: an append interrupted after announcing its record: verify says it did not go ahead; the next append goes on`, async () => {
    const rig = await make({ sealEvery: 0 });
    for (let i = 0; i < 3; i++) await rig.store.append(rec(i));
    await rig.store.settle?.();
    const h = (await rig.heads.get('web01'))!;
    const r = chained(rec(3), h);
    assert.ok(await rig.heads.advance('web01', h, { ...h, pending: { seq: r.seq, hash: r.hash, time: r.time, rec: r } }));
    const v = await rig.store.verify('web01');
    assert.deepEqual([v.ok, v.headState, v.end?.seq], [true, 'interrupted', 3], JSON.stringify(v));
    assert.match(v.note ?? '', /announces seq 4 .*never stored: an append stopped before writing its record, so what it described did not go ahead/);
    await rig.store.append(rec(9));
    // One writer takes the free seq; a store whose announcements carry the record stores it first.
    const got = (await rig.store.list('web01')).map((x) => x.offset);
    assert.ok(JSON.stringify(got) === JSON.stringify([0, 10, 20, 90]) || JSON.stringify(got) === JSON.stringify([0, 10, 20, 30, 90]), JSON.stringify(got));
    const after = await rig.store.verify('web01');
    assert.ok(after.ok && after.headState === 'matches', JSON.stringify(after));
  });

  test(`${name}: a record added after the head (chained, head untouched) fails verify and is never adopted: appends fail closed`, async () => {
    const rig = await filled();
    await rig.store.settle?.();
    const forged = chained(rec(30, { user: 'mallory', data: Buffer.from('rm -rf /\r').toString('base64') }), (await rig.heads.get('web01'))!);
    await rig.raw.add(forged);
    const v = await broken(rig, { seq: 15, problem: 'head mismatch', detail: /seq 15 lies beyond the head \(seq 14\) and the head does not prove it: added outside cloudcons/ });
    assert.equal(v.headState, 'added');
    await assert.rejects(rig.store.append(rec(12)), /seq 15 already holds a record that the chain's head \(seq 14\) does not prove/);
    await assert.rejects(rig.twin().append(rec(13)), /does not prove/);
    const recs = await rig.store.list('web01');
    assert.deepEqual([recs.length, recs.at(-1)?.user], [15, 'mallory'], 'nothing appended after it');
    await broken(rig, { seq: 15, problem: 'head mismatch' });
    assert.equal((await rig.heads.get('web01'))?.seq, 14);
    // An admin reseals once verify has shown it: the record stays, the reseal record says the head did not prove it.
    const r = await rig.store.reseal!('web01', 'root', T + 99_000);
    assert.match(r.record.detail!, /head moved from seq 14 .* to seq 15 .*; seq 15\.\.15 lay beyond the head, which did not prove them \(added outside cloudcons\); they stay in the chain as found/);
    assert.ok((await rig.store.verify('web01')).ok);
  });

  test(`${name}: reseal refuses a replaced last record (fresh valid hashes): that would adopt the replacement`, async () => {
    const rig = await filled();
    await edit(rig, 14, (j) => {
      const r = JSON.parse(j) as AuditRecord;
      r.user = 'mallory';
      r.hash = recordHash(r);
      return JSON.stringify(r);
    });
    const v = await broken(rig, { seq: 14, problem: 'head mismatch', detail: /the end of the chain was replaced/ });
    assert.equal(v.headState, 'replaced');
    await assert.rejects(rig.store.reseal!('web01', 'root', T + 99_000), /the end of the audit chain of web01 is not what its head proves .*a reseal would adopt the replacement; keep the evidence/);
    await broken(rig, { seq: 14, problem: 'head mismatch' });
  });

  test(`${name}: a removed head: verify names it, appends fail closed, reseal says what it cannot know`, async () => {
    const rig = await filled();
    await rig.store.settle?.();
    await rig.raw.head('web01').remove();
    await broken(rig, { seq: 14, problem: 'head mismatch', detail: /no head is stored .* reaches seq 14/ });
    await assert.rejects(rig.store.append(rec(20)), /no chain head is stored, but records are/);
    const r = await rig.store.reseal!('web01', 'root', T + 99_000);
    assert.equal(r.from, undefined);
    assert.match(r.record.detail!, /head moved from no head to seq 14 .*; no head was stored: how many records were cut off the end, and whether the end was replaced, cannot be known/);
    await rig.store.append(rec(20));
    assert.ok((await rig.store.verify('web01')).ok);
  });

  test(`${name}: an unreadable head: verify reports that console only (naming where), appends fail closed, reseal says what it cannot know`, async () => {
    const rig = await filled();
    await rig.store.append(rec(1, { console: 'db01' }));
    await rig.store.settle?.();
    const where = await rig.raw.head('web01').garble();
    const v = await broken(rig, { seq: 14, problem: 'unreadable head' });
    assert.ok(v.broken!.detail.includes(where), `${v.broken!.detail} names ${where}`);
    assert.equal(v.headState, 'unreadable');
    assert.ok((await rig.store.verify('db01')).ok, 'other consoles still verify');
    await assert.rejects(rig.store.append(rec(20)), (e: Error & { code?: string }) => e.code === 'CC_ERR_CONFLICT' && e.message.includes(where));
    await rig.store.append(rec(2, { console: 'db01' }));
    const r = await rig.store.reseal!('web01', 'root', T + 99_000);
    assert.match(r.record.detail!, /head moved from an unreadable head to seq 14 .*is unreadable: .*how many records were cut off the end, and whether the end was replaced, cannot be known/);
    assert.ok((await rig.store.verify('web01')).ok);
  });
}
