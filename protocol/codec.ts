// Encoding and validating wire messages. Pure: text in, message or error out; never throws on
// bad input, so a malformed frame can always be answered with an error reply.
import type { z } from 'zod';
import { PROTOCOL_VERSION } from './messages.ts';

/** Limits of the wire protocol. Every one can be changed by the caller; these are the defaults. */
export const PROTOCOL_LIMITS = {
  /** Largest frame accepted, in bytes of UTF-8 text (API Gateway's frame limit is 32 KB). */
  maxFrameBytes: 32 * 1024,
  /** Raw console bytes per message: 22 KiB base64-encode to 30,040 bytes, leaving room for the JSON. */
  maxRawChunk: 22 * 1024,
};

/** A WebSocket close reason cut to the 123 bytes of UTF-8 a close frame can carry (RFC 6455
 *  5.5: 125 bytes of payload, 2 of them the code), never inside a character. `ws` throws a
 *  RangeError on a longer one, and reasons quote what a peer sent. */
export function closeReason(reason: string, maxBytes = 123): string {
  if (Buffer.byteLength(reason) <= maxBytes) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

export type Decoded<T> = { ok: true; msg: T } | { ok: false; code: 'CC_ERR_BAD_FRAME' | 'CC_ERR_TOO_LARGE'; message: string };

/** Encodes a message as one text frame. A base64 payload `d` (which never needs JSON escaping)
 *  is spliced in rather than scanned by JSON.stringify: output frames are mostly payload. */
export function encode(msg: object): string {
  const d = (msg as { d?: unknown }).d;
  if (typeof d !== 'string' || d.length < 256) return JSON.stringify({ v: PROTOCOL_VERSION, ...msg });
  const head = JSON.stringify({ v: PROTOCOL_VERSION, ...msg, d: undefined });
  return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"d":"${d}"}`;
}

/** Parses and validates one frame against `schema`. Binary frames, oversized frames, bad JSON,
 *  wrong versions and unknown or malformed messages all come back as `{ ok: false }`. */
export function decode<S extends z.ZodType>(schema: S, data: unknown, maxFrameBytes = PROTOCOL_LIMITS.maxFrameBytes): Decoded<z.infer<S>> {
  if (typeof data !== 'string') return { ok: false, code: 'CC_ERR_BAD_FRAME', message: 'binary frames are not accepted: send JSON text frames' };
  if (data.length > maxFrameBytes || Buffer.byteLength(data) > maxFrameBytes) {
    return { ok: false, code: 'CC_ERR_TOO_LARGE', message: `frame of ${Buffer.byteLength(data)} bytes exceeds the limit of ${maxFrameBytes}` };
  }
  let raw: unknown;
  try { raw = JSON.parse(data); } catch (e) { return { ok: false, code: 'CC_ERR_BAD_FRAME', message: `frame is not valid JSON: ${(e as Error).message}` }; }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, code: 'CC_ERR_BAD_FRAME', message: 'frame must be a JSON object' };
  const ver = (raw as { v?: unknown }).v;
  if (ver !== PROTOCOL_VERSION) return { ok: false, code: 'CC_ERR_BAD_FRAME', message: `unsupported protocol version ${JSON.stringify(ver)} (this side speaks ${PROTOCOL_VERSION})` };
  const r = schema.safeParse(raw);
  if (!r.success) {
    const t = (raw as { t?: unknown }).t;
    const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    return { ok: false, code: 'CC_ERR_BAD_FRAME', message: `bad ${typeof t === 'string' ? `'${t.slice(0, 32)}' ` : ''}message: ${issues}` };
  }
  return { ok: true, msg: r.data };
}

/** Splits bytes into chunks of at most `max` bytes (the per-message payload limit). */
export function* chunks(buf: Buffer, max = PROTOCOL_LIMITS.maxRawChunk): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += max) yield buf.subarray(i, Math.min(buf.length, i + max));
}
