// Lambda entry point of the HTTP API: createHttpHandler (http-handler.ts), the hono app the
// embedded server serves, on the AWS ports. esbuild bundles it into dist/lambda/http/index.mjs
// (scripts/build.mjs). Two exports:
//   streamingHandler  for a Lambda function URL with InvokeMode RESPONSE_STREAM (what
//                     infra/stack.ts deploys): replays and exports stream past the 6 MB buffered
//                     limit (hono's streamHandle over the runtime's global `awslambda`)
//   handler           buffered, for an API Gateway HTTP API (payload v2) or a BUFFERED function URL
//
// Environment (parsed in entry-shared.ts):
//   CLOUDCONS_TABLE                 DynamoDB state table (required)
//   CLOUDCONS_SEGMENTS_BUCKET       S3 bucket of sealed segments (required)
//   CLOUDCONS_SEGMENTS_PREFIX       key prefix inside the bucket, default none
//   CLOUDCONS_CONNECTIONS_ENDPOINT  the WebSocket API's @connections endpoint,
//                                   https://<api-id>.execute-api.<region>.amazonaws.com/<stage>:
//                                   a committed segment that records lost output posts a notice to
//                                   the console's viewers. Unset, such a post fails with that reason.
//   CLOUDCONS_MAX_SEGMENT_BYTES     largest segment upload, default 16 MiB (cloud/core/http-app.ts)
//   CLOUDCONS_LEASE_MS              write-lock lease in ms, default 30000
//   AWS_REGION, AWS_ENDPOINT_URL*   the AWS SDK's own (region from the runtime; endpoint for LocalStack)
//
// Clients and the app are built when the module loads (once per container), so a missing variable
// fails the function's init with its name.
import { entryConfig, entryPorts, lazySender, positiveInt } from './entry-shared.ts';
import { createHttpHandler } from './http-handler.ts';

const config = entryConfig();
const maxSegmentBytes = positiveInt(process.env, 'CLOUDCONS_MAX_SEGMENT_BYTES');
const http = createHttpHandler({ ports: entryPorts(config, lazySender(() => config.connectionsEndpoint)).ports, core: config.core, maxSegmentBytes, maxBodyBytes: config.maxBodyBytes });

export const handler = http.handler;

type StreamingHandler = ReturnType<typeof http.streaming>;
/** Outside the Lambda runtime a stub that says so. (Test for streamifyResponse itself: the AWS
 *  SDK's @aws/lambda-invoke-store creates an empty `globalThis.awslambda` anywhere.) */
export const streamingHandler: StreamingHandler = typeof (globalThis as { awslambda?: { streamifyResponse?: unknown } }).awslambda?.streamifyResponse === 'function'
  ? http.streaming()
  : (async () => { throw new Error('streamingHandler runs only inside the AWS Lambda runtime (it needs the global awslambda.streamifyResponse); use handler elsewhere'); }) as unknown as StreamingHandler;
