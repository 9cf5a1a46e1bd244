// conserver.cf -> relay config. Fixtures in test/fixtures/conserver/ are realistic files written
// from conserver.cf(5); smaller cases are written to temp files here.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConserverSyntaxError, importConserverCf, relayBreakString } from './conserver-import.ts';
import { breakStringProblem } from './breaks.ts';
import { parseRelayConfig, type RelayConfig } from './config.ts';
import { NotFound } from '../protocol/errors.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIX = path.join(ROOT, 'test', 'fixtures', 'conserver');
const d = { breakDelayMs: 250 }; // what parseRelayConfig fills in for every console

const dirs: string[] = [];
after(() => { for (const x of dirs) fs.rmSync(x, { recursive: true, force: true }); });

/** Writes files (name -> text) into a fresh temp dir; returns the dir. */
function tempFiles(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conserver-import-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** Imports a file and loads the YAML it produced as the relay does. */
function load(file: string): { cfg: RelayConfig; warnings: string[]; yaml: string; acl: ReturnType<typeof importConserverCf>['acl'] } {
  const r = importConserverCf(file);
  return { cfg: parseRelayConfig(r.yaml, file), warnings: r.warnings, yaml: r.yaml, acl: r.acl };
}

const aclComments = (yaml: string) => yaml.split('\n').filter((l) => l.startsWith('# acl suggestion: ')).map((l) => l.slice('# acl suggestion: '.length));

function syntaxError(fn: () => unknown): ConserverSyntaxError {
  try { fn(); } catch (e) {
    assert.ok(e instanceof ConserverSyntaxError, `expected ConserverSyntaxError, got ${String(e)}`);
    assert.equal(e.code, 'CC_ERR_CONFIG');
    return e;
  }
  assert.fail('expected a ConserverSyntaxError');
}

test('small shop: terminal-server ports through portbase/portinc, a serial line, access lists', () => {
  const f = path.join(FIX, 'small.cf');
  const { cfg, warnings, yaml, acl } = load(f);
  assert.deepEqual(cfg.consoles, {
    // portbase 2000 + portinc 100 * port
    web01: { type: 'telnet', host: 'ts1.lab.example', port: 2100, ...d },
    web02: { type: 'telnet', host: 'ts1.lab.example', port: 2200, ...d },
    // conserver's device defaults: ixon and ixoff on, one stop bit; parity none is 8 data bits.
    db01: { type: 'serial', device: '/dev/ttyS0', baud: 115200, parity: 'none', dataBits: 8, stopBits: 1, flowControl: 'xonxoff', ...d },
  });
  assert.equal(cfg.breaks, undefined);
  assert.deepEqual(warnings, [
    `${f}:3: defaultaccess: a conserver server setting (config *); no relay equivalent`,
    `${f}:7: logfile: no relay equivalent: the cloud stores every console's output (cloudcons replay, export)`,
    `${f}:8: timestamp: no relay equivalent: the cloud timestamps all output (cloudcons replay --timestamps, --marks)`,
  ]);
  assert.deepEqual(aclComments(yaml), [
    'allow rw * on *',
    'allow ro @dba on db01',
    'allow trusted-host 127.0.0.1 on * (conserver access *)',
    'allow host 10.0.0.0/8 on * (conserver access *)',
  ]);
  assert.deepEqual(acl[1], { effect: 'allow', right: 'ro', who: ['@dba'], consoles: ['db01'], on: 'db01', from: [`${f}:29`] });
  assert.deepEqual(acl[2], { effect: 'allow', right: 'trusted-host', who: ['127.0.0.1'], consoles: ['web01', 'web02', 'db01'], on: '*', from: [`${f}:33`], server: '*' });
  // The warnings also head the YAML, as comments.
  assert.match(yaml, /^# Relay config imported from .*small\.cf by `cloudcons import conserver`\.\n# 3 things in it did not map to the relay; check before use:\n# {3}.*small\.cf:3: defaultaccess: /);
});

test('big file: default chains, #include, quoting, substitutions, breaks, every console type', () => {
  const B = path.join(FIX, 'big.cf');
  const S = path.join(FIX, 'sites', 'terminal-servers.cf');
  const { cfg, warnings, yaml, acl } = load(B);
  // From default *: idletimeout 30m and idlestring "\r" reach every console.
  const idle = { idleTimeout: 30 * 60_000, idleString: '\\r' };
  assert.deepEqual(cfg.consoles, {
    // From the #included file, in conserver's order. protocol raw -> tcp; telnet is the default.
    sw1: { type: 'tcp', host: 'ts2.example.com', port: 7017, ...idle, ...d },
    // initsubst %=hs puts the host in; breaklist "" allows no break sequence.
    sw2: { type: 'telnet', host: 'ts2.example.com', port: 7018, initcmd: '/usr/local/bin/login-switch ts2.example.com', breaklist: [], ...idle, ...d },
    // fast-serial <- serial-base <- base: baud 115200 over 9600, ondemand from base.
    'rack1-s0': { type: 'serial', device: '/dev/ttyS0', baud: 115200, parity: 'none', dataBits: 8, stopBits: 2, flowControl: 'rtscts', ondemand: true, break: '5', breaklist: ['1', '2', '5'], ...idle, ...d },
    // parity even: 7 data bits; idletimeout "" reset it (the idle string stays, unused).
    'rack1-s1': { type: 'serial', device: '/dev/ttyS1', baud: 9600, parity: 'even', dataBits: 7, stopBits: 1, flowControl: 'xonxoff', ondemand: true, idleString: '\\r', ...d },
    // devicesubst P=Pd: the computed port (0 + 1 * 3); the console's baud beats the default's.
    usb3: { type: 'serial', device: '/dev/ttyUSB3', baud: 57600, parity: 'none', dataBits: 8, stopBits: 1, flowControl: 'xonxoff', ondemand: true, ...idle, ...d },
    // conserver's workaround names are FreeIPMI's; ipmiconsole takes them.
    bmc1: { type: 'ipmi', host: '10.1.0.7', port: 623, user: 'ADMIN', password: 's3cr"et#1', privilege: 'OPERATOR', cipherSuite: 3, tool: 'ipmiconsole', workarounds: ['intel20', 'nochecksumcheck'], ...idle, ...d },
    // \" inside quotes; a bare number of seconds stays a number.
    shell: { type: 'exec', command: 'ssh -t admin@10.0.0.9 "console 1"', idleTimeout: 90_000, idleString: '\\r', ...d },
    rootshell: { type: 'exec', command: '/bin/sh -l', ...idle, ...d },
    'lab-3': { type: 'exec', command: '/usr/bin/true', ...idle, ...d },
    // udssubst C=cs: the console name.
    'vm-web': { type: 'uds', path: '/run/qemu/vm-web.sock', ...idle, ...d },
    // The second definition replaced the first.
    web3: { type: 'exec', command: '/opt/bin/web3-console', ...idle, ...d },
  });
  // Converted to the relay's break syntax: ^1 is ^A|0x10 in conserver (c & 0x1f), \e is "e".
  assert.deepEqual(cfg.breaks, {
    5: { string: '\\r~^b', delayMs: 600, confirm: true },
    6: { string: '\\033[B\\021e' },
    z: { string: '^]send brk\\r' },
  });
  assert.deepEqual(warnings, [
    `${B}:5: primaryport: a conserver server setting (config *); no relay equivalent`,
    `${B}:6: sslrequired: a conserver server setting (config *); no relay equivalent`,
    `${B}:13: logfile: no relay equivalent: the cloud stores every console's output (cloudcons replay, export)`,
    `${B}:14: logfilemax: no relay equivalent: stored output is kept by the cloud's retention (cloudcons cloud --retention)`,
    `${S}:16: motd: no relay equivalent (message shown at attach)`,
    `${B}:45: breaklist: break 7 not defined by any break block; left out`,
    `${B}:54: options hupcl: the relay has no setting to lower the modem lines on close`,
    `${B}:54: options !autoreinit: the relay always reopens a console that went down (\`cloudcons console down\` keeps it closed)`,
    `${B}:66: aliases: console usb3: the relay has no console aliases (u3, usb-three); only "usb3" is imported`,
    `${B}:73: password: console bmc1: now inline in the relay config; better put it in a file (mode 0600) and use passwordFile: /etc/cloudcons/bmc1.pw`,
    `${B}:76: ipmiworkaround: "!integrity" turns a workaround off; ipmiconsole has none on by default, so it is left out`,
    `${B}:77: ipmikg: console bmc1: the relay reads K_g from a file: put it in one (mode 0600) and set kgFile`,
    `${B}:83: execrunas: no relay equivalent: the command runs as the relay's user`,
    `${B}:85: motd: no relay equivalent (message shown at attach)`,
    `${B}:88: exec: console rootshell has no command, so conserver runs root's login shell (-i); imported as "/bin/sh -l" under the relay's user`,
    `${B}:90: console "lab#3": not a valid relay console name (1 to 128 letters, digits or . _ : @ -, starting with a letter or digit); imported as "lab-3"`,
    `${B}:96: console placeholder: type noop is a placeholder with nothing to connect to; skipped`,
    `${B}:99: console web3: defined again; this definition replaces the one at ${B}:98 (as in conserver)`,
    `${B}:102: colour: not a keyword of a console block in conserver.cf(5); ignored`,
    `${B}:103: baud: has no value; conserver ignores the line (write baud ""; to reset it)`,
    `${B}:106: #include: "/etc/conserver/not-read.cf" is not in column 0, so conserver.cf(5) makes the line a comment and it was not read (conserver's parser may read it anyway: move it to column 0 if it is meant)`,
    `${B}:108: task r: tasks (^Ec!r) have no relay equivalent; run the command another way`,
  ]);
  // group ops = bob, carol, @netops; rack1-s0 adds "rw ops, !carol"; "my defs" gives rw * to usb3.
  assert.deepEqual(aclComments(yaml), [
    'allow rw bob,@netops on *',
    'allow rw carol on sw1,sw2,rack1-s1,usb3,bmc1,shell,rootshell,lab-3,vm-web,web3',
    'deny rw carol on rack1-s0',
    'allow ro alice on rack1-s1',
    'allow rw * on usb3',
    'allow admin alice,@wheel on * (conserver access *)',
    'allow limited guest on * (conserver access *)',
    'allow trusted-host 127.0.0.1 on * (conserver access *)',
    'allow host 10.0.0.0/8,192.168.1.0/24 on * (conserver access *)',
    // include * copies the lists of access *.
    'allow admin alice,@wheel on * (conserver access backup.example.com)',
    'allow limited guest on * (conserver access backup.example.com)',
    'allow trusted-host 127.0.0.1 on * (conserver access backup.example.com)',
    'allow host 10.0.0.0/8,192.168.1.0/24 on * (conserver access backup.example.com)',
    'deny host 10.9.9.9 on * (conserver access backup.example.com)',
  ]);
  assert.deepEqual(acl[0].from, [`${B}:17`, `${B}:47`]);
  assert.deepEqual(acl[2], { effect: 'deny', right: 'rw', who: ['carol'], consoles: ['rack1-s0'], on: 'rack1-s0', from: [`${B}:47`] });
});

test('a syntax error stops the import and names FILE:LINE', () => {
  const f = path.join(FIX, 'broken.cf');
  const e = syntaxError(() => importConserverCf(f));
  assert.equal(e.message, `${f}:8: expected ';' after the value of "device", got '}' (conserver drops the whole console block)`);
  assert.equal(e.file, f);
  assert.equal(e.line, 8);
});

test('a missing file is NotFound with a one-line message', () => {
  const f = path.join(FIX, 'no-such.cf');
  assert.throws(() => importConserverCf(f), (e: unknown) => e instanceof NotFound && e.message === `cannot read ${f}: no such file`);
});

test('quoting, comments and whitespace as conserver.cf(5) and conserver\'s reader have them', () => {
  const dir = tempFiles({
    'conserver.cf': [
      'default * { master localhost; }',
      'console q1 {',
      '  type exec;',
      // Inside "...": only \" is special; { } ; # are plain, the backslash of \n stays.
      '  exec "printf \'%s\\n\' \\"a;b{c}\\" # not a comment";',
      // Outside quotes a backslash makes the next character literal; trailing blanks go.
      '  initcmd echo\\ hi\\;there   ;',
      // Leading blanks inside quotes stay; trailing ones go even when quoted (conserver does so).
      '  idlestring "  \\r  ";',
      '}',
      // A block name may hold spaces; single quotes are ordinary characters.
      'console two words { type exec; exec it\'s \'quoted\'; }',
      // A comment hides { ; } and takes its line break with it.
      'console q3 { type exec; exec /bin/y# the rest { ; } is a comment',
      '  ; }',
      'CONSOLE q4 { Type EXEC; EXEC "";  }',
    ].join('\n'),
  });
  const f = path.join(dir, 'conserver.cf');
  const { cfg, warnings } = load(f);
  assert.deepEqual(cfg.consoles, {
    q1: { type: 'exec', command: 'printf \'%s\\n\' "a;b{c}" # not a comment', initcmd: 'echo hi;there', idleString: '  \\r', ...d },
    'two-words': { type: 'exec', command: 'it\'s \'quoted\'', ...d },
    q3: { type: 'exec', command: '/bin/y', ...d },
    q4: { type: 'exec', command: '/bin/sh -l', ...d },
  });
  assert.deepEqual(warnings, [
    `${f}:8: console "two words": not a valid relay console name (1 to 128 letters, digits or . _ : @ -, starting with a letter or digit); imported as "two-words"`,
    `${f}:11: exec: console q4 has no command, so conserver runs root's login shell (-i); imported as "/bin/sh -l" under the relay's user`,
  ]);
});

test('inheritance: default * reaches later consoles only, defaults do not inherit it, include is a snapshot, a redefinition replaces', () => {
  const dir = tempFiles({
    'conserver.cf': `console early { type exec; exec /bin/early; }
default * { master localhost; initcmd /bin/init-star; }
default d1 { idletimeout 5m; }
console c0 { type exec; exec /bin/c0; include d1; }
default d1 { idletimeout 10m; }
default d2 { include d1; idlestring x; }
console c2 { type exec; exec /bin/c2; include d2; }
console c3 { type exec; exec /bin/c3; initcmd /bin/mine; include d2; }
console C0 { type exec; exec /bin/c0-again; }
console c4 { include nosuch; type exec; exec /bin/c4; }
`,
  });
  const f = path.join(dir, 'conserver.cf');
  const { cfg, warnings } = load(f);
  assert.deepEqual(cfg.consoles, {
    // Defined before default *: nothing of it.
    early: { type: 'exec', command: '/bin/early', ...d },
    c2: { type: 'exec', command: '/bin/c2', initcmd: '/bin/init-star', idleTimeout: 600_000, idleString: 'x', ...d },
    // d2 does not carry default *'s initcmd, so the console's own stays.
    c3: { type: 'exec', command: '/bin/c3', initcmd: '/bin/mine', idleTimeout: 600_000, idleString: 'x', ...d },
    // Console names are case-insensitive: C0 replaced c0 (and moved to the end, as in conserver).
    C0: { type: 'exec', command: '/bin/c0-again', initcmd: '/bin/init-star', ...d },
    c4: { type: 'exec', command: '/bin/c4', initcmd: '/bin/init-star', ...d },
  });
  assert.deepEqual(warnings, [
    `${f}:1: master: console early has none, which conserver refuses; imported anyway`,
    `${f}:9: console C0: defined again; this definition replaces the one at ${f}:4 (as in conserver)`,
    `${f}:10: include: no default "nosuch" is defined before this line; ignored (as in conserver)`,
  ]);
});

test('include snapshot: the 5m of d1 stays with a console that included it before d1 was redefined', () => {
  const dir = tempFiles({
    'a.cf': `default * { master localhost; }
default d1 { idletimeout 5m; }
console c0 { type exec; exec /bin/c0; include d1; }
default d1 { idletimeout 10m; }
console c1 { type exec; exec /bin/c1; include d1; }
`,
  });
  const { cfg } = load(path.join(dir, 'a.cf'));
  assert.equal(cfg.consoles.c0.idleTimeout, 300_000);
  assert.equal(cfg.consoles.c1.idleTimeout, 600_000);
});

test('values: "" resets to conserver\'s default, a missing value is reported and ignored, lists take ! and groups', () => {
  const dir = tempFiles({
    'conserver.cf': `default * { master localhost; rw alice; idletimeout 30m; options ondemand; }
group admins { users root, !mallory, @wheel; }
console a { type exec; exec /bin/a; idletimeout ""; options ""; rw ""; rw bob; initcmd ; }
console b { type exec; exec /bin/b; breaklist ""; ro !admins; }
console c { type exec; exec /bin/c; break 5; idletimeout 2h; ro admins, !@wheel; }
`,
  });
  const f = path.join(dir, 'conserver.cf');
  const { cfg, warnings, yaml, acl } = load(f);
  assert.deepEqual(cfg.consoles, {
    a: { type: 'exec', command: '/bin/a', ...d },
    b: { type: 'exec', command: '/bin/b', idleTimeout: 1_800_000, ondemand: true, breaklist: [], ...d },
    c: { type: 'exec', command: '/bin/c', idleTimeout: 7_200_000, ondemand: true, ...d },
  });
  assert.deepEqual(warnings, [
    `${f}:3: initcmd: has no value; conserver ignores the line (write initcmd ""; to reset it)`,
    `${f}:5: break: console c uses break 5, which no break block defines; not set`,
  ]);
  // "!admins" reverses each member: root denied, mallory allowed.
  assert.deepEqual(aclComments(yaml), [
    'allow rw bob on a',
    'allow rw alice on b,c',
    'deny ro root on b',
    'allow ro mallory on b',
    'deny ro @wheel on b,c',
    'allow ro root on c',
    'deny ro mallory on c',
  ]);
  assert.deepEqual(acl.map((a) => a.from), [[`${f}:3`], [`${f}:1`], [`${f}:4`], [`${f}:4`], [`${f}:4`, `${f}:5`], [`${f}:5`], [`${f}:5`]]);
});

test('#include: relative to the including file, read in place; cycles, more than 10 files and missing files are errors', () => {
  const dir = tempFiles({
    'top.cf': 'default * { master localhost; }\n#include sub/a.cf\nconsole t { type exec; exec /bin/t; }\n',
    'sub/a.cf': '#include b.cf\nconsole a { type exec; exec /bin/a; }\n',
    'sub/b.cf': 'console b { type exec; exec /bin/b; logfile /var/log/b; }\n',
  });
  const { cfg, warnings } = load(path.join(dir, 'top.cf'));
  assert.deepEqual(Object.keys(cfg.consoles), ['b', 'a', 't']);
  assert.deepEqual(warnings, [`${path.join(dir, 'sub', 'b.cf')}:1: logfile: no relay equivalent: the cloud stores every console's output (cloudcons replay, export)`]);

  // CRLF line ends: the \r is whitespace, also after an #include's file name.
  const crlf = tempFiles({ 'a.cf': 'default * { master localhost; }\r\n#include b.cf\r\n', 'b.cf': 'console b {\r\n  type uds;\r\n  uds /run/b.sock;\r\n}\r\n' });
  assert.deepEqual(load(path.join(crlf, 'a.cf')).cfg.consoles, { b: { type: 'uds', path: '/run/b.sock', ...d } });

  // An include may even hold part of a block: conserver keeps its reader's state across files.
  const half = tempFiles({ 'x.cf': 'console h {\n#include body.cf\n}\n', 'body.cf': 'type exec; exec /bin/h; master localhost;\n' });
  assert.deepEqual(load(path.join(half, 'x.cf')).cfg.consoles, { h: { type: 'exec', command: '/bin/h', ...d } });

  const loop = tempFiles({ 'x.cf': '#include y.cf\n', 'y.cf': '\n#include x.cf\n' });
  const x = path.join(loop, 'x.cf');
  const y = path.join(loop, 'y.cf');
  assert.equal(syntaxError(() => importConserverCf(x)).message, `${y}:2: #include x.cf: include cycle (${x} -> ${y} -> ${x})`);

  // conserver reads at most 10 files deep: f0 .. f9 is fine, f10 is one too many.
  const chain = (n: number) => tempFiles(Object.fromEntries(Array.from({ length: n }, (_, i) =>
    [`f${i}.cf`, i < n - 1 ? `#include f${i + 1}.cf\n` : 'console deep { type exec; exec /bin/deep; master localhost; }\n'])));
  assert.deepEqual(Object.keys(load(path.join(chain(10), 'f0.cf')).cfg.consoles), ['deep']);
  const deep = chain(11);
  assert.equal(syntaxError(() => importConserverCf(path.join(deep, 'f0.cf'))).message, `${path.join(deep, 'f9.cf')}:1: #include f10.cf: more than 10 files deep (conserver's limit)`);

  const missing = tempFiles({ 'm.cf': 'default * { master localhost; }\n#include nothere.cf\n' });
  assert.equal(syntaxError(() => importConserverCf(path.join(missing, 'm.cf'))).message,
    `${path.join(missing, 'm.cf')}:2: #include nothere.cf: cannot read ${path.join(missing, 'nothere.cf')}: no such file`);
});

test('syntax errors name FILE:LINE', () => {
  const cases: [string, string][] = [
    ['console a {\n  type exec;\n  exec "/bin/a;\n}\n', `3: unterminated quoted string (a closing " is missing)`],
    ['# comment\nconsol a { type exec; }\n', `2: unknown block type "consol" (conserver.cf has access, break, config, console, default, group, task)`],
    ['console a {\n  type exec;\n', `3: unexpected end of file: console "a" (FILE:1) is not closed with '}'`],
    ['console a { type }\n', `1: "type" has no value and no ';' before '}' (conserver drops the whole console block)`],
    ['console a { type exec; } }\n', `1: unexpected '}': expected a block type (access, break, config, console, default, group, task)`],
    ['console { type exec; }\n', `1: expected a name after "console", got '{'`],
    // A block name runs up to the next { } ; (spaces and line breaks kept inside), as in conserver.
    ['console a\n  type exec;\n', `2: expected '{' after console "a\\n  type exec", got ';'`],
    ['console a {\n  type exec {\n}\n', `2: expected ';' after the value of "type", got '{' (conserver drops the whole console block)`],
  ];
  for (const [text, want] of cases) {
    const dir = tempFiles({ 'c.cf': text });
    const f = path.join(dir, 'c.cf');
    assert.equal(syntaxError(() => importConserverCf(f)).message, `${f}:${want.replace('FILE', f)}`, text);
  }
});

test('console names the relay cannot take are renamed, or skipped when taken or empty', () => {
  const dir = tempFiles({
    'c.cf': `default * { master localhost; type exec; exec /bin/x; }
console web-1 { }
console "web 1" { }
console "..." { }
console db/2 { }
`,
  });
  const f = path.join(dir, 'c.cf');
  const { cfg, warnings } = load(f);
  assert.deepEqual(Object.keys(cfg.consoles), ['web-1', 'db-2']);
  const rule = '1 to 128 letters, digits or . _ : @ -, starting with a letter or digit';
  assert.deepEqual(warnings, [
    `${f}:3: console "web 1": not a valid relay console name (${rule}); "web-1" is taken; skipped`,
    `${f}:4: console "...": not a valid relay console name (${rule}) and nothing usable is left of it; skipped`,
    `${f}:5: console "db/2": not a valid relay console name (${rule}); imported as "db-2"`,
  ]);
});

test('consoles the relay cannot open are skipped and say why; bad values are ignored, a remote master reported', () => {
  const dir = tempFiles({
    'c.cf': `default * { master localhost; }
console big { type host; host ts; portbase 65000; portinc 100; port 10; }
console nohost { type host; port 7; }
console badport { type host; host ts; port 70000; }
console named { type host; host ts; port telnet; }
console untyped { exec /bin/x; }
console fast { type device; device /dev/ttyS3; baud 300000000; parity odd; options ixany, !ixoff; }
console sp { type device; device /dev/ttyS4; baud 9600; parity space; }
console ipmi2 { type ipmi; host bmc2; ipmiciphersuite 99; ipmiprivlevel admin; }
console far { type exec; exec /bin/far; master cs2.example.com; }
`,
  });
  const f = path.join(dir, 'c.cf');
  const { cfg, warnings } = load(f);
  const unix = process.platform !== 'win32';
  assert.deepEqual(cfg.consoles, {
    named: { type: 'telnet', host: 'ts', port: 23, ...d },
    fast: { type: 'serial', device: '/dev/ttyS3', baud: 9600, parity: 'odd', dataBits: 7, stopBits: 1, flowControl: 'xonxoff', ...d },
    ...(unix ? {} : { sp: { type: 'serial', device: '/dev/ttyS4', baud: 9600, parity: 'space', dataBits: 7, stopBits: 1, flowControl: 'xonxoff', ...d } }),
    ipmi2: { type: 'ipmi', host: 'bmc2', port: 623, user: '', privilege: 'ADMINISTRATOR', tool: 'ipmitool', ...d },
    far: { type: 'exec', command: '/bin/far', ...d },
  });
  assert.deepEqual(warnings, [
    `${f}:2: console big: port 10 with portbase 65000 and portinc 100 gives 66000, not a TCP port; skipped`,
    `${f}:3: console nohost: type host without a host; skipped`,
    `${f}:4: port: "70000" is not a port number; ignored`,
    `${f}:4: console badport: type host without a port; skipped`,
    `${f}:6: console untyped: has no type (conserver rejects it too); skipped`,
    `${f}:7: baud: "300000000" is not a baud rate (50..4000000); ignored`,
    `${f}:7: baud: console fast has none (conserver requires one); the relay's default 9600 is used`,
    `${f}:7: options: console fast has XON/XOFF in one direction only (ixon on, ixoff off); the relay's xonxoff covers both`,
    `${f}:7: options ixany: the relay has no setting for "any character restarts output"`,
    ...(unix ? [`${f}:8: console sp: parity space is not supported by the relay's serial driver on ${process.platform}; skipped`] : []),
    `${f}:9: ipmiciphersuite: 99 is not a cipher suite the relay takes (0-17); the tool's default is used`,
    `${f}:10: master: cs2.example.com is another host: conserver there manages the console; imported into this relay anyway (give each relay only its own consoles)`,
  ]);
});

test('break and idle strings come out in the relay\'s break syntax', () => {
  const cases: [string, string][] = [
    ['\\r~^b', '\\r~^b'], // the same in both
    ['\\r\\d~\\d^b', '\\r\\d~\\d^b'],
    ['\\z', '\\z'],
    ['\\e\\.', 'e.'], // \c is c itself in conserver
    ['^1x', '\\021x'], // ^c is c & 0x1f in conserver
    ['^?^[^_', '^?^[^_'],
    ['\\101\\7', '\\101\\007'],
    ['x^', 'x^'],
    ['a\\', 'a\\\\'],
  ];
  for (const [conserver, relay] of cases) {
    assert.equal(relayBreakString(conserver), relay, conserver);
    assert.equal(breakStringProblem(relay), undefined, relay);
  }
});

// ---------------------------------------------------------------------------------------------
// The command, end to end, as shipped (bin/cloudcons.js: the bundle, or the sources when stale).

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.CLOUDCONS_FROM_SOURCE;
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'cloudcons.js'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('cloudcons import conserver FILE: YAML on stdout, warnings on stderr', { timeout: 60_000 }, async () => {
  const f = path.join(FIX, 'big.cf');
  const r = await runCli(['import', 'conserver', f]);
  assert.equal(r.code, 0, r.stderr);
  const cfg = parseRelayConfig(r.stdout, 'stdout');
  assert.deepEqual(Object.keys(cfg.consoles), ['sw1', 'sw2', 'rack1-s0', 'rack1-s1', 'usb3', 'bmc1', 'shell', 'rootshell', 'lab-3', 'vm-web', 'web3']);
  assert.equal(r.stdout, importConserverCf(f).yaml);
  assert.deepEqual(r.stderr.trimEnd().split('\n'), importConserverCf(f).warnings.map((w) => `cloudcons import: ${w}`));
  assert.match(r.stderr, /^cloudcons import: .*big\.cf:5: primaryport: /);
});

test('cloudcons import conserver --strict exits 1 when something did not map (and still writes the YAML)', { timeout: 60_000 }, async () => {
  const r = await runCli(['import', 'conserver', '--strict', path.join(FIX, 'small.cf')]);
  assert.equal(r.code, 1);
  assert.deepEqual(Object.keys(parseRelayConfig(r.stdout, 'stdout').consoles), ['web01', 'web02', 'db01']);
  assert.equal(r.stderr.trimEnd().split('\n').length, 3);

  // Everything mapped (a local master is this relay): exit 0, nothing on stderr.
  const clean = tempFiles({ 'c.cf': 'default * { master localhost; rw *; }\nconsole a { type exec; exec /bin/a; }\n' });
  const r2 = await runCli(['import', 'conserver', '--strict', path.join(clean, 'c.cf')]);
  assert.deepEqual([r2.code, r2.stderr], [0, '']);
  assert.match(r2.stdout, /^# Everything in it was mapped\.$/m);
});

test('cloudcons import conserver: a missing file or a syntax error exits non-zero with one clear line', { timeout: 60_000 }, async () => {
  const missing = path.join(FIX, 'no-such.cf');
  const r = await runCli(['import', 'conserver', missing]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `cloudcons: cannot read ${missing}: no such file\n`);

  const broken = path.join(FIX, 'broken.cf');
  const r2 = await runCli(['import', 'conserver', broken]);
  assert.equal(r2.code, 2);
  assert.equal(r2.stdout, '');
  assert.equal(r2.stderr, `cloudcons: ${broken}:8: expected ';' after the value of "device", got '}' (conserver drops the whole console block)\n`);
});
