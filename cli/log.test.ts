import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configLogLevel, logger, prettyLine, setLogLevel, setupLogging } from './log.ts';

const sink = (isTTY = false) => { const lines: string[] = []; return { lines, out: { isTTY, write: (s: string) => { lines.push(s); return true; } } }; };
const HOSTILE = 'x\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\u200b\x7f\x9b\nforged INFO line';

test('json: one line per event with time, level, name, bindings, fields and msg; foreign text exact once parsed and no raw control, bidi or zero-width character', () => {
  const s = sink();
  setupLogging({ format: 'json', out: s.out }, {});
  logger('relay', { relay: 'edge1' })(`console ${HOSTILE} up`, { console: HOSTILE, level: 'warn' });
  assert.equal(s.lines.length, 1);
  const line = s.lines[0];
  assert.ok(line.endsWith('}\n') && line.indexOf('\n') === line.length - 1, 'one line');
  assert.doesNotMatch(line, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u202e]/, 'nothing that acts on a terminal');
  const rec = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(rec), ['level', 'time', 'name', 'relay', 'console', 'msg']);
  assert.equal(rec.level, 'warn');
  assert.match(String(rec.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(rec.name, 'relay');
  assert.equal(rec.relay, 'edge1');
  assert.equal(rec.console, HOSTILE);
  assert.equal(rec.msg, `console ${HOSTILE} up`);
});

test('pretty: time, level, name and message on one line, foreign text shown escaped (as the plain lines were), other fields as key=value', () => {
  const out = prettyLine(JSON.stringify({ level: 'error', time: '2026-12-08T03:28:59.123Z', name: 'relay', relay: 'edge1', console: 'web01', msg: `upload failed for ${HOSTILE}`, code: 'CC_ERR_X', detail: 'two words' }) + '\n');
  assert.match(out, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.123 ERROR relay: upload failed for x\^\[\]0;pwned\^G\^\[\[2J\\u202egnp\.exe\\u200b\^\?\\u009b\^Jforged INFO line code=CC_ERR_X detail="two words"\n$/);
  assert.equal(out.indexOf('\n'), out.length - 1);
  // A colour only for the level, and only when asked (a terminal without NO_COLOR).
  assert.match(prettyLine(JSON.stringify({ level: 'warn', time: '2026-12-08T03:28:59.123Z', name: 'cloud', msg: 'm' }), true), / \x1b\[33mWARN \x1b\[0m cloud: m\n$/);
});

test('levels: --log-level hides what is below it, setLogLevel changes it at run time, a config level does not override a flag', () => {
  const s = sink();
  setupLogging({ level: 'warn', format: 'pretty', out: s.out }, {});
  const log = logger('cloud');
  log('hidden info');
  log('shown warning', { level: 'warn' });
  log('shown error', { level: 'error' });
  configLogLevel('debug'); // relay.yaml log.level: the flag wins
  log('still hidden', { level: 'debug' });
  setLogLevel('debug'); // a reload that was asked for explicitly
  log('now shown', { level: 'debug' });
  assert.deepEqual(s.lines.map((l) => l.replace(/^\S+ \S+ /, '')), ['WARN  cloud: shown warning\n', 'ERROR cloud: shown error\n', 'DEBUG cloud: now shown\n']);

  const t = sink();
  setupLogging({ format: 'json', out: t.out }, { CLOUDCONS_LOG_LEVEL: '' });
  configLogLevel('error'); // no flag, no environment: the config's level applies
  logger('relay')('hidden');
  logger('relay')('shown', { level: 'error' });
  configLogLevel(undefined); // a reload whose file no longer sets one: back to info
  logger('relay')('shown again');
  assert.deepEqual(t.lines.map((l) => JSON.parse(l).msg), ['shown', 'shown again']);
});

test('the environment: CLOUDCONS_LOG_LEVEL and CLOUDCONS_LOG_FORMAT apply, flags win, bad values are refused naming the variable; default format by terminal', () => {
  const s = sink(true);
  setupLogging({ out: s.out }, { CLOUDCONS_LOG_LEVEL: 'error' });
  logger('relay')('hidden', { level: 'warn' });
  logger('relay')('pretty on a terminal', { level: 'error' });
  assert.match(s.lines.join(''), /^\S+ \S+ \x1b\[31mERROR\x1b\[0m relay: pretty on a terminal\n$/);
  const p = sink(false);
  setupLogging({ out: p.out }, { CLOUDCONS_LOG_FORMAT: 'pretty', CLOUDCONS_LOG_LEVEL: 'error' });
  logger('relay')('env pretty, no colour off a terminal', { level: 'error' });
  assert.match(p.lines.join(''), /^\S+ \S+ ERROR relay: env pretty/);
  const j = sink(true);
  setupLogging({ format: 'json', level: 'info', out: j.out }, { CLOUDCONS_LOG_FORMAT: 'pretty', CLOUDCONS_LOG_LEVEL: 'error' });
  logger('relay')('flags win');
  assert.equal(JSON.parse(j.lines[0]).msg, 'flags win');
  assert.throws(() => setupLogging({ out: j.out }, { CLOUDCONS_LOG_LEVEL: 'verbose' }), /CLOUDCONS_LOG_LEVEL: must be one of debug, info, warn, error \(got "verbose"\)/);
  assert.throws(() => setupLogging({ out: j.out }, { CLOUDCONS_LOG_FORMAT: 'text' }), /CLOUDCONS_LOG_FORMAT: must be one of json, pretty \(got "text"\)/);
});
