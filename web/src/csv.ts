// CSV for spreadsheets (RFC 4180, CRLF line ends), safe to open: a cell that a spreadsheet would
// take for a formula gets a leading `'`, as OWASP's CSV-injection guidance says. Audit rows hold
// what users typed and what relays wrote, and `=HYPERLINK(...)` or `@SUM(...)` typed at a console
// must not run in an auditor's Excel. Pure (no DOM), so it is tested under node.

/** A cell a spreadsheet may evaluate: one that starts with = + - @ (also after leading white
 *  space, and their full-width forms, which some spreadsheets read alike), or with a tab or CR. */
const FORMULA = /^(?:[\t\r]|\s*[=+\-@\uff1d\uff0b\uff0d\uff20])/;
/** Quoted: a cell with a quote, a line break, or a separator (`,`, or `;` where a spreadsheet's
 *  locale splits on it), so it stays one cell whatever the reader splits on. */
const QUOTE = /[",;\r\n]/;

/**
 * One cell: undefined as empty, anything else as its string, with a `'` in front when it could
 * be read as a formula (the value is otherwise unchanged: a reader who needs it exactly strips
 * that one `'`, or uses the JSON export), then quoted (inner `"` doubled) when needed.
 */
export function csvCell(v: unknown): string {
  let s = v === undefined || v === null ? '' : String(v);
  if (FORMULA.test(s)) s = `'${s}`;
  return QUOTE.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows (the first one the header) as CSV text, each line ending in CRLF. */
export function toCsv(rows: unknown[][]): string {
  return rows.map((r) => r.map(csvCell).join(',') + '\r\n').join('');
}
