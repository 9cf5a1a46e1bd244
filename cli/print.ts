// Everything the CLI prints goes through here, as `Shown` text: a string that is safe on a
// terminal. Only these make one: the `line` template tag (the template's own text as written, the
// CLI's; every `${value}` rendered by safeText, because names, reasons, details, notices and error
// messages come from the cloud, relays, other users or files), `safe()` for a whole foreign
// string, `json()` and `yaml()` for machine output (exact once parsed; no raw control, bidi or
// zero-width character). The printers take nothing else, so the compiler finds a print site that
// skipped the rendering. Console output itself is the exception where it is the point (attach,
// replay, export): `write()` passes the device's bytes through, as conserver does.
import YAML from 'yaml';
import { escapeInQuoted, safeText, UNSAFE_CHAR } from '../protocol/safe-text.ts';

declare const brand: unique symbol;
/** Text safe to print: see the top of this file for what makes one. */
export type Shown = string & { readonly [brand]: true };

/** Template tag: `line\`console ${name}: ${reason}\`` keeps the template's text and renders each value with safeText. */
export function line(parts: TemplateStringsArray, ...values: unknown[]): Shown {
  let s = parts[0]!;
  for (let i = 0; i < values.length; i++) s += safeText(String(values[i])) + parts[i + 1]!;
  return s as Shown;
}

/** A whole string from elsewhere (a line another module composed of foreign parts), rendered. */
export function safe(s: unknown): Shown {
  return safeText(String(s)) as Shown;
}

/** Text of several lines whose line breaks are meant (a banner, a YAML document, a stack trace):
 *  each line rendered by safeText, the `\n` between them kept. */
export function safeLines(s: string): Shown {
  return s.split('\n').map(safeText).join('\n') as Shown;
}

/** Shown lines joined with the CLI's own separator (`\n`, or `\r\n` on a raw terminal). */
export function joined(parts: Shown[], sep: '\n' | '\r\n'): Shown {
  return parts.join(sep) as Shown;
}

/** `--json` output: JSON.stringify's text (indented, or one line with `indent` 0), with the
 *  characters it leaves raw escaped too. */
export function json(v: unknown, indent = 2): Shown {
  return escapeInQuoted(JSON.stringify(v, null, indent)) as Shown;
}

/** YAML that parses to `v`: each string holding an unsafe character is written double-quoted in
 *  JSON style, so every such character stands in quotes, where it can be escaped. */
export function yaml(v: unknown): Shown {
  const doc = new YAML.Document(v);
  YAML.visit(doc, { Scalar(_, node) { if (typeof node.value === 'string' && UNSAFE_CHAR.test(node.value)) node.type = 'QUOTE_DOUBLE'; } });
  return escapeInQuoted(doc.toString({ doubleQuotedAsJSON: true })) as Shown;
}

/** A line to stdout. */
export function out(text: Shown): void { process.stdout.write(`${text}\n`); }
/** A line to stderr. */
export function err(text: Shown): void { process.stderr.write(`${text}\n`); }
/** Text without a line end (a progress bar redrawn with `\r`, a document that ends in one). */
export function put(stream: NodeJS.WritableStream, text: Shown): boolean { return stream.write(text); }

/** Console output passed through as the device sent it (attach, replay, export), or Shown text,
 *  with backpressure: resolves once written or drained, rejects on a write error. */
export function write(stream: NodeJS.WritableStream, data: Uint8Array | Shown): Promise<void> {
  return new Promise((resolve, reject) => { if (stream.write(data, (e) => (e ? reject(e) : undefined))) resolve(); else stream.once('drain', resolve); });
}

/** Columns padded to their widest cell, two spaces apart; every cell rendered by safeText first
 *  (so the widths are those of what is printed). The first row is the header. */
export function table(rows: unknown[][]): void {
  const cells = rows.map((r) => r.map((c) => safeText(String(c ?? ''))));
  const w = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  for (const r of cells) out(r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() as Shown);
}
