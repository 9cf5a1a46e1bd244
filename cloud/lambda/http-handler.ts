// The Lambda handler of the HTTP API (API Gateway HTTP API, payload v2): the same hono app the
// embedded server serves (cloud/core/http-app.ts), through hono/aws-lambda. Binary answers (raw
// replay, exports) come back base64-encoded as API Gateway expects. Replays over Lambda's 6 MB
// buffered-response limit need `streaming` (hono's streamHandle, for a function URL or a REST API
// with response streaming).
import { handle, streamHandle } from 'hono/aws-lambda';
import { CloudCore, type CoreOptions } from '../core/core.ts';
import { createHttpApp } from '../core/http-app.ts';
import type { CloudPorts } from '../core/ports.ts';

export function createHttpHandler(d: { ports: CloudPorts; core?: Partial<CoreOptions>; maxSegmentBytes?: number; maxBodyBytes?: number }) {
  const app = createHttpApp(new CloudCore(d.ports, { live: 'watched', ...d.core }), d.ports, { maxSegmentBytes: d.maxSegmentBytes, maxBodyBytes: d.maxBodyBytes });
  return {
    handler: handle(app),
    /** Only inside the Lambda runtime (it needs the runtime's `awslambda.streamifyResponse`). */
    streaming: () => streamHandle(app),
  };
}
