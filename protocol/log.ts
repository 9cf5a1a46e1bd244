// What the relay, the spool and the cloud server log through: a function taking a message and,
// optionally, its level and fields. The processes (cli/log.ts) make it a pino logger writing JSON
// lines or readable lines to stderr; tests and embedders pass any function, and one that takes
// only the message still fits. Types only: nothing here loads pino.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A log line's level (default info) and fields, e.g. `{ level: 'warn', console: 'web01' }`:
 *  JSON logs carry each field as a key of its own, beside `msg`. */
export interface LogFields { level?: LogLevel; console?: string; [field: string]: unknown }

/** Logs one event: `msg` is a whole sentence (it names the console too, for readers of the
 *  readable form), `fields` what a machine would filter on. */
export type Log = (msg: string, fields?: LogFields) => void;
