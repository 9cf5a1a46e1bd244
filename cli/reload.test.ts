import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reloader, type ReloadOutcome } from './reload.ts';

test('reloads run one at a time: requests while one runs make exactly one more, after it; hooks see each start and end', async () => {
  const events: string[] = [];
  let runs = 0;
  const r = new Reloader(async () => {
    const n = ++runs;
    events.push(`run ${n}`);
    await new Promise((res) => setTimeout(res, 50));
    return { ok: true, detail: `done ${n}` };
  }, (l) => events.push(`log ${l}`));
  r.onReload(() => events.push('start'), (o: ReloadOutcome) => events.push(`end ${o.detail}`));
  const all = Array.from({ length: 10 }, () => r.request());
  await Promise.all(all);
  assert.equal(runs, 2);
  assert.deepEqual(events, ['start', 'run 1', 'log done 1', 'end done 1', 'start', 'run 2', 'log done 2', 'end done 2']);
  await r.request(); // idle again: a request runs at once
  assert.equal(runs, 3);
});

test('a reload that throws counts as refused and says why; a hook that throws is logged and the next reload still runs', async () => {
  const logs: string[] = [];
  let fail = true;
  const r = new Reloader(async () => { if (fail) throw new Error('disk on fire'); return { ok: true, detail: 'fine' }; }, (l) => logs.push(l));
  const seen: boolean[] = [];
  r.onReload(() => { throw new Error('hook broke'); }, (o) => seen.push(o.ok));
  await r.request();
  fail = false;
  await r.request();
  assert.deepEqual(seen, [false, true]);
  assert.deepEqual(logs, ['reload hook: hook broke', 'reload failed: disk on fire', 'reload hook: hook broke', 'fine']);
});
