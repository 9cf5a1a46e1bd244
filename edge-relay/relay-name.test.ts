import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultSpoolDir, recordName, relayName } from './relay-name.ts';
import { cleanup, tmpDir } from '../test/helpers.ts';

after(cleanup);

test('default spool: STATE/spool/<name>, STATE/spool/default without a name; STATE is systemd\'s $STATE_DIRECTORY, else $XDG_STATE_HOME/cloudcons', () => {
  const x = tmpDir('state');
  assert.deepEqual(defaultSpoolDir('edge1', { XDG_STATE_HOME: x }), { dir: path.join(x, 'cloudcons', 'spool', 'edge1') });
  assert.deepEqual(defaultSpoolDir(undefined, { XDG_STATE_HOME: x }), { dir: path.join(x, 'cloudcons', 'spool', 'default') });
  assert.deepEqual(defaultSpoolDir(undefined, { STATE_DIRECTORY: '/var/lib/cloudcons:/var/lib/other', XDG_STATE_HOME: x }), { dir: '/var/lib/cloudcons/spool/default' });
  // A relay that used to take the host's name keeps that spool (its unsent output) until `default` exists.
  const old = path.join(x, 'cloudcons', 'spool', os.hostname());
  fs.mkdirSync(old, { recursive: true });
  assert.deepEqual(defaultSpoolDir(undefined, { XDG_STATE_HOME: x }), { dir: old, legacy: true });
  recordName(old, 'edge1'); // ... unless the name learned since is recorded there: it is edge1's
  assert.deepEqual(defaultSpoolDir(undefined, { XDG_STATE_HOME: x }), { dir: path.join(x, 'cloudcons', 'spool', 'default') });
});

test('the name: the config\'s, else the spool\'s record; a config naming another relay than the spool\'s is refused, in any case', () => {
  const spool = path.join(tmpDir('spool'), 'default');
  assert.deepEqual(relayName(undefined, spool), {});
  assert.deepEqual(relayName('edge1', spool), { name: 'edge1', from: 'config' });
  recordName(spool, 'edge1');
  assert.equal(fs.statSync(path.join(spool, '.relay-name')).mode & 0o777, 0o600);
  assert.deepEqual(relayName(undefined, spool), { name: 'edge1', from: 'spool' });
  assert.deepEqual(relayName('Edge1', spool), { name: 'Edge1', from: 'config' });
  assert.throws(() => relayName('edge2', spool), /spool .* holds relay edge1's output \(.*\.relay-name\), but relay\.yaml names this relay edge2: give relay edge2 a spool of its own/);
});
