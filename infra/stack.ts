// The serverless shape of the cloud on AWS (DESIGN.md, "Embedded default and scale-out"):
//
//   relays, CLI ──wss──> API Gateway WebSocket API ──$connect/$disconnect/$default──> ws Lambda
//   relays, CLI ──https─> Lambda function URL (response streaming) ──────────────────> http Lambda
//   both Lambdas ──> DynamoDB state table (cloud/adapters/aws/dynamo-table.ts) + S3 segments bucket
//   both Lambdas ──> @connections of the WebSocket stage (posts to relays and viewers)
//   relays ──presigned PUT──> S3 segments bucket (they hold no AWS credentials)
//   EventBridge, hourly ──> archive Lambda: audit records over an hour old, table ──> audit bucket
//   browsers ──https──> CloudFront: the web viewer (dist/web in a private bucket, read through
//     origin access control) and /v1/* (the http Lambda's URL, same origin: no CORS); the page's
//     config.json names the WebSocket URL
//
// The Lambda code is the esbuild bundles in dist/lambda/ (scripts/build.mjs, run by `npm ci`).
// The stack is environment-agnostic (no account/region lookups), so it synthesizes offline.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFunction, FunctionUrlAuthType, InvokeMode, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction as LambdaTarget } from 'aws-cdk-lib/aws-events-targets';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectLockRetention, StorageClass } from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, CacheControl, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { AllowedMethods, CachePolicy, Distribution, HeadersFrameOption, HeadersReferrerPolicy, OriginRequestPolicy, ResponseHeadersPolicy, ViewerProtocolPolicy } from 'aws-cdk-lib/aws-cloudfront';
import { FunctionUrlOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import type { Construct } from 'constructs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface CloudconsStackProps extends StackProps {
  /** Days each audit object stays locked (Object Lock, COMPLIANCE mode: nobody, root included,
   *  can shorten it or delete the object before). CDK context `auditRetentionDays`. Default 365. */
  auditRetentionDays?: number;
  /** Days CloudWatch keeps the functions' logs; one of CloudWatch's allowed values (1, 3, 5, 7,
   *  14, 30, 60, 90, ...). CDK context `logRetentionDays`. Default 30. */
  logRetentionDays?: number;
  /** Key prefix of segments in the bucket (e.g. `site1/`). CDK context `segmentsPrefix`. Default none. */
  segmentsPrefix?: string;
  /** Days after which segment objects over 128 KiB move to S3 Glacier Instant Retrieval
   *  (millisecond reads: replay and grep keep working, at a retrieval fee). At least 2: the
   *  archive function merges each day's segments the day after. CDK context
   *  `segmentsTransitionDays`. Default none: segments stay in S3 Standard. */
  segmentsTransitionDays?: number;
  /** API Gateway stage name (the last path element of the wss:// URL). CDK context `stageName`. Default `prod`. */
  stageName?: string;
  /** Messages per second the WebSocket stage accepts from all connections together, and its burst
   *  (API Gateway throttles the rest with 429s): the bound on what a flood of messages can cost.
   *  Per connection limits need state per message, which API Gateway does not offer; the handler
   *  still limits connections per user and relay and sessions per console. CDK context
   *  `wsRateLimit`, `wsBurstLimit`. Default 2000 / 5000. */
  wsRateLimit?: number;
  wsBurstLimit?: number;
  /** Single sign-on (cloud/adapters/oidc.ts): both functions accept OpenID Connect ID tokens from
   *  `issuer` issued to `audience` (the client id), and the viewer offers "Sign in with SSO". The
   *  viewer posts the authorization code to `tokenEndpoint` (the issuer's token_endpoint): the CSP
   *  allows that one URL; without it, the issuer's origin. CDK context `oidcIssuer`, `oidcAudience`,
   *  `oidcUserClaim`, `oidcGroupsClaim`, `oidcAdminGroups` (comma-separated), `oidcTokenEndpoint`.
   *  Default none: cloudcons tokens only. */
  oidc?: { issuer: string; audience: string; userClaim?: string; groupsClaim?: string; adminGroups?: string[]; tokenEndpoint?: string };
  /** Where the Lambda bundles are. Default `<repo>/dist/lambda`. */
  lambdaDist?: string;
  /** Where the built web viewer is. Default `<repo>/dist/web`. */
  webDist?: string;
}

export const STACK_DEFAULTS = { auditRetentionDays: 365, logRetentionDays: 30, segmentsPrefix: '', stageName: 'prod', wsRateLimit: 2000, wsBurstLimit: 5000 };

/** The DynamoDB actions the adapters in cloud/adapters/aws/ send (GetItem, PutItem, UpdateItem,
 *  DeleteItem, Query on the gsi1/gsi2 indexes, BatchWriteItem in the hot tail). infra/stack.test.ts
 *  checks this list against the commands the adapters import. No Scan, no table management. */
export const DYNAMO_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:BatchWriteItem'];

function bundle(dist: string, name: string): Code {
  const dir = path.join(dist, name);
  if (!fs.existsSync(path.join(dir, 'index.mjs'))) {
    throw new Error(`no Lambda bundle at ${dir}/index.mjs: run \`npm run build\` (npm ci does it) before cdk synth/deploy`);
  }
  return Code.fromAsset(dir);
}

export class CloudconsStack extends Stack {
  readonly table: Table;
  readonly segments: Bucket;
  readonly audit: Bucket;
  readonly viewer: Bucket;
  readonly distribution: Distribution;
  readonly wsFunction: LambdaFunction;
  readonly httpFunction: LambdaFunction;
  readonly archiveFunction: LambdaFunction;
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;

  constructor(scope: Construct, id: string, props: CloudconsStackProps = {}) {
    super(scope, id, props);
    const o = {
      auditRetentionDays: props.auditRetentionDays ?? STACK_DEFAULTS.auditRetentionDays,
      logRetentionDays: props.logRetentionDays ?? STACK_DEFAULTS.logRetentionDays,
      segmentsPrefix: props.segmentsPrefix ?? STACK_DEFAULTS.segmentsPrefix,
      stageName: props.stageName ?? STACK_DEFAULTS.stageName,
      wsRateLimit: props.wsRateLimit ?? STACK_DEFAULTS.wsRateLimit,
      wsBurstLimit: props.wsBurstLimit ?? STACK_DEFAULTS.wsBurstLimit,
    };
    for (const k of ['wsRateLimit', 'wsBurstLimit'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`${k} must be a positive integer, got ${o[k]}`);
    if (!Number.isInteger(o.auditRetentionDays) || o.auditRetentionDays < 1) throw new Error(`auditRetentionDays must be a positive integer, got ${o.auditRetentionDays}`);
    const transition = props.segmentsTransitionDays;
    if (transition !== undefined && (!Number.isInteger(transition) || transition < 2)) {
      throw new Error(`segmentsTransitionDays must be a whole number of days, at least 2 (segments are merged into daily objects the day after), got ${transition}`);
    }
    if (!Object.values(RetentionDays).includes(o.logRetentionDays)) {
      throw new Error(`logRetentionDays must be one of CloudWatch's values (${Object.values(RetentionDays).filter((v) => typeof v === 'number').join(', ')}), got ${o.logRetentionDays}`);
    }
    const dist = props.lambdaDist ?? path.join(ROOT, 'dist/lambda');

    // ---------------------------------------------------------------- state: one DynamoDB table
    // Exactly createStateTable's layout (cloud/adapters/aws/dynamo-table.ts). `ttl` (epoch seconds)
    // garbage-collects connection and session rows; never a lock's lease (compared with the clock).
    // RETAIN: tokens, the lock fences and the audit records live here; deleting the stack must not
    // delete them.
    this.table = new Table(this, 'State', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'ttl',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const gsi of ['gsi1', 'gsi2']) {
      this.table.addGlobalSecondaryIndex({
        indexName: gsi,
        partitionKey: { name: `${gsi}pk`, type: AttributeType.STRING },
        sortKey: { name: `${gsi}sk`, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }

    // -------------------------------------------------------------------------- segments bucket
    // Sealed segments (protocol/SEGMENT.md) and their `.tri` grep indexes, written once
    // (`If-None-Match: *`) by relays through presigned PUTs. Versioning on: a segment deleted by
    // mistake (or by a bad credential) can be restored for 30 days; the cloud itself deletes only a
    // segment that fails verification at commit. Noncurrent versions expire (an expiration, not a
    // transition).
    // Segments are small (~12 KB for a quiet console-minute) and archive tiers add 40 KB of
    // overhead and a transition fee per object (aws-constraints-and-cost.md, section 4 and
    // "Glacier trap"): the archive function merges each past day's segments into one object per
    // console, and only then, with segmentsTransitionDays, may objects move to Glacier Instant
    // Retrieval, and only those over 128 KiB (its minimum billable size; a gap segment or a day
    // cut short stays in Standard). No transition by default.
    // No CORS: relays PUT from Node, not from a browser.
    this.segments = new Bucket(this, 'Segments', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [
        { id: 'expire-old-versions', noncurrentVersionExpiration: Duration.days(30), expiredObjectDeleteMarker: true },
        ...(transition ? [{
          id: 'merged-segments-to-glacier-ir', prefix: o.segmentsPrefix || undefined, objectSizeGreaterThan: 128 * 1024,
          transitions: [{ storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(transition) }],
        }] : []),
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ----------------------------------------------------------------------------- audit bucket
    // WORM storage for the audit log (DESIGN.md "Audit"): Object Lock in COMPLIANCE mode with a
    // default retention, so no user (root included) can shorten, overwrite or delete a record
    // before it expires. Records are written to the table first (a PutItem per record, before the
    // input it describes is forwarded); the archive function moves them here hourly, in objects
    // per console and day (cloud/adapters/aws/s3-audit-archive.ts, which sends the Content-MD5 S3
    // requires on PUTs to an Object Lock bucket). No lifecycle rule: retention decides.
    this.audit = new Bucket(this, 'Audit', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: ObjectLockRetention.compliance(Duration.days(o.auditRetentionDays)),
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // --------------------------------------------------------------------------- WebSocket API
    this.api = new WebSocketApi(this, 'WebSocket', { description: 'cloudcons relays and clients (protocol/README.md)' });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api, stageName: o.stageName, autoDeploy: true,
      throttle: { rateLimit: o.wsRateLimit, burstLimit: o.wsBurstLimit },
    });

    // ------------------------------------------------------------------------------- functions
    const env: Record<string, string> = {
      CLOUDCONS_TABLE: this.table.tableName,
      CLOUDCONS_SEGMENTS_BUCKET: this.segments.bucketName,
      ...(o.segmentsPrefix ? { CLOUDCONS_SEGMENTS_PREFIX: o.segmentsPrefix } : {}),
      // https://<api>.execute-api.<region>.amazonaws.com/<stage>: the ws function could derive it
      // from its events, the http function cannot.
      CLOUDCONS_CONNECTIONS_ENDPOINT: this.stage.callbackUrl,
    };
    const sso = props.oidc;
    if (sso && (!sso.issuer || !sso.audience)) throw new Error('oidc: issuer and audience go together (CDK context oidcIssuer, oidcAudience)');
    const oidcEnv: Record<string, string> = sso ? {
      CLOUDCONS_OIDC_ISSUER: sso.issuer, CLOUDCONS_OIDC_AUDIENCE: sso.audience,
      ...(sso.userClaim ? { CLOUDCONS_OIDC_USER_CLAIM: sso.userClaim } : {}), ...(sso.groupsClaim ? { CLOUDCONS_OIDC_GROUPS_CLAIM: sso.groupsClaim } : {}),
      ...(sso.adminGroups?.length ? { CLOUDCONS_OIDC_ADMIN_GROUPS: sso.adminGroups.join(',') } : {}),
    } : {};
    const fn = (name: 'ws' | 'http' | 'archive', p: { handler: string; memorySize: number; timeout: Duration; description: string; environment?: Record<string, string> }) => {
      // Own role and log group: the default role would carry AWSLambdaBasicExecutionRole, whose
      // logs:CreateLogGroup/CreateLogStream/PutLogEvents are on Resource "*". This role may
      // write to its own log group and nothing else until granted below.
      const id = name[0].toUpperCase() + name.slice(1);
      const role = new Role(this, `${id}Role`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
      const logGroup = new LogGroup(this, `${id}Logs`, { retention: o.logRetentionDays as RetentionDays, removalPolicy: RemovalPolicy.DESTROY });
      logGroup.grantWrite(role);
      return new LambdaFunction(this, `${id}Function`, {
        ...p,
        // nodejs22.x: Node 20 leaves upstream LTS in April 2026; the bundle targets node20 syntax,
        // which 22 runs. arm64: ~20% cheaper per GB-s than x86 (reference, section 2).
        runtime: Runtime.NODEJS_22_X,
        architecture: Architecture.ARM_64,
        code: bundle(dist, name),
        role,
        logGroup,
        environment: { ...env, ...p.environment },
      });
    };
    // ws: one protocol message per invocation (a relay's output, a keystroke, an attach with up to
    // 1 MiB of history). 512 MB: CPU scales with memory, and the SDK clients' cold start (~375 ms
    // at the reference's measurements) shrinks with it; the cost model assumes 256 MB, so measure
    // before raising. 29 s: API Gateway's integration timeout; a longer run is answered to nobody.
    this.wsFunction = fn('ws', {
      handler: 'index.handler', memorySize: 512, timeout: Duration.seconds(29),
      description: 'cloudcons WebSocket routes ($connect, $disconnect, $default)', environment: oidcEnv,
    });
    // http: replay, grep, export (CPU-bound inflating of segments, up to 200 MB streamed at 2 MB/s
    // past the first 6 MB), segment upload URLs and commits (sha256 of up to 16 MiB). 1024 MB for
    // the CPU; 5 minutes covers a 200 MB streamed export with room (~100 s at 2 MB/s).
    this.httpFunction = fn('http', {
      handler: 'index.streamingHandler', memorySize: 1024, timeout: Duration.minutes(5),
      description: 'cloudcons HTTP API (hono app, response streaming)',
      environment: { CLOUDCONS_AUDIT_BUCKET: this.audit.bucketName, ...oidcEnv },
    });
    // archive: hourly, moves audit records over an hour old from the table to the audit bucket
    // (a few queries and at most one PUT per console with new records), and merges each past
    // day's segments into one object per console (once a day: ~300 GETs, a PUT and ~300 DELETEs
    // for a console on 5-minute segments). 15 minutes: the longest a Lambda runs; a run cut
    // short leaves the rest for the next one (records and small segments are deleted only after
    // what replaces them is stored). 1024 MB: a day's merge holds its segments in memory.
    this.archiveFunction = fn('archive', {
      handler: 'index.handler', memorySize: 1024, timeout: Duration.minutes(15),
      description: 'cloudcons audit archiver (table -> Object Lock audit bucket)',
      environment: { CLOUDCONS_AUDIT_BUCKET: this.audit.bucketName, CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS: String(3_600_000) },
    });
    new Rule(this, 'ArchiveSchedule', {
      description: 'cloudcons: archive audit records over an hour old, hourly',
      schedule: Schedule.rate(Duration.hours(1)),
      targets: [new LambdaTarget(this.archiveFunction, { retryAttempts: 2 })],
    });

    const integration = new WebSocketLambdaIntegration('WsIntegration', this.wsFunction);
    for (const route of ['$connect', '$disconnect', '$default']) this.api.addRoute(route, { integration });

    // Function URL, auth NONE: the app authenticates every request itself (bearer tokens,
    // cloud/core/http-app.ts; only /healthz is open), as the embedded server does, so relays and
    // the CLI need no AWS credentials. RESPONSE_STREAM: replays and exports past 6 MB stream.
    const url = this.httpFunction.addFunctionUrl({ authType: FunctionUrlAuthType.NONE, invokeMode: InvokeMode.RESPONSE_STREAM });

    // --------------------------------------------------------------------- least-privilege IAM
    const tableAccess = new PolicyStatement({ actions: DYNAMO_ACTIONS, resources: [this.table.tableArn, `${this.table.tableArn}/index/*`] });
    const objects = this.segments.arnForObjects(`${o.segmentsPrefix}*`);
    // ListBucket: segment listings, and S3 answers a GET/HEAD of a missing key with 404 only to a
    // caller that may list the bucket (403 otherwise, which the segment store cannot tell from a
    // real denial). Not narrowed by an s3:prefix condition even with a prefix: that key is absent
    // from the 404-or-403 check, so the condition would turn every 404 into a 403. Object access
    // stays under the prefix.
    const list = new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.segments.bucketArn] });
    for (const f of [this.wsFunction, this.httpFunction]) {
      f.addToRolePolicy(tableAccess);
      f.addToRolePolicy(list);
      // PostToConnection / DeleteConnection on this API's stage only (arn .../<api>/<stage>/*/@connections/*).
      this.stage.grantManagementApiAccess(f);
    }
    // ws: replay and attach history read segments (GetObject also answers HeadObject). It neither
    // presigns nor writes: segment upload URLs and commits are HTTP routes.
    this.wsFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [objects] }));
    // http: presigned PUTs are signed with this function's role, so it needs PutObject for the
    // relays' uploads; it also writes the `.tri` grep index at commit and deletes a segment that
    // fails verification.
    this.httpFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: [objects] }));
    // The audit bucket: the http function reads it (audit listings), the archive function also
    // writes (create-only objects; HEAD = GetObject). Nobody may delete there, and Object Lock
    // would refuse anyway. The ws function only appends to the table.
    const auditList = new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.audit.bucketArn] });
    this.httpFunction.addToRolePolicy(auditList);
    this.httpFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [this.audit.arnForObjects('audit/*')] }));
    // archive: reads the console registry and audit partitions (Query), deletes archived records
    // (BatchWriteItem) in audit partitions only, and reads and bumps the segment-index versions
    // (`segidx` items) when it compacts (dynamodb:LeadingKeys).
    this.archiveFunction.addToRolePolicy(new PolicyStatement({ actions: ['dynamodb:Query'], resources: [this.table.tableArn] }));
    this.archiveFunction.addToRolePolicy(new PolicyStatement({
      actions: ['dynamodb:BatchWriteItem'], resources: [this.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['audit#*'] } },
    }));
    this.archiveFunction.addToRolePolicy(new PolicyStatement({
      actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], resources: [this.table.tableArn],
      conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['segidx'] } },
    }));
    // ... and compacts segments: reads the small ones, writes the merged one and its grep index,
    // deletes the small ones (the bucket keeps deleted versions 30 days).
    this.archiveFunction.addToRolePolicy(list);
    this.archiveFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: [objects] }));
    this.archiveFunction.addToRolePolicy(auditList);
    this.archiveFunction.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [this.audit.arnForObjects('audit/*')] }));

    // -------------------------------------------------------------------------------- web viewer
    // The viewer's files in a private bucket, served by CloudFront through origin access control;
    // /v1/* goes to the http function's URL, so the page calls the API on its own origin. Nothing
    // is cached on the API path and every viewer header (Authorization) is passed on.
    const webDist = props.webDist ?? path.join(ROOT, 'dist/web');
    if (!fs.existsSync(path.join(webDist, 'index.html'))) throw new Error(`no web viewer at ${webDist}/index.html: run \`npm run build\` (npm ci does it) before cdk synth/deploy`);
    this.viewer = new Bucket(this, 'Viewer', {
      encryption: BucketEncryption.S3_MANAGED, blockPublicAccess: BlockPublicAccess.BLOCK_ALL, enforceSSL: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const wsOrigin = Fn.join('', ['wss://', this.api.apiId, '.execute-api.', this.region, '.', this.urlSuffix]);
    const headers = new ResponseHeadersPolicy(this, 'ViewerHeaders', {
      securityHeadersBehavior: {
        // As the embedded cloud's (cloud/server/web-assets.ts), plus the WebSocket API's origin.
        contentSecurityPolicy: {
          contentSecurityPolicy: Fn.join('', ["default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ", wsOrigin,
            ...(sso ? [` ${sso.tokenEndpoint ?? new URL(sso.issuer).origin}`] : []), "; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"]),
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
      },
    });
    this.distribution = new Distribution(this, 'ViewerDistribution', {
      comment: 'cloudcons web viewer and API',
      defaultRootObject: 'index.html',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.viewer),
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: headers,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
      },
      additionalBehaviors: {
        '/v1/*': {
          origin: new FunctionUrlOrigin(url),
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_ALL,
          cachePolicy: CachePolicy.CACHING_DISABLED,
          originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        },
      },
    });
    // Served `Cache-Control: no-cache` (CloudFront revalidates by ETag), so a new viewer shows at
    // once without invalidations, whose IAM grant CDK can only give on Resource "*".
    new BucketDeployment(this, 'ViewerFiles', {
      destinationBucket: this.viewer,
      sources: [Source.asset(webDist), Source.jsonData('config.json', { wsUrl: this.stage.url })],
      cacheControl: [CacheControl.noCache()],
      prune: true,
    });

    // ----------------------------------------------------------------------------------- outputs
    const httpUrl = url.url;
    new CfnOutput(this, 'ViewerUrl', { value: Fn.join('', ['https://', this.distribution.distributionDomainName, '/']), description: 'the web viewer (sign in with a user token)' });
    new CfnOutput(this, 'WebSocketUrl', { value: this.stage.url, description: 'relays: --ws-url; the CLI: CLOUDCONS_WS_URL' });
    new CfnOutput(this, 'HttpUrl', { value: httpUrl, description: 'relays: --cloud; the CLI: cloudcons login URL' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'SegmentsBucketName', { value: this.segments.bucketName });
    new CfnOutput(this, 'AuditBucketName', { value: this.audit.bucketName, description: 'Object Lock (COMPLIANCE): audit records over an hour old (newer ones are in the table)' });
    new CfnOutput(this, 'RelayCommand', {
      description: 'on each edge host, with a relay token (cloudcons relay-token create NAME, logged in as an admin) in /etc/cloudcons/relay-token (mode 0600, owned by the relay user)',
      // 5-minute segments and a 4-minute heartbeat: what the cost model (bench/cost.ts, README)
      // assumes; unwatched output still replays current (the cloud asks the relay for its tail).
      value: Fn.join('', ['cloudcons relay --config relay.yaml --cloud ', httpUrl, ' --ws-url ', this.stage.url, ' --segment-ms 300000 --heartbeat-ms 240000 --token-file /etc/cloudcons/relay-token']),
    });
  }
}
