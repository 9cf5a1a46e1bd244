import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryConfig } from './entry-shared.ts';

const base = { CLOUDCONS_TABLE: 't', CLOUDCONS_SEGMENTS_BUCKET: 'b' };

test('the replay, history and grep limits come from the environment on Lambda', () => {
  assert.deepEqual(entryConfig(base).core, {});
  assert.deepEqual(entryConfig({
    ...base, CLOUDCONS_MAX_QUERIES_PER_USER: '2', CLOUDCONS_MAX_QUERIES: '8', CLOUDCONS_MAX_HISTORY_BYTES: '65536',
    CLOUDCONS_MAX_PATTERN_LENGTH: '200', CLOUDCONS_MAX_PATTERN_STATES: '500', CLOUDCONS_MAX_GREP_MS: '5000',
  }).core, { maxQueriesPerUser: 2, maxQueries: 8, maxHistoryBytes: 65536, maxPatternLength: 200, maxPatternStates: 500, maxGrepMs: 5000 });
  assert.throws(() => entryConfig({ ...base, CLOUDCONS_MAX_GREP_MS: 'soon' }), /CLOUDCONS_MAX_GREP_MS must be a positive integer, got 'soon'/);
});
