// The log of `cloudcons relay`, `cloudcons cloud` and `cloudcons demo`: one pino logger per
// process, writing to stderr (journald takes it from there under systemd).
//
//   json    one JSON object a line: {"level":"info","time":"2026-12-08T03:28:59.123Z","name":"relay",
//           "relay":"edge1","console":"web01","msg":"console web01 up"}; the default when stderr is
//           not a terminal (a service, a pipe, a file)
//   pretty  `2026-12-08 04:28:59.123 INFO  relay: console web01 up`, local time, other fields as
//           ` key=value` after the message; the default on a terminal
//
// --log-format / CLOUDCONS_LOG_FORMAT pick one; --log-level / CLOUDCONS_LOG_LEVEL (debug, info,
// warn, error; default info) or, for the relay, `log: { level }` in relay.yaml set the level, and
// setLogLevel changes it at run time (a reload). What users, relays, devices and files sent ends
// up in messages and fields: in json it stays exact once parsed (JSON.stringify's escapes plus
// escapeInQuoted, so not even a bidi or DEL character reaches the terminal raw); in pretty every
// message and value goes through safeText, as the plain lines did before.
import pino from 'pino';
import { BadParameter } from '../protocol/errors.ts';
import { LOG_LEVELS, type Log, type LogLevel } from '../protocol/log.ts';
import { escapeInQuoted, safeText } from '../protocol/safe-text.ts';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
type Out = { write(s: string): unknown; isTTY?: boolean };

let root: pino.Logger | undefined;
/** The level came from a flag or the environment: a config's `log.level` does not change it. */
let pinned = false;

function pick<T extends string>(what: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined || v === '') return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new BadParameter(`${what}: must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  return v as T;
}

/** Sets up the process's log: flags first, then CLOUDCONS_LOG_LEVEL / CLOUDCONS_LOG_FORMAT, then
 *  the defaults (info; pretty on a terminal, else json). `out` (default stderr) for tests. */
export function setupLogging(o: { level?: string; format?: string; out?: Out } = {}, env: NodeJS.ProcessEnv = process.env): pino.Logger {
  const out = o.out ?? process.stderr;
  const level = pick('--log-level', o.level, LOG_LEVELS) ?? pick('CLOUDCONS_LOG_LEVEL', env.CLOUDCONS_LOG_LEVEL, LOG_LEVELS);
  const format = pick('--log-format', o.format, LOG_FORMATS) ?? pick('CLOUDCONS_LOG_FORMAT', env.CLOUDCONS_LOG_FORMAT, LOG_FORMATS) ?? (out.isTTY ? 'pretty' : 'json');
  pinned = level !== undefined;
  const color = format === 'pretty' && !!out.isTTY && !env.NO_COLOR;
  // Synchronous writes, as the plain lines were: nothing is lost at process.exit, and log volume
  // is small (no line per byte of output).
  const dest = format === 'json'
    ? { write: (s: string) => { out.write(escapeInQuoted(s)); } }
    : { write: (s: string) => { out.write(prettyLine(s, color)); } };
  root = pino({ level: level ?? 'info', base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, dest);
  return root;
}

/** A log for one part of the process (`name`: relay, cloud), with fields every line carries
 *  (e.g. `{ relay: 'edge1' }`). Sets up the log with its defaults if nobody did. */
export function logger(name: string, bindings: Record<string, unknown> = {}): Log {
  return (msg, fields) => {
    const r = root ?? lazySetup();
    const level = fields?.level ?? 'info';
    if (!r.isLevelEnabled(level)) return;
    if (!fields) { r[level]({ name, ...bindings }, msg); return; }
    const { level: _, ...rest } = fields;
    r[level]({ name, ...bindings, ...rest }, msg);
  };
}

/** Changes the level of every log of the process at once (a reload of relay.yaml). */
export function setLogLevel(level: LogLevel): void { (root ?? lazySetup()).level = level; }

/** The defaults, for a log used before (or without) setupLogging; a bad CLOUDCONS_LOG_* value
 *  is refused by the commands that set up their log, not here in the middle of logging. */
function lazySetup(): pino.Logger { try { return setupLogging(); } catch { return setupLogging({}, {}); } }

/** The level relay.yaml's `log.level` asks for (undefined: the default, info), unless a flag or
 *  the environment set one: that wins, also over a reload. */
export function configLogLevel(level: LogLevel | undefined): void { if (!pinned) setLogLevel(level ?? 'info'); }

const LEVEL_COLOR: Record<string, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };
/** Fields the message itself names (see protocol/log.ts): not repeated after it. */
const NAMED = new Set(['level', 'time', 'name', 'msg', 'relay', 'console']);
const two = (n: number, w = 2) => String(n).padStart(w, '0');

/** One JSON line from pino as a readable line: local time, level, name, message, other fields as
 *  ` key=value` (JSON where a value is not one plain word); every foreign part through safeText. */
export function prettyLine(json: string, color = false): string {
  let rec: Record<string, unknown>;
  try { rec = JSON.parse(json) as Record<string, unknown>; } catch { return `${safeText(json.trimEnd())}\n`; }
  const d = new Date(String(rec.time));
  const time = Number.isNaN(d.getTime()) ? String(rec.time)
    : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${two(d.getMilliseconds(), 3)}`;
  const lv = String(rec.level);
  const label = lv.toUpperCase().padEnd(5);
  let s = `${safeText(time)} ${color ? `${LEVEL_COLOR[lv] ?? ''}${safeText(label)}\x1b[0m` : safeText(label)} ${rec.name ? `${safeText(String(rec.name))}: ` : ''}${safeText(String(rec.msg ?? ''))}`;
  for (const [k, v] of Object.entries(rec)) {
    if (NAMED.has(k)) continue;
    s += ` ${safeText(k)}=${safeText(typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v) ?? String(v))}`;
  }
  return `${s}\n`;
}
