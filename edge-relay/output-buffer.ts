// Per-console output kept by the relay until the cloud acknowledges it is stored.
// Offsets are relative to this relay process until the cloud's first `welcome` says where the
// console's stored stream ends; from then on `base` turns them into the console's absolute
// offsets, so a restarted relay continues the stream instead of starting again at 0.
// The buffer is bounded: past `maxBytes` the oldest unacknowledged bytes are dropped and the
// sender reports them to the cloud as an explicit gap (never silently).

export interface Chunk { rel: number; ts: number; data: Buffer }

export class OutputBuffer {
  private chunks: Chunk[] = [];
  private head = 0; // index of the first live chunk in `chunks`
  /** Relative offset of the first byte still held. */
  start = 0;
  /** Relative offset one past the last byte read from the device. */
  end = 0;
  /** Absolute offset of relative offset 0, once known. */
  base: number | null = null;
  /** Bytes dropped because the buffer was full, since the process started. */
  dropped = 0;

  constructor(private readonly maxBytes: number) {}

  push(data: Buffer, ts: number): void {
    this.chunks.push({ rel: this.end, ts, data });
    this.end += data.length;
    while (this.end - this.start > this.maxBytes) this.dropHead();
  }

  private dropHead(): void {
    const c = this.chunks[this.head++];
    this.start = c.rel + c.data.length;
    this.dropped += c.data.length;
    this.compact();
  }

  /** Forgets everything below absolute offset `abs` (the cloud stored it). */
  ack(abs: number): void {
    if (this.base === null) return;
    const rel = abs - this.base;
    while (this.head < this.chunks.length) {
      const c = this.chunks[this.head];
      if (c.rel + c.data.length > rel) break;
      this.head++;
      this.start = c.rel + c.data.length;
    }
    this.compact();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.chunks.length) { this.chunks = this.chunks.slice(this.head); this.head = 0; }
  }

  get startAbs(): number { return (this.base ?? 0) + this.start; }
  get endAbs(): number { return (this.base ?? 0) + this.end; }

  /** Up to `max` bytes starting at absolute offset `abs` (which must be >= startAbs), joined from
   *  consecutive chunks, with the timestamp of the first. Undefined when nothing is there. */
  read(abs: number, max: number): { ts: number; data: Buffer } | undefined {
    const rel = abs - (this.base ?? 0);
    if (rel >= this.end || rel < this.start) return undefined;
    let i = this.head;
    while (i < this.chunks.length && this.chunks[i].rel + this.chunks[i].data.length <= rel) i++;
    const parts: Buffer[] = [];
    let n = 0;
    const ts = this.chunks[i].ts;
    for (; i < this.chunks.length && n < max; i++) {
      const c = this.chunks[i];
      const from = Math.max(0, rel + n - c.rel);
      const part = c.data.subarray(from, from + (max - n));
      parts.push(part);
      n += part.length;
    }
    return { ts, data: parts.length === 1 ? parts[0] : Buffer.concat(parts) };
  }
}
