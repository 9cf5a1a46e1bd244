import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBreakString, breakTable, runBreak, BUILTIN_BREAKS } from './breaks.ts';

test('break strings: conserver escapes become bytes, breaks and pauses', () => {
  assert.deepEqual(parseBreakString('\\r~^b'), [{ kind: 'bytes', data: Buffer.from([13, 0x7e, 2]) }]);
  assert.deepEqual(parseBreakString('\\r\\d~\\d^b'), [
    { kind: 'bytes', data: Buffer.from([13]) }, { kind: 'delay' }, { kind: 'bytes', data: Buffer.from('~') }, { kind: 'delay' }, { kind: 'bytes', data: Buffer.from([2]) },
  ]);
  assert.deepEqual(parseBreakString('\\z'), [{ kind: 'break' }]);
  assert.deepEqual(parseBreakString('\\0\\177\\377\\1234^?^@^'), [{ kind: 'bytes', data: Buffer.from([0, 0x7f, 0xff, 0o123, 0x34, 0x7f, 0, 0x5e]) }]);
  assert.deepEqual(parseBreakString('\\\\\\^é'), [{ kind: 'bytes', data: Buffer.concat([Buffer.from('\\^'), Buffer.from('é')]) }]);
  assert.throws(() => parseBreakString('abc\\'), /lone backslash/);
  assert.throws(() => parseBreakString('\\400'), /more than one byte/);
  assert.throws(() => parseBreakString('^1'), /not a control character/);
});

test('break table: built-ins overlaid by the config, narrowed by a breaklist, in slot order', () => {
  const t = breakTable({ 2: { string: 'X' }, a: { string: 'A' }, 5: { string: '5' } }, undefined);
  assert.deepEqual([...t.keys()], ['1', '2', '3', '4', '5', 'a']);
  assert.deepEqual(t.get('2'), { string: 'X' });
  assert.deepEqual(t.get('1'), BUILTIN_BREAKS[1]);
  assert.deepEqual([...breakTable(undefined, ['3', '1']).keys()], ['1', '3']);
});

test('runBreak sends in order with the pauses', async () => {
  const log: string[] = [];
  const t0 = Date.now();
  await runBreak(parseBreakString('a\\d\\zb'), {
    write: async (d) => { log.push(`w:${d.toString()}@${Date.now() - t0 >= 40 ? 'late' : 'early'}`); },
    sendBreak: async () => { log.push('break'); },
  }, 50);
  assert.deepEqual(log, ['w:a@early', 'break', 'w:b@late']);
});
