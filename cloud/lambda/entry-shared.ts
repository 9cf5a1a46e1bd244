// What the two Lambda entry points (entry-ws.ts, entry-http.ts) share: configuration from the
// environment and the AWS clients, created once per container (module scope of the bundle).
//
// Environment (set by infra/stack.ts; the table and bucket are required, the rest optional):
//   CLOUDCONS_TABLE                 DynamoDB state table (cloud/adapters/aws/dynamo-table.ts layout)
//   CLOUDCONS_SEGMENTS_BUCKET       S3 bucket of sealed segments
//   CLOUDCONS_SEGMENTS_PREFIX       key prefix inside that bucket (e.g. `site1/`), default none
//   CLOUDCONS_AUDIT_BUCKET          S3 bucket (Object Lock) of archived audit records
//                                   (adapters/aws/s3-audit-archive.ts); unset, audit listings read
//                                   DynamoDB only (the ws function only appends, so it has none)
//   CLOUDCONS_CONNECTIONS_ENDPOINT  the WebSocket API's @connections endpoint,
//                                   https://<api-id>.execute-api.<region>.amazonaws.com/<stage>
//                                   (entry-ws.ts falls back to the event's domainName/stage; the
//                                   HTTP function has no WebSocket event and needs it to post notices)
//   CLOUDCONS_LEASE_MS              write-lock lease in ms, default 30000 (cloud/core/core-options.ts)
//   CLOUDCONS_TOKEN_RECHECK_MS      a connection's token, rights and lease are checked again at its
//                                   first message after this long, default 30000, at most 30000
//   CLOUDCONS_QUIET_BATCH_MS        relays gather a quiet console's live output this long, default
//                                   2000 (ws-handler.ts; bench/cost.ts shows what it saves)
//   CLOUDCONS_REDACT_PASSWORDS      false: audit input typed at a password prompt in clear (default true)
//   CLOUDCONS_SECRET_PROMPT         a password prompt to recognise besides the built-in ones: a regex
//                                   for the console's line as shown, case-insensitive
//   CLOUDCONS_MAX_CONNS_PER_USER, CLOUDCONS_MAX_CONNS_PER_RELAY
//                                   open WebSockets per user (32) and per relay (4); more are refused
//                                   at $connect (ws-handler.ts)
//   CLOUDCONS_MAX_SESSIONS_PER_CONSOLE  sessions (writer and spies) one console takes, default 64
//   CLOUDCONS_MAX_BODY_BYTES        largest HTTP request body but segment uploads, default 1048576
//   CLOUDCONS_MAX_QUERIES_PER_USER  replay/export/grep/history requests of one user running at once
//                                   in one invocation's process, default 4 (CLOUDCONS_MAX_QUERIES: all users, 16)
//   CLOUDCONS_MAX_HISTORY_BYTES     most output sent as history on attach or replay, default 1048576
//                                   (each 22 KiB of it is one @connections post)
//   CLOUDCONS_MAX_PATTERN_LENGTH, CLOUDCONS_MAX_PATTERN_STATES, CLOUDCONS_MAX_GREP_MS
//                                   grep: pattern length (1000), compiled states (4000), scan time (20000)
//   CLOUDCONS_MAX_CONSOLES_PER_RELAY   consoles registered to one relay, default 1024 (relay-side.ts)
//   CLOUDCONS_RELAY_AUDITS_PER_MIN, CLOUDCONS_RELAY_AUDIT_BURST
//                                   audit records one relay may cause, per minute and at once,
//                                   per container (600, 3000; audit-ration.ts)
//   CLOUDCONS_USER_AUDITS_PER_MIN, CLOUDCONS_USER_AUDIT_BURST
//                                   the same for what one user causes without anything being done
//                                   (refusals, sign-ins), per container (120, 300)
//   CLOUDCONS_FENCE_CLAIM_SLACK     how far above the highest fence handed out a relay's claim may
//                                   be, default 1000 (0 allowed)
//   CLOUDCONS_RELAY_STATUS_MIN_MS   shortest time between two relay status reports stored (each is
//                                   a write), default 5000 (0 allowed)
//   CLOUDCONS_MAX_KEYS_PER_USER     SSH public keys one user may keep for local access, default 16
//   CLOUDCONS_MAX_KEY_FILE_BYTES    largest key file `cloudcons keys add` takes, default 65536
//   CLOUDCONS_AUDIT_TEXT_MAX        longest text (detail, user) an audit record keeps of what a request
//                                   or relay sent, default 1024 (cloud/core/audit-text.ts)
//   CLOUDCONS_OIDC_ISSUER           single sign-on: accept OpenID Connect ID tokens from this issuer
//                                   (cloud/adapters/oidc.ts); with CLOUDCONS_OIDC_AUDIENCE (client id)
//   CLOUDCONS_OIDC_USER_CLAIM       claim naming the user, default preferred_username
//   CLOUDCONS_OIDC_GROUPS_CLAIM     claim listing the groups, default groups
//   CLOUDCONS_OIDC_ADMIN_GROUPS     comma-separated groups whose members are admins, default none
//   CLOUDCONS_OIDC_CLOCK_TOLERANCE_S, CLOUDCONS_OIDC_JWKS_CACHE_MS, CLOUDCONS_OIDC_SCOPES
//                                   leeway (30), key cache (600000), the web viewer's scopes
//   CLOUDCONS_OIDC_MAX_LIFETIME_S   longest ID token lifetime (exp - iat) accepted, default 86400
//   AWS_REGION                      set by the Lambda runtime
//   AWS_ENDPOINT_URL[_S3|_DYNAMODB|_APIGATEWAYMANAGEMENTAPI]
//                                   the SDK's endpoint override (LocalStack); S3 then goes path-style
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { ApiGatewaySender } from '../adapters/aws/apigw-connections.ts';
import { segmentS3Client } from '../adapters/aws/s3-segment-store.ts';
import { TOKEN_RECHECK_MAX_MS, type CoreOptions } from '../core/core.ts';
import type { CloudPorts, ConnectionSender } from '../core/ports.ts';
import { awsPorts } from './aws-ports.ts';
import { OidcVerifier, type OidcOptions } from '../adapters/oidc.ts';

export interface EntryConfig {
  table: string;
  bucket: string;
  prefix?: string;
  auditBucket?: string;
  connectionsEndpoint?: string;
  core: Partial<CoreOptions>;
  /** CLOUDCONS_MAX_CONNS_PER_USER (32) and CLOUDCONS_MAX_CONNS_PER_RELAY (4). */
  maxConnsPerUser?: number;
  maxConnsPerRelay?: number;
  /** CLOUDCONS_MAX_BODY_BYTES (1 MiB) of the HTTP API's requests but segment uploads. */
  maxBodyBytes?: number;
  oidc?: Partial<OidcOptions> & Pick<OidcOptions, 'issuer' | 'audience'>;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`${name} is not set: the Lambda's environment must name it (infra/stack.ts sets it)`);
  return v;
}

export function positiveInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

/** A whole number (0 allowed) from the environment, or undefined when unset. */
export function wholeNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`${name} must be a whole number, got '${v}'`);
  return Number(v);
}

export function entryConfig(env: NodeJS.ProcessEnv = process.env): EntryConfig {
  const redact = env.CLOUDCONS_REDACT_PASSWORDS;
  if (redact !== undefined && redact !== '' && redact !== 'true' && redact !== 'false') throw new Error(`CLOUDCONS_REDACT_PASSWORDS must be true or false, got '${redact}'`);
  let secretPrompt: RegExp | undefined;
  if (env.CLOUDCONS_SECRET_PROMPT) {
    try { secretPrompt = new RegExp(env.CLOUDCONS_SECRET_PROMPT, 'i'); } catch (e) { throw new Error(`CLOUDCONS_SECRET_PROMPT: ${(e as Error).message}`); }
  }
  const tokenRecheckMs = positiveInt(env, 'CLOUDCONS_TOKEN_RECHECK_MS');
  if (tokenRecheckMs !== undefined && tokenRecheckMs > TOKEN_RECHECK_MAX_MS) throw new Error(`CLOUDCONS_TOKEN_RECHECK_MS must be at most ${TOKEN_RECHECK_MAX_MS} (revocations and expiry must reach open connections within 30 s), got '${tokenRecheckMs}'`);
  // Only what is set: the core's defaults (CORE_DEFAULTS, and the ws handler's own) fill the rest.
  const core: Partial<CoreOptions> = {
    leaseMs: positiveInt(env, 'CLOUDCONS_LEASE_MS'), quietBatchMs: positiveInt(env, 'CLOUDCONS_QUIET_BATCH_MS'),
    redactSecrets: redact === 'false' ? false : undefined, secretPrompt,
    maxSessionsPerConsole: positiveInt(env, 'CLOUDCONS_MAX_SESSIONS_PER_CONSOLE'), tokenRecheckMs, auditTextMax: positiveInt(env, 'CLOUDCONS_AUDIT_TEXT_MAX'),
    maxQueriesPerUser: positiveInt(env, 'CLOUDCONS_MAX_QUERIES_PER_USER'), maxQueries: positiveInt(env, 'CLOUDCONS_MAX_QUERIES'),
    maxHistoryBytes: positiveInt(env, 'CLOUDCONS_MAX_HISTORY_BYTES'), maxPatternLength: positiveInt(env, 'CLOUDCONS_MAX_PATTERN_LENGTH'),
    maxPatternStates: positiveInt(env, 'CLOUDCONS_MAX_PATTERN_STATES'), maxGrepMs: positiveInt(env, 'CLOUDCONS_MAX_GREP_MS'),
    maxConsolesPerRelay: positiveInt(env, 'CLOUDCONS_MAX_CONSOLES_PER_RELAY'), relayAuditsPerMin: positiveInt(env, 'CLOUDCONS_RELAY_AUDITS_PER_MIN'),
    relayAuditBurst: positiveInt(env, 'CLOUDCONS_RELAY_AUDIT_BURST'), fenceClaimSlack: wholeNumber(env, 'CLOUDCONS_FENCE_CLAIM_SLACK'),
    relayStatusMinMs: wholeNumber(env, 'CLOUDCONS_RELAY_STATUS_MIN_MS'),
    maxKeysPerUser: positiveInt(env, 'CLOUDCONS_MAX_KEYS_PER_USER'), maxKeyFileBytes: positiveInt(env, 'CLOUDCONS_MAX_KEY_FILE_BYTES'),
    userAuditsPerMin: positiveInt(env, 'CLOUDCONS_USER_AUDITS_PER_MIN'), userAuditBurst: positiveInt(env, 'CLOUDCONS_USER_AUDIT_BURST'),
  };
  const oidc = oidcConfig(env);
  return {
    maxConnsPerUser: positiveInt(env, 'CLOUDCONS_MAX_CONNS_PER_USER'), maxConnsPerRelay: positiveInt(env, 'CLOUDCONS_MAX_CONNS_PER_RELAY'),
    maxBodyBytes: positiveInt(env, 'CLOUDCONS_MAX_BODY_BYTES'),
    ...(oidc ? { oidc } : {}),
    table: required(env, 'CLOUDCONS_TABLE'),
    bucket: required(env, 'CLOUDCONS_SEGMENTS_BUCKET'),
    prefix: env.CLOUDCONS_SEGMENTS_PREFIX || undefined,
    auditBucket: env.CLOUDCONS_AUDIT_BUCKET || undefined,
    connectionsEndpoint: env.CLOUDCONS_CONNECTIONS_ENDPOINT || undefined,
    core: Object.fromEntries(Object.entries(core).filter(([, v]) => v !== undefined)),
  };
}

function oidcConfig(env: NodeJS.ProcessEnv): EntryConfig['oidc'] {
  const issuer = env.CLOUDCONS_OIDC_ISSUER, audience = env.CLOUDCONS_OIDC_AUDIENCE;
  if (!issuer && !audience) return undefined;
  if (!issuer || !audience) throw new Error('CLOUDCONS_OIDC_ISSUER and CLOUDCONS_OIDC_AUDIENCE go together');
  const tolerance = env.CLOUDCONS_OIDC_CLOCK_TOLERANCE_S;
  if (tolerance && !/^\d+$/.test(tolerance)) throw new Error(`CLOUDCONS_OIDC_CLOCK_TOLERANCE_S must be a whole number of seconds, got '${tolerance}'`);
  return {
    issuer, audience, userClaim: env.CLOUDCONS_OIDC_USER_CLAIM || undefined, groupsClaim: env.CLOUDCONS_OIDC_GROUPS_CLAIM || undefined,
    adminGroups: env.CLOUDCONS_OIDC_ADMIN_GROUPS?.split(',').map((g) => g.trim()).filter(Boolean),
    clockToleranceS: tolerance ? Number(tolerance) : undefined, maxLifetimeS: positiveInt(env, 'CLOUDCONS_OIDC_MAX_LIFETIME_S'), jwksCacheMs: positiveInt(env, 'CLOUDCONS_OIDC_JWKS_CACHE_MS'), scopes: env.CLOUDCONS_OIDC_SCOPES || undefined,
  };
}

/** The @connections endpoint of the API a WebSocket event came through (API Gateway's own domain;
 *  behind a custom domain set CLOUDCONS_CONNECTIONS_ENDPOINT instead). */
export function connectionsEndpointOf(rc: { domainName?: string; stage?: string }): string | undefined {
  return rc.domainName && rc.stage ? `https://${rc.domainName}/${rc.stage}` : undefined;
}

/** A ConnectionSender whose endpoint is decided per invocation (`endpoint()`), with one management
 *  client per endpoint. A Lambda environment runs one invocation at a time, so reading a module
 *  variable set at the start of the invocation is safe. */
export function lazySender(endpoint: () => string | undefined): ConnectionSender {
  const senders = new Map<string, ApiGatewaySender>();
  const get = () => {
    const e = endpoint();
    if (!e) throw new Error('no @connections endpoint: set CLOUDCONS_CONNECTIONS_ENDPOINT (https://<api-id>.execute-api.<region>.amazonaws.com/<stage>)');
    let s = senders.get(e);
    if (!s) senders.set(e, s = new ApiGatewaySender(new ApiGatewayManagementApiClient({ endpoint: e })));
    return s;
  };
  return { send: (conn, frame) => get().send(conn, frame), close: (conn, code, reason) => get().close(conn, code, reason) };
}

/** The core's ports on the AWS clients. The SDK finds region and credentials (the function's
 *  role) as usual; a custom endpoint (LocalStack) is reached path-style for S3. */
export function entryPorts(c: EntryConfig, sender: ConnectionSender): { ports: CloudPorts; db: DynamoDBClient; s3: S3Client } {
  const db = new DynamoDBClient({});
  const s3Endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const s3 = segmentS3Client(s3Endpoint ? { forcePathStyle: true } : {});
  const ports = awsPorts({ db, table: c.table, s3, bucket: c.bucket, prefix: c.prefix, auditBucket: c.auditBucket, sender });
  // The verifier caches discovery and keys per container: a warm invocation verifies offline.
  if (c.oidc) ports.identity = new OidcVerifier(c.oidc);
  return { db, s3, ports };
}
