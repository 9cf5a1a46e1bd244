// Contract suite for HotTail: the fs hot tail (embedded) and the DynamoDB one run it. `place()`
// gives a fresh place to keep one (a directory, a table); `make(place)` opens a hot tail there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HotTail } from '../../cloud/core/ports.ts';

type Closable = HotTail & { close(): void };

export function hotTailContract(name: string, make: (place: string) => Closable | Promise<Closable>, dir: () => string | Promise<string>): void {
  test(`${name}: runs, reads with chunk times, holes, overlap clipping, reopening`, async () => {
    const d = await dir();
    let h = await make(d);
    await h.append('c', 0, 100, Buffer.from('hello '));
    await h.append('c', 6, 101, Buffer.from('world'));
    await h.append('c', 3, 102, Buffer.from('lo world!')); // overlaps: only '!' is new
    await h.append('c', 20, 103, Buffer.from('after a hole'));
    assert.deepEqual(await h.runs('c'), [{ start: 0, end: 12 }, { start: 20, end: 32 }]);
    assert.equal(await h.end('c'), 32);
    assert.equal(await h.end('nobody'), 0);
    h.close();
    h = await make(d);
    const got = await h.read('c', 2, 25);
    assert.deepEqual(got.map((c) => [c.offset, c.ts, c.data.toString()]), [[2, 100, 'llo '], [6, 101, 'world'], [11, 102, '!'], [20, 103, 'after']]);
    assert.equal(await h.offsetAt('c', 101), 6);
    assert.equal(await h.offsetAt('c', 102.5), 20);
    assert.equal(await h.offsetAt('c', 999), undefined);
    assert.deepEqual(await h.consoles(), ['c']);
    assert.deepEqual(await h.runs('nobody'), []);
    h.close();
  });

  test(`${name}: trim forgets what lies below, keeps the rest`, async () => {
    const h = await make(await dir());
    for (let i = 0; i < 50; i++) await h.append('c', i * 100, i, Buffer.alloc(100, 65 + (i % 26)));
    await h.trim('c', 2500);
    const runs = await h.runs('c');
    assert.equal(runs.at(-1)!.end, 5000);
    assert.ok(runs[0].start <= 2500, `kept everything from 2500: ${JSON.stringify(runs)}`);
    const rest = await h.read('c', 2500, 5000);
    assert.equal(Buffer.concat(rest.map((c) => c.data)).length, 2500);
    await h.trim('c', 5000);
    assert.deepEqual(await h.runs('c'), []);
    await h.append('c', 5000, 99, Buffer.from('x'));
    assert.deepEqual(await h.runs('c'), [{ start: 5000, end: 5001 }]);
    h.close();
  });

  test(`${name}: a console name that is not one is refused (BadParameter, the rule) before it makes a path or key`, async () => {
    const h = await make(await dir());
    for (const bad of ['../../x', '..', 'a/b', '-rf', '_cloud', 'x'.repeat(129), '']) {
      await assert.rejects(h.append(bad, 0, 1, Buffer.from('x')), (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER' && /must be 1 to 128 letters|required/.test(e.message), bad);
      await assert.rejects(h.read(bad, 0, 10), (e: Error & { code?: string }) => e.code === 'CC_ERR_BAD_PARAMETER', bad);
    }
    assert.deepEqual(await h.consoles(), []);
    h.close();
  });
}
