import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadParameter } from './errors.ts';
import { checkConsoleName, consoleNameProblem, CLOUD_STREAM } from './names.ts';

test('checkConsoleName: the name, or BadParameter naming the parameter, the value (shown escaped) and the rule', () => {
  assert.equal(checkConsoleName('web01'), 'web01');
  assert.equal(checkConsoleName(CLOUD_STREAM, 'console', { cloudStream: true }), CLOUD_STREAM);
  assert.throws(() => checkConsoleName(CLOUD_STREAM), /console "_cloud": must be 1 to 128 letters/);
  assert.throws(() => checkConsoleName(''), (e: Error) => e instanceof BadParameter && e.message === 'console: required (1 to 128 letters, digits or . _ : @ -, starting with a letter or digit)');
  // A hostile name cannot reorder the message it is shown in (a log line, an HTTP error).
  assert.equal(consoleNameProblem('web\u202e10bew'), 'console name "web\\u202e10bew": must be 1 to 128 letters, digits or . _ : @ -, starting with a letter or digit');
  assert.match(consoleNameProblem('x'.repeat(200), 'relay name')!, /^relay name "x{80}\.\.\.": must be/);
  assert.equal(consoleNameProblem(7), 'console name number: must be 1 to 128 letters, digits or . _ : @ -, starting with a letter or digit');
});
