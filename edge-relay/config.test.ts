import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRelayConfig, parseRelayConfig, RELAY_CONFIG_DEFAULTS } from './config.ts';
import { ConfigError } from '../protocol/errors.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function writeTemp(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'relay.yaml');
  fs.writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): { err: ConfigError; problems: string[] } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.equal(e.code, 'CC_ERR_CONFIG');
    return { err: e, problems: e.problems };
  }
  assert.fail('expected a ConfigError');
}

test('valid config gets the documented defaults', () => {
  const file = writeTemp(`
consoles:
  web01:
    type: serial
    device: /dev/ttyUSB0
    baud: 115200
  db02:
    type: serial
    device: /dev/ttyS1
    parity: even
    stopBits: 2
    flowControl: rtscts
    dataBits: 7
    breakDelayMs: 500
  demo:
    type: exec
    command: /bin/bash -l
    cwd: /tmp
    env: { FOO: bar, PORT: 8080 }
    cols: 100
    rows: 30
  argv:
    type: exec
    command: [/usr/bin/env, bash]
`);
  const cfg = loadRelayConfig(file);
  assert.equal(cfg.relay.name, undefined, 'no name: the relay takes its token\'s (not the host name)');
  assert.deepEqual(cfg.consoles.web01, {
    type: 'serial', device: '/dev/ttyUSB0', baud: 115200, dataBits: 8, parity: 'none', stopBits: 1,
    flowControl: 'none', breakDelayMs: 250,
  });
  assert.deepEqual(cfg.consoles.db02, {
    type: 'serial', device: '/dev/ttyS1', baud: 9600, dataBits: 7, parity: 'even', stopBits: 2,
    flowControl: 'rtscts', breakDelayMs: 500,
  });
  assert.deepEqual(cfg.consoles.demo, {
    type: 'exec', command: '/bin/bash -l', cwd: '/tmp', env: { FOO: 'bar', PORT: '8080' }, cols: 100, rows: 30,
    breakDelayMs: 250,
  });
  assert.deepEqual(cfg.consoles.argv, { type: 'exec', command: ['/usr/bin/env', 'bash'], breakDelayMs: 250 });
  assert.equal(RELAY_CONFIG_DEFAULTS.serial.baud, 9600);
});

test('relay name is taken from the file when given', () => {
  const cfg = parseRelayConfig('relay:\n  name: edge1\nconsoles: {}\n', 'x.yaml');
  assert.equal(cfg.relay.name, 'edge1');
  assert.deepEqual(cfg.consoles, {});
});

test('a broken file yields ONE ConfigError listing every problem with console and field', () => {
  const file = writeTemp(`
relay:
  name: edge one
consoles:
  web01:
    type: serial
    device: /dev/ttyUSB0
    baud: fast
    buad: 115200
    dataBits: 9
    parity: sometimes
  demo:
    type: exec
    cols: 0
  "-bad":
    type: exec
    command: []
  ipmi1:
    type: ipmi
  bmc2:
    type: ipmy
  bare: {}
extra: true
`);
  const { err, problems } = problemsOf(() => loadRelayConfig(file));
  const expected = [
    'console web01: baud: must be one of 50..4000000 (got "fast")',
    'console web01: dataBits: must be one of 5, 6, 7, 8 (got 9)',
    'console web01: parity: must be one of none, even, odd, mark, space (got "sometimes")',
    'console web01: unknown field "buad"',
    'console demo: command: required for type exec',
    'console demo: cols: must be one of 1..1000 (got 0)',
    'console -bad: command: must not be empty (got [])',
    'console ipmi1: host: required for type ipmi',
    'console bmc2: type: must be one of serial, exec, telnet, tcp, uds, ssh, ipmi (got "ipmy")',
    'console bare: type: required (one of serial, exec, telnet, tcp, uds, ssh, ipmi)',
    'top level: unknown field "extra"',
  ];
  for (const p of expected) assert.ok(problems.includes(p), `missing problem: ${p}\n got:\n${problems.join('\n')}`);
  assert.ok(problems.includes('console "-bad": name must be 1 to 128 letters, digits or . _ : @ -, starting with a letter or digit'), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('relay: name: must be 1 to 128 letters') && p.endsWith('(got "edge one")')), problems.join('\n'));
  assert.equal(problems.length, expected.length + 2, problems.join('\n'));
  // The message a user sees lists them all, and names the file.
  assert.ok(err.message.startsWith(`invalid config ${file}:`));
  for (const p of problems) assert.ok(err.message.includes(`  - ${p}`));
});

test('serialport limits of this platform are reported at load time', { skip: process.platform === 'win32' }, () => {
  const { problems } = problemsOf(() => parseRelayConfig(
    'consoles:\n  a: { type: serial, device: /dev/ttyS0, parity: mark, stopBits: 1.5 }\n', 'x.yaml'));
  assert.deepEqual(problems, [
    `console a: parity: mark and space parity are not supported by serialport on ${process.platform} (got "mark")`,
    `console a: stopBits: 1.5 stop bits are not supported by serialport on ${process.platform} (got 1.5)`,
  ]);
});

test('YAML syntax errors name the line', () => {
  const file = writeTemp('consoles:\n  web01:\n    type: serial: x\n    device: /dev/ttyUSB0\n');
  const { problems } = problemsOf(() => loadRelayConfig(file));
  assert.deepEqual(problems, ['line 3: YAML syntax error: Nested mappings are not allowed in compact mappings']);
  // Several syntax errors are all reported.
  const two = problemsOf(() => parseRelayConfig('consoles:\n  a: [x\n b: c\n', 'x.yaml')).problems;
  assert.ok(two.length >= 2, two.join('\n'));
  for (const p of two) assert.match(p, /^line \d+: YAML syntax error: \S/);
});

test('duplicate console names are a YAML error', () => {
  const { problems } = problemsOf(() => parseRelayConfig(
    'consoles:\n  a: { type: exec, command: sh }\n  a: { type: exec, command: sh }\n', 'x.yaml'));
  assert.deepEqual(problems, ['line 3: YAML syntax error: Map keys must be unique']);
});

test('unknown fields are reported at every level', () => {
  const { problems } = problemsOf(() => parseRelayConfig(`
relay: { name: edge1, region: eu }
consoles:
  web01: { type: serial, device: /dev/ttyS0, buad: 9600, speed: 1 }
  demo: { type: exec, command: sh, shell: bash }
consol: {}
`, 'x.yaml'));
  assert.deepEqual(problems.sort(), [
    'console demo: unknown field "shell"',
    'console web01: unknown field "buad"',
    'console web01: unknown field "speed"',
    'relay: unknown field "region"',
    'top level: unknown field "consol"',
  ]);
});

test('missing consoles, empty file and unreadable file', () => {
  assert.deepEqual(problemsOf(() => parseRelayConfig('relay: { name: a }\n', 'x.yaml')).problems, ['consoles: required']);
  assert.deepEqual(problemsOf(() => parseRelayConfig('', 'x.yaml')).problems,
    ['top level: must be a mapping with a "consoles" key (got null)']);
  const missing = path.join(os.tmpdir(), 'no-such-dir-relay', 'relay.yaml');
  const { problems } = problemsOf(() => loadRelayConfig(missing));
  assert.match(problems[0], /^cannot read file: ENOENT/);
});

test('network console types, break sequences and per-console options', () => {
  const cfg = parseRelayConfig(`
breaks:
  5: { string: '\\r~^b', delayMs: 500 }
  z: { string: 'x\\d\\z\\177', confirm: true }
consoles:
  ts3: { type: telnet, host: ts1.example, port: 7003, baud: 9600, parity: even, break: 5, breaklist: [1, 5, z] }
  sw1: { type: tcp, host: 10.0.0.5, port: 2001, idleTimeout: 15m, idleString: '\\r' }
  vm1: { type: uds, path: /run/vm1.sock, ondemand: true, initcmd: 'echo hi', initcmdTimeout: 30 }
  bmc7: { type: ipmi, host: 10.1.0.7, user: admin, passwordFile: /etc/cc/bmc7.pw, cipherSuite: 17 }
  core1: { type: ssh, host: 10.2.0.1, user: admin, keyFile: ~/.ssh/id, hostKey: 'SHA256:${'a'.repeat(43)}' }
`, 'x.yaml');
  assert.deepEqual(cfg.breaks, { 5: { string: '\\r~^b', delayMs: 500 }, z: { string: 'x\\d\\z\\177', confirm: true } });
  assert.deepEqual(cfg.consoles.ts3, { type: 'telnet', host: 'ts1.example', port: 7003, baud: 9600, parity: 'even', break: '5', breaklist: ['1', '5', 'z'], breakDelayMs: 250 });
  assert.deepEqual(cfg.consoles.sw1, { type: 'tcp', host: '10.0.0.5', port: 2001, idleTimeout: 900_000, idleString: '\\r', breakDelayMs: 250 });
  assert.deepEqual(cfg.consoles.vm1, { type: 'uds', path: '/run/vm1.sock', ondemand: true, initcmd: 'echo hi', initcmdTimeout: 30_000, breakDelayMs: 250 });
  assert.deepEqual(cfg.consoles.bmc7, { type: 'ipmi', host: '10.1.0.7', port: 623, user: 'admin', passwordFile: '/etc/cc/bmc7.pw', cipherSuite: 17, tool: 'ipmitool', privilege: 'ADMINISTRATOR', breakDelayMs: 250 });
  assert.equal((cfg.consoles.core1 as { keepaliveMs: number }).keepaliveMs, 15_000);
});

test('bad break sequences and durations are reported with the rest', () => {
  const { problems } = problemsOf(() => parseRelayConfig(`
breaks:
  5: { string: '\\q' }
  A: { string: x }
consoles:
  a: { type: tcp, host: h, port: 1, break: 7, idleTimeout: soon, idleString: '^1' }
  b: { type: telnet, host: h, breaklist: [0] }
`, 'x.yaml'));
  assert.deepEqual(problems.sort(), [
    'breaks: "A": must be one of 1-9 a-z',
    'breaks: 5: string: unknown escape \\q (known: \\z \\d \\ooo \\a \\b \\f \\n \\r \\t \\v \\\\ \\^)',
    'console a: break 7 is not defined (1-4 are built in; define others under breaks:)',
    'console a: idleString: ^1 is not a control character (use ^@ to ^_, ^a to ^z or ^?)',
    'console a: idleTimeout: must be a duration like 30s, 15m or 2h, at most 30d (got "soon")',
    'console b: breaklist.0: must name a break sequence: one of 1-9 a-z (got "0")',
  ].sort());
});

test("the README's relay.yaml example is a valid config", () => {
  const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /`relay\.yaml`:\n\n```yaml\n([^]*?)```/.exec(readme);
  assert.ok(block, 'README has a relay.yaml example');
  const cfg = parseRelayConfig(block[1], 'README.md');
  assert.deepEqual(Object.values(cfg.consoles).map((c) => c.type).sort(), ['exec', 'ipmi', 'serial', 'ssh', 'tcp', 'telnet', 'uds']);
  assert.equal(cfg.breaks?.['5']?.string, '\\r~^b');
  assert.deepEqual([cfg.local?.ssh?.listen, cfg.local?.users?.oncall?.rw], ['0.0.0.0:2222', ['*']]);
});

test('relay.cloud: how to trust the cloud (a CA file or a fingerprint, not both; insecure)', () => {
  const fp = `SHA256:${'AB:'.repeat(31)}CD`;
  const ok = parseRelayConfig(`relay:\n  cloud: { fingerprint: '${fp}', insecure: true }\nconsoles: {}\n`, 'r.yaml');
  assert.deepEqual(ok.relay.cloud, { fingerprint: fp, insecure: true });
  assert.equal(parseRelayConfig('consoles: {}\n', 'r.yaml').relay.cloud, undefined);
  assert.throws(() => parseRelayConfig(`relay:\n  cloud: { fingerprint: 'SHA256:nope', insecure: yes please }\nconsoles: {}\n`, 'r.yaml'),
    (e: Error) => e instanceof ConfigError && /relay.*fingerprint.*must be SHA256: followed by 64 hex digits/.test(e.message) && /insecure.*must be true or false/.test(e.message));
  assert.throws(() => parseRelayConfig(`relay:\n  cloud: { ca: /ca.pem, fingerprint: '${fp}' }\nconsoles: {}\n`, 'r.yaml'), /give ca or fingerprint, not both/);
});

test('local: ssh and users, with the documented limits; every problem of the block at once', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJiYqzPd2xw+X5LRIHeHGlbagre//jhS3xtH+bhruW0n alice@laptop';
  const ok = parseRelayConfig(`
local:
  ssh: { listen: 0.0.0.0:2222 }
  users:
    oncall: { keys: ['${key}'], rw: ['*'], ro: [] }
consoles: {}
`, 'r.yaml');
  const L = RELAY_CONFIG_DEFAULTS.localSsh;
  assert.deepEqual(ok.local?.ssh, { listen: '0.0.0.0:2222', maxAuthTries: L.maxAuthTries, authPerSourcePerMinute: L.authPerSourcePerMinute, maxSessions: L.maxSessions, idleTimeout: L.idleTimeoutMs, maxBufferBytes: L.maxBufferBytes, loginGraceTime: L.loginGraceMs });
  assert.equal(parseRelayConfig('local: { ssh: { listen: 2222, idleTimeout: 15m } }\nconsoles: {}\n', 'r.yaml').local?.ssh?.idleTimeout, 900_000);
  const { problems } = problemsOf(() => parseRelayConfig(`
local:
  ssh: { listen: 'nowhere', maxAuthTries: 0, colour: red }
  users:
    bob: { keys: ['ssh-ed25519 AAAAnotakey bob'], rw: ['web[01'] }
    carol: { rw: ['*'] }
consoles: {}
`, 'r.yaml'));
  assert.deepEqual(problems.sort(), [
    'local: user bob: keys.0: must be an OpenSSH public key line (ssh-ed25519 AAAA... comment), as in a .pub file (got "ssh-ed25519 AAAAnotakey bob")',
    'local: user bob: rw.0: glob "web[01": the [ at position 4 has no closing ] (got "web[01")',
    'local: user carol: needs keys or authorizedKeys (else nobody can sign in as this user) (got {"rw":["*"]})',
    'local.ssh: unknown field "colour"',
    'local.ssh.listen: must be HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464) or a port alone (on 127.0.0.1) (got "nowhere")',
    'local.ssh.maxAuthTries: must be one of 1..100 (got 0)',
  ].sort());
});
