// `cloudcons audit verify` end to end: a real cloud and relay process, a user typing through the
// CLI on a pty; the audit's hash chain verifies through the cloud's HTTP API and offline from the
// data directory; one edited byte and then records cut off the end are caught and the first broken
// record named, while `cloudcons audit NAME` still lists the records.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanup, cloudcons, serialRig, Terminal, until } from '../helpers.ts';

after(cleanup);

/** Runs the CLI without blocking this process. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const p = cloudcons(args, env);
  const code = await new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1)));
  return { code, out: p.out, err: p.err };
}

test('audit verify: intact chain through the cloud and offline; an edited byte and a cut-off end are named', { timeout: 120_000 }, async () => {
  const rig = await serialRig('auditv', [], { env: { CLOUDCONS_AUDIT_SEAL_EVERY: '4' } });
  const relay = rig.startRelay();
  await rig.relayUp(relay);
  const env = { CLOUDCONS_URL: rig.url, CLOUDCONS_TOKEN: rig.adminToken };
  const term = new Terminal(['attach', 'ser1'], env);
  await term.waitFor('[attached to ser1: read-write]');
  const file = path.join(rig.dataDir, 'audit', 'ser1.jsonl');
  for (const l of ['one', 'two', 'three', 'four', 'five']) {
    term.write(`${l}\r`);
    await until(`${l} audited`, () => fs.readFileSync(file, 'utf8').includes(Buffer.from(`${l}\r`).toString('base64')));
  }

  const all = await run(['audit', 'verify'], env);
  assert.equal(all.code, 0, all.out + all.err);
  assert.match(all.out, /^ser1: ok, \d+ records \(seq 1\.\.\d+, [1-9]\d* seals?\), head \d+ [0-9a-f]{12}$/m);
  assert.match(all.err, /all intact/);
  const listed = await run(['audit', 'ser1'], env);
  assert.equal(listed.code, 0, listed.err);
  assert.match(listed.out, /admin .*input\s+"three\^M"/);
  assert.match(listed.out, /audit\.seal\s+sealed 3 records, head [0-9a-f]{64}/);

  // One byte of the third input changed: the cloud and the offline check name that record.
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const i = lines.findIndex((l) => l.includes(Buffer.from('three\r').toString('base64')));
  const seq = JSON.parse(lines[i]).seq as number;
  const edited = [...lines];
  edited[i] = edited[i].replace('"user":"admin"', '"user":"admio"');
  fs.writeFileSync(file, edited.map((l) => l + '\n').join(''));
  const want = new RegExp(`^ser1: BROKEN at seq ${seq} \\(\\d{4}-\\d\\d-\\d\\dT[^,]+, input\\): hash mismatch: .*audit/ser1\\.jsonl line ${i + 1}`, 'm');
  const one = await run(['audit', 'verify', 'ser1'], env);
  assert.equal(one.code, 1, one.out + one.err);
  assert.match(one.out, want);
  const offline = await run(['audit', 'verify', '--data', rig.dataDir, 'ser1']);
  assert.equal(offline.code, 1, offline.out + offline.err);
  assert.match(offline.out, want);

  // Put back, then cut the last two records off (the head in audit-heads/ stays): caught.
  term.kill();
  await rig.cloud.kill();
  await relay.kill();
  const now = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const last = JSON.parse(now.at(-1)!).seq as number;
  fs.writeFileSync(file, now.slice(0, -2).map((l) => l.replace('"user":"admio"', '"user":"admin"') + '\n').join(''));
  const head = JSON.parse(fs.readFileSync(path.join(rig.dataDir, 'audit-heads', 'ser1.json'), 'utf8')) as { seq: number };
  const cut = await run(['audit', 'verify', '--data', rig.dataDir]);
  assert.equal(cut.code, 1, cut.out + cut.err);
  assert.match(cut.out, new RegExp(`^ser1: BROKEN at seq ${last - 1}: head mismatch: the chain ends at seq ${last - 2} .* but the head says seq ${head.seq} .*cut off the end`, 'm'));

  // The operator reseals (the cloud is stopped): the head moves to the last record and the chain
  // itself says that two records were missing; verify passes again, and says nothing was hidden.
  const reseal = await run(['audit', 'reseal', 'ser1', '--data', rig.dataDir]);
  assert.equal(reseal.code, 0, reseal.out + reseal.err);
  assert.match(reseal.out, new RegExp(`^ser1: resealed: head moved from seq ${head.seq} .* to seq ${last - 2} .*2 record\\(s\\) after it were missing; whether the records kept were rewritten too cannot be told from the head \\(compare a seal or archive kept elsewhere\\) \\(audit.reseal is seq ${last - 1}\\)`, 'm'));
  const again = await run(['audit', 'verify', '--data', rig.dataDir, 'ser1']);
  assert.equal(again.code, 0, again.out + again.err);
  const resealRec = JSON.parse(fs.readFileSync(file, 'utf8').trim().split('\n').at(-1)!) as { type: string; detail: string };
  assert.equal(resealRec.type, 'audit.reseal');
  // Broken records are not resealed: that would hide the evidence.
  const lines2 = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  lines2[2] = lines2[2].replace('"user":"admin"', '"user":"admio"');
  fs.writeFileSync(file, lines2.map((l) => l + '\n').join(''));
  const refused = await run(['audit', 'reseal', 'ser1', '--data', rig.dataDir]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.err, /broken at seq \d+ \(hash mismatch.*keep the evidence/);
});
