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

test('the relay limits come from the environment, and a bad value stops the function naming it', () => {
  assert.deepEqual(entryConfig(base).core, {});
  const c = entryConfig({ ...base, CLOUDCONS_MAX_CONSOLES_PER_RELAY: '50', CLOUDCONS_RELAY_AUDITS_PER_MIN: '60', CLOUDCONS_RELAY_AUDIT_BURST: '100', CLOUDCONS_FENCE_CLAIM_SLACK: '0', CLOUDCONS_USER_AUDITS_PER_MIN: '30', CLOUDCONS_USER_AUDIT_BURST: '40' }).core;
  assert.deepEqual(c, { maxConsolesPerRelay: 50, relayAuditsPerMin: 60, relayAuditBurst: 100, fenceClaimSlack: 0, userAuditsPerMin: 30, userAuditBurst: 40 });
  assert.throws(() => entryConfig({ ...base, CLOUDCONS_MAX_CONSOLES_PER_RELAY: '0' }), /CLOUDCONS_MAX_CONSOLES_PER_RELAY must be a positive integer, got '0'/);
  assert.throws(() => entryConfig({ ...base, CLOUDCONS_FENCE_CLAIM_SLACK: '-1' }), /CLOUDCONS_FENCE_CLAIM_SLACK must be a whole number, got '-1'/);
});
