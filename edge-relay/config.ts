// Relay config: a YAML file naming the consoles this relay holds open.
//
//   relay:            # optional
//     name: edge1     # optional; defaults to os.hostname()
//     spool:          # optional: where output waits until the cloud stored it (see spool.ts)
//       dir: /var/lib/cloudcons/spool   # default ~/.local/state/cloudcons/spool/<name>
//       segmentBytes: 1048576           # seal after this many bytes (default 1 MiB)
//       segmentMs: 60000                # ... or when the oldest byte is this old (default 60 s)
//       capBytes: 1073741824            # disk the spool may use (default 1 GiB)
//   consoles:
//     web01: { type: serial, device: /dev/ttyUSB0, baud: 115200 }
//     demo:  { type: exec, command: /bin/bash -l }
//
// Loading never stops at the first mistake: every problem (YAML syntax, unknown field, bad value)
// is collected into ONE ConfigError so a user fixes the whole file in one go. Each problem names
// the console and the field. To add a console type, add a schema to `consoleSchemas`.
import fs from 'node:fs';
import os from 'node:os';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../protocol/errors.ts';

/** Every documented default in one place. */
export const RELAY_CONFIG_DEFAULTS = {
  /** How long a serial BREAK holds the line (ms). */
  breakDelayMs: 250,
  serial: { baud: 9600, dataBits: 8, parity: 'none', stopBits: 1, flowControl: 'none' },
  /** Exec consoles: TERM unless `env` sets one, and the initial terminal size. */
  exec: { term: 'xterm-256color', cols: 80, rows: 24 },
} as const;

// Same rule as protocol/messages.ts (not exported there).
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
const NAME_RULE = 'must be 1 to 128 letters, digits or . _ : @ -, starting with a letter or digit';

// serialport's unix binding only knows none/even/odd parity and 1 or 2 stop bits; mark/space and
// 1.5 fail at open on Linux/macOS. Reject them at load time instead of retrying forever.
const WINDOWS = process.platform === 'win32';

// Every leaf carries its own message so a problem reads "must be ..." rather than zod's default.
const err = (m: string) => ({ error: m });
const text = z.string(err('must be a non-empty string')).min(1, err('must be a non-empty string'));
const intIn = (lo: number, hi: number) =>
  z.custom<number>((v) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi, err(`must be one of ${lo}..${hi}`));

const common = {
  breakDelayMs: intIn(1, 10_000).default(RELAY_CONFIG_DEFAULTS.breakDelayMs),
};
const d = RELAY_CONFIG_DEFAULTS.serial;

const serialSchema = z.strictObject({
  type: z.literal('serial'),
  ...common,
  device: text,
  baud: intIn(50, 4_000_000).default(d.baud),
  dataBits: z.literal([5, 6, 7, 8], err('must be one of 5, 6, 7, 8')).default(d.dataBits),
  parity: z.enum(['none', 'even', 'odd', 'mark', 'space'], err('must be one of none, even, odd, mark, space'))
    .refine((p) => WINDOWS || (p !== 'mark' && p !== 'space'), err(`mark and space parity are not supported by serialport on ${process.platform}`))
    .default(d.parity),
  stopBits: z.literal([1, 1.5, 2], err('must be one of 1, 1.5, 2'))
    .refine((s) => WINDOWS || s !== 1.5, err(`1.5 stop bits are not supported by serialport on ${process.platform}`))
    .default(d.stopBits),
  flowControl: z.enum(['none', 'rtscts', 'xonxoff'], err('must be one of none, rtscts, xonxoff')).default(d.flowControl),
  /** Read coalescing on a busy, unattended line (see drivers/serial.ts); 0 turns it off. Default:
   *  the time the line needs for ~1 KiB at its baud, at most 50 ms. */
  readHoldoffMs: intIn(0, 1000).optional(),
}, err('must be a mapping'));

// YAML turns `PORT: 8080` into a number; an environment only holds strings, so convert.
const envValue = z.union([z.string(), z.number(), z.boolean()], err('must be a string')).transform(String);

const execSchema = z.strictObject({
  type: z.literal('exec'),
  ...common,
  command: z.union([text, z.array(text, err('must be a string or a list of strings')).min(1, err('must not be empty'))],
    err('must be a string or a list of strings')),
  cwd: text.optional(),
  env: z.record(z.string(), envValue, err('must be a mapping of names to values')).optional(),
  cols: intIn(1, 1000).optional(),
  rows: intIn(1, 1000).optional(),
}, err('must be a mapping'));

const consoleSchemas = [serialSchema, execSchema] as const;
const consoleSchema = z.discriminatedUnion('type', consoleSchemas, err('must be a mapping with a "type" field'));

const spoolSchema = z.strictObject({
  dir: text.optional(),
  segmentBytes: intIn(1024, 256 * 1024 * 1024).optional(),
  segmentMs: intIn(100, 24 * 3600 * 1000).optional(),
  capBytes: intIn(1024 * 1024, Number.MAX_SAFE_INTEGER).optional(),
}, err('must be a mapping'));

const relaySchema = z.strictObject({
  relay: z.strictObject({
    name: text.regex(NAME_RE, err(NAME_RULE)).max(128, err(NAME_RULE)).optional(),
    spool: spoolSchema.optional(),
  }, err('must be a mapping')).optional(),
  consoles: z.record(z.string(), consoleSchema, err('must be a mapping of console names to console settings')),
}, err('must be a mapping with a "consoles" key'));

export type SerialConsoleConfig = z.output<typeof serialSchema>;
export type ExecConsoleConfig = z.output<typeof execSchema>;
export type ConsoleConfig = SerialConsoleConfig | ExecConsoleConfig;
export interface SpoolConfig { dir?: string; segmentBytes?: number; segmentMs?: number; capBytes?: number }
export interface RelayConfig {
  relay: { name: string; spool?: SpoolConfig };
  consoles: Record<string, ConsoleConfig>;
}

/** Reads and validates a relay config file; throws ConfigError listing every problem. */
export function loadRelayConfig(file: string): RelayConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`cannot read file: ${(e as Error).message}`]);
  }
  return parseRelayConfig(text, file);
}

/** Validates config text; `file` only names the source in the error. */
export function parseRelayConfig(text: string, file: string): RelayConfig {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    // A broken YAML tree says nothing reliable about fields, so report only the syntax errors.
    throw new ConfigError(file, doc.errors.map((e) => {
      const line = e.linePos?.[0].line;
      const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      return `${line !== undefined ? `line ${line}: ` : ''}YAML syntax error: ${what}`;
    }));
  }
  let raw: unknown;
  try {
    raw = doc.toJS(); // throws e.g. on excessive alias expansion
  } catch (e) {
    throw new ConfigError(file, [`YAML error: ${(e as Error).message}`]);
  }
  const problems: string[] = [];
  // zod skips the value of a record entry whose key is invalid, so names are checked here to still
  // report both the bad name and what is wrong inside that console.
  const consoles = (raw as { consoles?: unknown } | null)?.consoles;
  if (consoles && typeof consoles === 'object' && !Array.isArray(consoles)) {
    for (const name of Object.keys(consoles)) {
      if (!NAME_RE.test(name) || name.length > 128) problems.push(`console ${JSON.stringify(name)}: name ${NAME_RULE}`);
    }
  }
  const result = relaySchema.safeParse(raw, { reportInput: true });
  if (!result.success) problems.push(...result.error.issues.flatMap((i) => describe(i, consoles)));
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  return {
    relay: { name: result.data.relay?.name ?? os.hostname(), spool: result.data.relay?.spool },
    consoles: result.data.consoles,
  };
}

/** Turns one zod issue into "console web01: baud: must be ... (got "fast")" lines; `consoles` is
 *  the raw consoles mapping, to name the type in "required for type exec". */
function describe(issue: z.core.$ZodIssue, consoles: unknown): string[] {
  const path = issue.path.map(String);
  let where: string;
  let field: string[];
  let type: unknown;
  if (path[0] === 'consoles' && path.length >= 2) {
    where = `console ${path[1]}`;
    field = path.slice(2);
    type = (consoles as Record<string, { type?: unknown } | undefined>)[path[1]]?.type;
  } else if (path[0] === 'relay') {
    where = 'relay';
    field = path.slice(1);
  } else {
    where = path.length ? path.join('.') : 'top level';
    field = [];
  }
  const prefix = [where, ...(field.length ? [field.join('.')] : [])].join(': ');
  const input = (issue as { input?: unknown }).input;

  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${prefix}: unknown field "${k}"`);
  if (issue.code === 'invalid_union' && (issue as { note?: string }).note === 'No matching discriminator') {
    const types = consoleSchemas.map((s) => s.shape.type.value).join(', ');
    return [type === undefined ? `${prefix}: required (one of ${types})` : `${prefix}: must be one of ${types}${got(type)}`];
  }
  if (input === undefined && path.length > 0) {
    return [`${prefix}: required${typeof type === 'string' ? ` for type ${type}` : ''}`];
  }
  return [`${prefix}: ${issue.message}${got(input)}`];
}

function got(v: unknown): string {
  if (v === undefined) return '';
  let s = JSON.stringify(v) ?? String(v);
  if (s.length > 60) s = s.slice(0, 57) + '...';
  return ` (got ${s})`;
}
