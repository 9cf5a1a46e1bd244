// Terminal escape injection (issue 14, item 10): strings that come from users, relays and console
// output reach an admin's terminal only rendered visibly. A read-only user attaches with a client
// name full of escape sequences (the cloud refuses it); a hostile relay publishes a console whose
// type, reason, break names and event details carry the same (the cloud stores them escaped); an
// access rule's note carries them; the console prints them. Then the admin runs the commands that
// show those strings, and an attached terminal gets them as notices: nothing but the CLI's own line
// ends may be a control character, and the escaped forms must be there.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import YAML from 'yaml';
import { cleanup, cli, cloudcons, openPtyPeer, Terminal, until } from '../helpers.ts';
import { hostileRig, HOSTILE_ACCESS } from '../hostile-rig.ts';

after(cleanup);

/** Erase the line, cursor up, retitle the terminal, carriage return, right-to-left override, zero-width space. */
const EVIL = '\x1b[2K\x1b[1A\x1b]0;pwned\x07\r\u202e\u200b';
const SHOWN = '^[[2K^[[1A^[]0;pwned^G^M\\u202e\\u200b';
/** What a terminal would act on or draw as nothing: controls (the CLI's line ends removed first), bidi and invisible characters. */
const ACTS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}]/u;

function assertInert(what: string, text: string, lineEnd: RegExp = /\n/g): void {
  const m = ACTS.exec(text.replace(lineEnd, ''));
  assert.ok(!m, `${what}: U+${m?.[0].codePointAt(0)!.toString(16).padStart(4, '0')} at ${m?.index} in ${JSON.stringify(text.replace(lineEnd, '').slice(Math.max(0, (m?.index ?? 0) - 60), (m?.index ?? 0) + 20))}`);
}

test('hostile output: audit, who, ls, grep, replay --marks, token list, access show/check and attach notices show hostile strings escaped', { timeout: 240_000 }, async () => {
  const note = `ask the admin${EVIL}`;
  const r = await hostileRig('hout', { access: { ...HOSTILE_ACCESS, rules: [...HOSTILE_ACCESS.rules, { consoles: 'ser1', who: 'reader', deny: ['attach'], note }] } });
  const env = { CLOUDCONS_URL: r.url, CLOUDCONS_TOKEN: r.adminToken };
  const run = async (args: string[], e: NodeJS.ProcessEnv = env) => {
    const p = cloudcons(args, e);
    const code = await new Promise<number>((res) => p.child.once('exit', (c) => res(c ?? -1)));
    return { code, out: p.out, err: p.err };
  };

  // The reader attaches with a client name full of escape sequences: refused. One with a plain name stays on.
  const hostile = await r.socket('session', r.reader);
  hostile.send({ t: 'attach', c: 'ser1', mode: 'spy', client: EVIL });
  const refusal = await hostile.next((m) => m.t === 'error' || m.t === 'attached');
  assert.equal(refusal.t, 'error', JSON.stringify(refusal));
  assert.match(String(refusal.message), /client: a client name is printable ASCII/);
  const plain = await r.socket('session', r.reader);
  plain.send({ t: 'attach', c: 'ser1', mode: 'spy', client: 'cli' });
  await plain.next((m) => m.t === 'attached');

  // The hostile relay publishes evil1 with the same in its type and break names; the cloud keeps them escaped.
  const evil = await r.socket('relay', r.evil);
  evil.send({ t: 'hello', relay: 'evil', boot: 'b1', consoles: [{ name: 'evil1', type: `serial${EVIL}`, state: 'up', since: Date.now(), breaks: [{ id: '1', text: `reboot${EVIL}` }] }] });
  await evil.next((m) => m.t === 'welcome');
  evil.send({ t: 'out', c: 'evil1', o: 0, ts: Date.now(), d: Buffer.from('evil1 login: ').toString('base64') });
  const stored = await (await r.as(r.adminToken, '/v1/consoles/evil1')).json() as { type: string; breaks: { text: string }[] };
  assert.equal(stored.type, `serial${SHOWN}`);
  assert.equal(stored.breaks[0]!.text, `reboot${SHOWN}`);

  // An admin attached to evil1: a notice, a state change, the break list and `who` arrive as the relay wrote them.
  const adm = new Terminal(['attach', 'evil1', '-s', '--tail', '5'], env);
  await adm.waitFor('[attached to evil1: spy, read-only]');
  await adm.waitFor('evil1 login: ');
  evil.send({ t: 'event', c: 'evil1', what: 'idle', detail: `idle string sent${EVIL}` });
  await adm.waitFor(`[cloudcons: idle string sent${SHOWN}]`);
  evil.send({ t: 'console', info: { name: 'evil1', type: 'serial', state: 'down', since: Date.now(), reason: `unplugged${EVIL}` } });
  await adm.waitFor(`[console down: unplugged${SHOWN}]`);
  adm.write('\x05cl?');
  await adm.waitFor(` 1: reboot${SHOWN}`);
  adm.write('\x05cw');
  await adm.waitFor(/ admin\s+spy\s+since \S+\s+cli \S+/);
  // The reader, who may not write to ser1 by a rule with a hostile note, is told so by that rule.
  const rdr = new Terminal(['attach', 'ser1'], { CLOUDCONS_URL: r.url, CLOUDCONS_TOKEN: r.reader });
  await rdr.waitFor(`: ${note.replace(EVIL, SHOWN)})`);
  await rdr.waitFor('[attached to ser1: spy, read-only]');
  // (Checked before the console prints escape sequences below: those reach an attached terminal as sent.)
  assertInert('the reader\'s attached terminal', rdr.screen, /\r*\n/g);
  rdr.kill();

  // The console itself prints escape sequences: grep shows them escaped unless asked for --raw; --json is exact.
  const dev = openPtyPeer(r.pair.peer);
  const said = `marker-7 \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \u202eright-to-left\u200b end`;
  dev.write(Buffer.from(`${said}\r\n`));
  await until('the marker stored', async () => (await r.stored())?.bytes.includes('marker-7 '));
  await until('the marker searchable', async () => (await run(['grep', 'marker-7'])).code === 0, 15_000);

  const outputs: Record<string, { code: number; out: string; err: string }> = {};
  for (const args of [['ls'], ['who', 'ser1'], ['who', 'evil1'], ['audit', 'evil1'], ['audit', 'ser1'], ['grep', 'marker-7'], ['replay', 'evil1', '--marks'],
    ['token', 'list'], ['access', 'show'], ['access', 'check', 'reader', 'ser1'], ['ls', '--json'], ['audit', 'evil1', '--json']]) {
    const o = await run(args);
    assert.equal(o.code, 0, `${args.join(' ')}: ${o.out}${o.err}`);
    // Their own layout: grep's columns are tab-separated, replay's marker lines end in \r\n.
    assertInert(`cloudcons ${args.join(' ')} (stdout)`, o.out, args[0] === 'grep' ? /[\t\n]/g : args[0] === 'replay' ? /\r?\n/g : /\n/g);
    assertInert(`cloudcons ${args.join(' ')} (stderr)`, o.err);
    outputs[args.join(' ')] = o;
  }
  assert.match(outputs.ls!.out, new RegExp(`^evil1\\s+down\\s+serial\\s+evil\\s+-\\s+1\\s+unplugged${esc(SHOWN)}$`, 'm'));
  assert.match(outputs['who ser1']!.out, /^reader\s+spy\s+\S+\s+cli\s+\S+$/m);
  assert.doesNotMatch(outputs['who ser1']!.out, /\^\[/, 'the refused attach is not among the viewers');
  assert.ok(outputs['audit evil1']!.out.includes(`console.down    unplugged${SHOWN}`), outputs['audit evil1']!.out);
  assert.ok(outputs['audit evil1']!.out.includes(`console.idle    idle string sent${SHOWN}`), outputs['audit evil1']!.out);
  assert.ok(outputs['grep marker-7']!.out.includes('marker-7 ^[[31mred^[[0m ^[]0;pwned^G \\u202eright-to-left\\u200b end\n'), outputs['grep marker-7']!.out);
  assert.ok(outputs['replay evil1 --marks']!.out.includes(`[-- console down (unplugged${SHOWN}) --]`), outputs['replay evil1 --marks']!.out);
  assert.ok(outputs['access check reader ser1']!.out.includes(`DENY   denied by rule 2 (consoles ser1, who reader, deny attach: ask the admin${SHOWN})`), outputs['access check reader ser1']!.out);
  // access show is YAML that parses back to the exact rules, hostile note included.
  assert.deepEqual((YAML.parse(outputs['access show']!.out) as { rules: { note?: string }[] }).rules[1]!.note, note);
  assert.equal((JSON.parse(outputs['ls --json']!.out) as { name: string; reason?: string }[]).find((c) => c.name === 'evil1')!.reason, `unplugged${SHOWN}`);

  // The CLI's own control characters stay its own: export's progress bar on a terminal redraws with
  // \r and ends with a line end, not a rendered ^J.
  const bar = new Terminal(['export', 'evil1', '-o', path.join(r.dir, 'evil1.txt')], env);
  await bar.waitFor(/100% +\d+\.\d MiB +\d+\.\d MiB\/s\r\n/);
  assert.ok(bar.screen.startsWith('\r[') && !bar.screen.includes('^'), JSON.stringify(bar.screen));

  const raw = await run(['grep', 'marker-7', '--raw']);
  assert.ok(raw.out.includes(`${said}\n`), 'grep --raw prints the line as the console sent it');
  const json = await run(['grep', 'marker-7', '--json']);
  assertInert('grep --json', json.out);
  assert.equal((JSON.parse(json.out.trim()) as { line: string }).line, said);

  // A user token named with escape sequences, made straight in the data directory: refused there,
  // or listed escaped (the name rule itself belongs to the principal-name validation).
  const named = cli(['token', 'create', '--user', `mallory${EVIL}`, '--data', r.dataDir]);
  const list = await run(['token', 'list']);
  assert.equal(list.code, 0, list.err);
  assertInert('token list', list.out);
  if (named.code === 0) assert.ok(list.out.includes(`mallory${SHOWN}`), list.out);

  // The admin's terminal: only the CLI's own line ends (\r\n; \r\r\n before raw mode, when the pty adds a \r), every hostile string escaped.
  assertInert('the admin\'s attached terminal', adm.screen, /\r*\n/g);
  adm.kill();
  hostile.close();
  plain.close();
  evil.close();
});

const esc = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
