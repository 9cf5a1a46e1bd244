// The CDK app (cdk.json: `npx tsx infra/app.ts`). One environment-agnostic stack: the account and
// region come from the deploying credentials (`cdk deploy`), nothing is looked up at synth time,
// so `cdk synth` runs offline and without credentials.
//
// Context (`npx cdk deploy -c name=value`, or "context" in cdk.json):
//   stackName           CloudFormation stack name, default Cloudcons
//   auditRetentionDays  Object Lock (COMPLIANCE) retention of the audit bucket, default 365
//   logRetentionDays    CloudWatch Logs retention of both functions, default 30
//   segmentsPrefix      key prefix of segments in the bucket, default none
//   segmentsTransitionDays  move merged segment objects (> 128 KiB) to Glacier Instant Retrieval
//                       after this many days (>= 2), default never
//   stageName           API Gateway WebSocket stage, default prod
//   wsRateLimit, wsBurstLimit  messages/s (and burst) the WebSocket stage takes from all
//                       connections together, default 2000 / 5000
//   oidcIssuer, oidcAudience  single sign-on: accept OpenID Connect ID tokens from this issuer for
//                       this client id (both or neither), default none
//   oidcUserClaim, oidcGroupsClaim  claims naming the user and the groups (preferred_username, groups)
//   oidcAdminGroups     comma-separated groups whose members are admins
//   oidcTokenEndpoint   the issuer's token endpoint, the one URL of it the viewer's CSP allows
//                       (default: the issuer's origin)
import { App } from 'aws-cdk-lib';
import { CloudconsStack, STACK_DEFAULTS } from './stack.ts';

const app = new App();
const ctx = (name: string): string | undefined => {
  const v: unknown = app.node.tryGetContext(name);
  return v === undefined || v === null || v === '' ? undefined : String(v);
};
const int = (name: string): number | undefined => {
  const v = ctx(name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`context ${name} must be a whole number, got '${v}'`);
  return Number(v);
};

new CloudconsStack(app, ctx('stackName') ?? 'Cloudcons', {
  description: 'cloudcons serverless cloud: API Gateway WebSocket + Lambda + DynamoDB + S3',
  auditRetentionDays: int('auditRetentionDays') ?? STACK_DEFAULTS.auditRetentionDays,
  logRetentionDays: int('logRetentionDays') ?? STACK_DEFAULTS.logRetentionDays,
  segmentsPrefix: ctx('segmentsPrefix'),
  segmentsTransitionDays: int('segmentsTransitionDays'),
  stageName: ctx('stageName'),
  wsRateLimit: int('wsRateLimit'), wsBurstLimit: int('wsBurstLimit'),
  oidc: ctx('oidcIssuer') || ctx('oidcAudience') ? {
    issuer: ctx('oidcIssuer') ?? '', audience: ctx('oidcAudience') ?? '', userClaim: ctx('oidcUserClaim'), groupsClaim: ctx('oidcGroupsClaim'),
    adminGroups: ctx('oidcAdminGroups')?.split(',').map((g) => g.trim()).filter(Boolean), tokenEndpoint: ctx('oidcTokenEndpoint'),
  } : undefined,
});
app.synth();
