// A request body limit that reads nothing itself. hono's bodyLimit reads a body without a
// Content-Length (chunked) up front, before the route has decided whether the caller may send it;
// this one refuses a Content-Length over the limit at once and otherwise counts the bytes as the
// route reads them, failing the read past the limit. So a route authorizes first, then reads.
import type { MiddlewareHandler } from 'hono';

export function bodyCap(maxSize: number, tooLarge: () => Error): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const length = raw.headers.get('content-length');
    if (length !== null && !raw.headers.has('transfer-encoding')) {
      if (!/^\d+$/.test(length) || Number(length) > maxSize) throw tooLarge();
      return next();
    }
    let size = 0;
    const reader = raw.body.getReader();
    // highWaterMark 0: a chunk is read from the client only when the route asks for one.
    const counted = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const { done, value } = await reader.read();
        if (done) { ctl.close(); return; }
        size += value.byteLength;
        if (size <= maxSize) { ctl.enqueue(value); return; }
        ctl.error(tooLarge());
        await reader.cancel();
      },
      cancel: (why) => reader.cancel(why),
    }, { highWaterMark: 0 });
    c.req.raw = new Request(raw, { body: counted, duplex: 'half' } as RequestInit);
    return next();
  };
}
