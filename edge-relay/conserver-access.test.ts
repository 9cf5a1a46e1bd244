// conserver rw/ro lists -> access rules: the rules load and decide as conserver would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { decide, parseAccess } from '../cloud/core/acl.ts';
import { accessRulesFromImport } from './conserver-access.ts';
import { importConserverCf } from './conserver-import.ts';

const FIX = path.resolve(import.meta.dirname, '..', 'test', 'fixtures', 'conserver');
const rulesOf = (f: string) => { const r = importConserverCf(f); return accessRulesFromImport(r.acl, r.consoles, f); };

test('small shop: rw * (from default *) everywhere, ro @dba on db01; host lists named as not mapped', () => {
  const a = rulesOf(path.join(FIX, 'small.cf'));
  const doc = parseAccess(YAML.parse(a.yaml));
  assert.equal(decide(doc, { name: 'anyone' }, 'web01', 'attach').allow, true);
  assert.equal(decide(doc, { name: 'dan', groups: ['dba'] }, 'db01', 'spy').allow, true);
  assert.equal(decide(doc, { name: 'anyone' }, 'web01', 'audit').allow, false, 'audit is for admins or an audit rule');
  assert.equal(a.notes.length, 2);
  assert.match(a.yaml, /small\.cf:34: host 10\.0\.0\.0\/8 .*no equivalent/);
});

test('big file: admins, a !name taking rw away on one console, ro lists, a console without lists open to all', () => {
  const a = rulesOf(path.join(FIX, 'big.cf'));
  const doc = parseAccess(YAML.parse(a.yaml));
  assert.deepEqual(doc.admins, ['alice', '@wheel']);
  assert.equal(decide(doc, { name: 'bob' }, 'rack1-s0', 'attach').allow, true);
  assert.equal(decide(doc, { name: 'carol' }, 'rack1-s1', 'attach').allow, true);
  assert.equal(decide(doc, { name: 'carol' }, 'rack1-s0', 'attach').allow, false, 'rw ops, !carol');
  assert.equal(decide(doc, { name: 'zed' }, 'usb3', 'attach').allow, true);
  assert.equal(decide(doc, { name: 'zed' }, 'sw1', 'spy').allow, false);
  assert.match(a.yaml, /limited guest .*ordinary users/);
});

test('cloudcons import conserver --access writes the rules file beside the relay config', () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cc-acc-')), 'access.yaml');
  const r = spawnSync(process.execPath, [path.resolve(import.meta.dirname, '..', 'bin', 'cloudcons.js'), 'import', 'conserver', path.join(FIX, 'small.cf'), '--access', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /consoles:/);
  assert.match(r.stderr, /access rules \(2 rules\) written to .*access\.yaml; 2 did not map/);
  assert.equal(parseAccess(YAML.parse(fs.readFileSync(out, 'utf8'))).rules.length, 2);
  fs.rmSync(path.dirname(out), { recursive: true });
});

test('conserver users are token users in normal form; a name cloudcons cannot take (a relay:, a look-alike) is left out with a note', () => {
  const acl = [
    { effect: 'allow', right: 'rw', who: ['Alice', 'relay:edge1', 'b\u043eb', '@Ops'], consoles: ['web01'], on: 'web01', from: ['x.cf:3'] },
    { effect: 'allow', right: 'admin', who: ['Root'], consoles: ['web01'], on: '*', from: ['x.cf:9'] },
  ] as const;
  const a = accessRulesFromImport(acl.map((x) => ({ ...x, who: [...x.who], consoles: [...x.consoles], from: [...x.from] })), ['web01'], 'x.cf');
  const doc = parseAccess(YAML.parse(a.yaml));
  assert.deepEqual(doc.rules[0]!.who, ['alice', '@ops']);
  assert.deepEqual(doc.admins, ['root']);
  assert.equal(decide(doc, { name: 'alice' }, 'web01', 'attach').allow, true);
  assert.equal(decide(doc, { name: 'sso:alice' }, 'web01', 'attach').allow, false, 'an SSO user must be named sso:alice');
  assert.equal(a.notes.length, 2);
  assert.match(a.notes[0]!, /^x\.cf:3: not a user or group cloudcons accepts: relay:edge1 names a relay; left out/);
  assert.match(a.notes[1]!, /^x\.cf:3: not a user or group cloudcons accepts: "b\\u043eb" holds U\+043E/);
  assert.match(a.yaml, /^# Users are token users \(alice\); a user who signs in with single sign-on is sso:alice/m);
});
