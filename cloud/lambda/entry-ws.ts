// Lambda entry point of the WebSocket API (API Gateway $connect, $disconnect, $default routes, all
// to this one function): createWsHandler (ws-handler.ts) on the AWS ports. esbuild bundles it into
// dist/lambda/ws/index.mjs (scripts/build.mjs); infra/stack.ts deploys that with handler
// `index.handler`.
//
// Environment (parsed in entry-shared.ts):
//   CLOUDCONS_TABLE                 DynamoDB state table (required)
//   CLOUDCONS_SEGMENTS_BUCKET       S3 bucket of sealed segments (required; replay reads them)
//   CLOUDCONS_SEGMENTS_PREFIX       key prefix inside the bucket, default none
//   CLOUDCONS_CONNECTIONS_ENDPOINT  @connections endpoint; default from each event:
//                                   https://<requestContext.domainName>/<requestContext.stage>
//                                   (set it when a custom domain fronts the API)
//   CLOUDCONS_LEASE_MS              write-lock lease in ms, default 30000
//   AWS_REGION, AWS_ENDPOINT_URL*   the AWS SDK's own (region from the runtime; endpoint for LocalStack)
//
// Clients and the core are built when the module loads (once per container), so a missing variable
// fails the function's init with its name.
import { DynamoConnections } from '../adapters/aws/apigw-connections.ts';
import { connectionsEndpointOf, entryConfig, entryPorts, lazySender } from './entry-shared.ts';
import { createWsHandler, type WebSocketEvent } from './ws-handler.ts';

/** The event as API Gateway sends it (the parts this entry reads beyond WebSocketEvent). */
type ApiGatewayWsEvent = WebSocketEvent & { requestContext: { domainName?: string; stage?: string } };

let endpoint: string | undefined; // of the invocation in progress
const config = entryConfig();
const { ports, db } = entryPorts(config, lazySender(() => endpoint));
const ws = createWsHandler({ ports, connections: new DynamoConnections(db, config.table), core: config.core, maxConnsPerUser: config.maxConnsPerUser, maxConnsPerRelay: config.maxConnsPerRelay });

export async function handler(event: ApiGatewayWsEvent): Promise<{ statusCode: number; body?: string }> {
  endpoint = config.connectionsEndpoint ?? connectionsEndpointOf(event.requestContext);
  return ws(event);
}
