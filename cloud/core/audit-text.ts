// Text in audit records that a request or a relay supplied (a path, a user or relay name, a
// reason quoting a token's claims, a relay's down reason) is kept to a bounded length: an
// unauthenticated request with a 15 KB path must not write a 15 KB record. What is cut is marked,
// with how much was left out. Input bytes (`data`) are never cut: they are the record's purpose,
// and a message bounds them.
import type { AuditRecord } from './ports.ts';

/** `text` cut to `max` characters, a marker saying how many more there were. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // not half a character
  return `${text.slice(0, end)}... [cut: ${text.length - end} more characters]`;
}

/** The record with its free text (detail, user) cut to `max` characters each. */
export function boundedRecord(rec: AuditRecord, max: number): AuditRecord {
  const long = (s: string | undefined) => s !== undefined && s.length > max;
  if (!long(rec.detail) && !long(rec.user)) return rec;
  return { ...rec, ...(long(rec.detail) ? { detail: cutText(rec.detail!, max) } : {}), ...(long(rec.user) ? { user: cutText(rec.user!, max) } : {}) };
}
