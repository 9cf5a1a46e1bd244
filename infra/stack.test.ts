// The CDK stack (infra/stack.ts), synthesized in process and checked with aws-cdk-lib/assertions:
// what the emulators cannot show (Object Lock, TTL, PITR, IAM, encryption; DESIGN.md "Local
// stand-ins") is asserted on the template. The expectations come from the code the stack serves
// where they can: the table layout from createStateTable, the TTL attribute from what the adapters
// write, the IAM actions from the SDK commands the adapters send, the relay flags from the CLI.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoConnections } from '../cloud/adapters/aws/apigw-connections.ts';
import { DynamoSessionStore } from '../cloud/adapters/aws/dynamo-session-store.ts';
import { createStateTable } from '../cloud/adapters/aws/dynamo-table.ts';
import { cli } from '../test/helpers.ts';
import { CloudconsStack, ROOT } from './stack.ts';

const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-cdk-'));
after(() => fs.rmSync(outdir, { recursive: true, force: true }));

const stack = new CloudconsStack(new App({ outdir }), 'Test');
const template = Template.fromStack(stack);
type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };
const resources = template.toJSON().Resources as Record<string, Resource>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const logicalId = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);
const arr = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const refersTo = (v: unknown, id: string) => JSON.stringify(v).includes(`"${id}"`);

const wsId = logicalId(stack.wsFunction);
const httpId = logicalId(stack.httpFunction);
const archiveId = logicalId(stack.archiveFunction);
const tableId = logicalId(stack.table);
const segmentsId = logicalId(stack.segments);
const auditId = logicalId(stack.audit);
const viewerId = logicalId(stack.viewer);
const distributionId = logicalId(stack.distribution);

// ------------------------------------------------------------------------------------- DynamoDB

/** What createStateTable sends: the layout the adapters and their contract tests use. */
async function stateTableInput(): Promise<Record<string, any>> {
  let input: Record<string, any> | undefined;
  const fake = { send: async (c: { input: Record<string, any> }) => { input = c.input; return {}; } } as unknown as DynamoDBClient;
  await createStateTable(fake, 'x');
  return input!;
}

test('state table: exactly createStateTable\'s keys and indexes, on demand, PITR, retained', async () => {
  const want = await stateTableInput();
  const [[, table], ...more] = ofType('AWS::DynamoDB::Table');
  assert.equal(more.length, 0, 'one table');
  const p = table!.Properties;
  assert.deepEqual(p.KeySchema, want.KeySchema);
  const defs = (d: { AttributeName: string; AttributeType: string }[]) => [...d].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName));
  assert.deepEqual(defs(p.AttributeDefinitions), defs(want.AttributeDefinitions));
  const gsis = (g: { IndexName: string }[]) => [...g].sort((a, b) => a.IndexName.localeCompare(b.IndexName));
  assert.deepEqual(gsis(p.GlobalSecondaryIndexes), gsis(want.GlobalSecondaryIndexes));
  assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
  assert.equal(want.BillingMode, 'PAY_PER_REQUEST');
  assert.equal(p.ProvisionedThroughput, undefined);
  assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  assert.equal(table!.DeletionPolicy, 'Retain');
  assert.equal(table!.UpdateReplacePolicy, 'Retain');
});

test('state table: TTL on the attribute the adapters write (epoch seconds)', async () => {
  const ttl = template.toJSON().Resources[tableId].Properties.TimeToLiveSpecification;
  assert.equal(ttl.Enabled, true);
  // Capture the items the TTL-carrying adapters put.
  const items: Record<string, { N?: string }>[] = [];
  const fake = { send: async (c: { input: { Item?: Record<string, { N?: string }> } }) => { if (c.input.Item) items.push(c.input.Item); return {}; } } as unknown as DynamoDBClient;
  const now = Date.now();
  await new DynamoConnections(fake, 't').put('c1', { kind: 'relay', who: { kind: 'relay', name: 'r', admin: false, tokenId: 'i' }, connectedAt: now });
  await new DynamoSessionStore(fake, 't', { now: () => now }).put({ id: 's1', console: 'c', conn: 'c1', user: 'u', mode: 'spy', since: now });
  assert.equal(items.length, 2);
  for (const it of items) {
    const v = it[ttl.AttributeName];
    assert.ok(v?.N, `the item carries ${ttl.AttributeName}: ${JSON.stringify(Object.keys(it))}`);
    const secs = Number(v.N);
    assert.ok(secs > now / 1000 && secs < now / 1000 + 7 * 86400, `${ttl.AttributeName} is epoch seconds in the near future, got ${secs}`);
  }
});

// ------------------------------------------------------------------------------------------- S3

test('both buckets: encrypted, all public access blocked, SSL only, retained', () => {
  for (const id of [segmentsId, auditId]) {
    const b = resources[id]!;
    assert.equal(b.Type, 'AWS::S3::Bucket');
    const sse = b.Properties.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.SSEAlgorithm;
    assert.ok(['AES256', 'aws:kms', 'aws:kms:dsse'].includes(sse), `${id} encrypted: ${sse}`);
    assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    assert.equal(b.DeletionPolicy, 'Retain');
    const policies = ofType('AWS::S3::BucketPolicy').filter(([, p]) => refersTo(p.Properties.Bucket, id));
    assert.equal(policies.length, 1, `${id} has a bucket policy`);
    const deny = arr(policies[0]![1].Properties.PolicyDocument.Statement).find((s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
    assert.ok(deny, `${id}: a Deny on aws:SecureTransport=false`);
    assert.deepEqual(arr(deny.Action), ['s3:*']);
    assert.ok(arr(deny.Resource).length === 2 && arr(deny.Resource).every((r) => refersTo(r, id)), 'covers the bucket and its objects');
  }
});

test('audit bucket: Object Lock in COMPLIANCE mode, default 365 days, versioned', () => {
  const p = resources[auditId]!.Properties;
  assert.equal(p.ObjectLockEnabled, true);
  assert.deepEqual(p.ObjectLockConfiguration, { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 365 } } });
  assert.equal(p.VersioningConfiguration?.Status, 'Enabled');
  // Nobody may delete or overwrite there (Object Lock refuses anyway); the ws function only
  // appends to the table, so it has no access at all.
  for (const [id, pol] of ofType('AWS::IAM::Policy')) {
    for (const st of arr(pol.Properties.PolicyDocument.Statement) as any[]) {
      if (!refersTo(st.Resource, auditId)) continue;
      for (const a of arr(st.Action)) assert.ok(['s3:GetObject', 's3:PutObject', 's3:ListBucket'].includes(a as string), `${id}: ${a} on the audit bucket`);
    }
  }
  const onAudit = (fnId: string) => statementsOf(fnId).filter((st) => refersTo(st.Resource, auditId)).flatMap((st) => st.Action).sort();
  assert.deepEqual(onAudit(wsId), []);
  assert.deepEqual(onAudit(httpId), ['s3:GetObject', 's3:ListBucket'], 'http reads archived records (audit listings)');
  assert.deepEqual(onAudit(archiveId), ['s3:GetObject', 's3:ListBucket', 's3:PutObject'], 'the archiver writes them');
});

test('archiver: its bundle\'s handler, run hourly by an EventBridge rule, moving audit records over an hour old and compacting segments; it may query the table, delete audit items and bump segment-index versions only', () => {
  const p = resources[archiveId]!.Properties;
  assert.equal(p.Runtime, 'nodejs22.x');
  assert.equal(p.Handler, 'index.handler');
  assert.match(fs.readFileSync(path.join(ROOT, 'dist/lambda/archive/index.mjs'), 'utf8'), /export\s*\{[^}]*\bhandler\b[^}]*\}/);
  assert.deepEqual(p.Environment.Variables.CLOUDCONS_AUDIT_BUCKET, { Ref: auditId });
  assert.equal(p.Environment.Variables.CLOUDCONS_AUDIT_ARCHIVE_AFTER_MS, '3600000');
  assert.deepEqual(resources[httpId]!.Properties.Environment.Variables.CLOUDCONS_AUDIT_BUCKET, { Ref: auditId });
  assert.equal(resources[wsId]!.Properties.Environment.Variables.CLOUDCONS_AUDIT_BUCKET, undefined);
  const rules = ofType('AWS::Events::Rule');
  assert.equal(rules.length, 1);
  assert.equal(rules[0]![1].Properties.ScheduleExpression, 'rate(1 hour)');
  assert.ok(refersTo(rules[0]![1].Properties.Targets, archiveId));
  const perm = ofType('AWS::Lambda::Permission').filter(([, q]) => q.Properties.Principal === 'events.amazonaws.com');
  assert.equal(perm.length, 1);
  assert.ok(refersTo(perm[0]![1].Properties.FunctionName, archiveId) && refersTo(perm[0]![1].Properties.SourceArn, rules[0]![0]));
  const dyn = statementsOf(archiveId).filter((st) => st.Action.some((a) => a.startsWith('dynamodb:')));
  assert.deepEqual(dyn.flatMap((st) => st.Action).sort(), ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
  const del = dyn.find((st) => st.Action.includes('dynamodb:BatchWriteItem'))!;
  assert.deepEqual(del.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['audit#*'] } });
  const ver = dyn.find((st) => st.Action.includes('dynamodb:UpdateItem'))!;
  assert.deepEqual(ver.Condition, { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['segidx'] } });
  assert.deepEqual(statementsOf(archiveId).filter((st) => refersTo(st.Resource, segmentsId)).flatMap((st) => st.Action).sort(),
    ['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject'], 'segments: compaction');
});

test('audit retention follows the stack option; bad values are refused', () => {
  const s = new CloudconsStack(new App({ outdir: fs.mkdtempSync(path.join(outdir, 'r-')) }), 'R', { auditRetentionDays: 7, logRetentionDays: 90, segmentsPrefix: 'site1/' });
  const t = Template.fromStack(s);
  t.hasResourceProperties('AWS::S3::Bucket', { ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } } } });
  t.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 90 }, 3);
  // The prefix narrows object access (listing stays bucket-wide: see the stack's comment on 404s).
  const objects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [s.getLogicalId(s.segments.node.defaultChild as CfnElement), 'Arn'] }, '/site1/*']] };
  const objectStatements = Object.values(t.findResources('AWS::IAM::Policy')).flatMap((p) => arr(p.Properties.PolicyDocument.Statement) as any[])
    .filter((st) => arr(st.Action).some((a) => /^s3:(Get|Put|Delete)Object$/.test(a as string)) && refersTo(st.Resource, s.getLogicalId(s.segments.node.defaultChild as CfnElement)));
  assert.equal(objectStatements.length, 3, 'one segments-object statement per function (ws, http, archive)');
  for (const st of objectStatements) assert.deepEqual(st.Resource, objects);
  t.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ CLOUDCONS_SEGMENTS_PREFIX: 'site1/' }) } });
  assert.throws(() => new CloudconsStack(new App({ outdir }), 'Bad1', { auditRetentionDays: 0 }), /auditRetentionDays/);
  assert.throws(() => new CloudconsStack(new App({ outdir }), 'Bad2', { logRetentionDays: 31 }), /logRetentionDays/);
});

test('segments bucket with segmentsTransitionDays: merged objects over 128 KiB only, to Glacier Instant Retrieval, not before day 2', () => {
  const s = new CloudconsStack(new App({ outdir: fs.mkdtempSync(path.join(outdir, 't-')) }), 'T', { segmentsTransitionDays: 30, segmentsPrefix: 'site1/' });
  const rules = arr(Template.fromStack(s).toJSON().Resources[s.getLogicalId(s.segments.node.defaultChild as CfnElement)].Properties.LifecycleConfiguration.Rules) as any[];
  const t = rules.find((r) => r.Transitions);
  assert.deepEqual(t.Transitions, [{ StorageClass: 'GLACIER_IR', TransitionInDays: 30 }]);
  assert.equal(t.ObjectSizeGreaterThan, 131072);
  assert.equal(t.Prefix, 'site1/');
  for (const bad of [1, 0, 2.5]) assert.throws(() => new CloudconsStack(new App({ outdir }), `B${String(bad).replace('.', '')}`, { segmentsTransitionDays: bad }), /segmentsTransitionDays must be .* at least 2/);
});

test('segments bucket: by default no lifecycle transition to any storage class (small objects never go to an archive tier)', () => {
  const p = resources[segmentsId]!.Properties;
  for (const rule of arr(p.LifecycleConfiguration?.Rules) as Record<string, unknown>[]) {
    for (const k of ['Transitions', 'Transition', 'NoncurrentVersionTransitions', 'NoncurrentVersionTransition']) assert.equal(rule[k], undefined, `rule ${rule.Id} has ${k}`);
  }
  assert.equal(p.IntelligentTieringConfigurations, undefined);
  assert.equal(p.CorsConfiguration, undefined, 'relays PUT from Node: no CORS');
});

// -------------------------------------------------------------------------------------- Lambdas

test('functions: nodejs22.x on arm64, the bundles\' handlers, configuration in the environment, logs retained 30 days', async () => {
  for (const [id, handler, dir] of [[wsId, 'index.handler', 'ws'], [httpId, 'index.streamingHandler', 'http']] as const) {
    const p = resources[id]!.Properties;
    assert.equal(p.Runtime, 'nodejs22.x');
    assert.deepEqual(p.Architectures, ['arm64']);
    assert.equal(p.Handler, handler);
    assert.ok(p.Timeout > 0 && p.MemorySize >= 128);
    const v = p.Environment.Variables;
    assert.deepEqual(v.CLOUDCONS_TABLE, { Ref: tableId });
    assert.deepEqual(v.CLOUDCONS_SEGMENTS_BUCKET, { Ref: segmentsId });
    assert.ok(refersTo(v.CLOUDCONS_CONNECTIONS_ENDPOINT, logicalId(stack.api)) && JSON.stringify(v.CLOUDCONS_CONNECTIONS_ENDPOINT).startsWith('{"Fn::Join":["",["https://'));
    // The bundle the asset comes from exports the handler named here (read, not run: see bundles.test.ts).
    const src = fs.readFileSync(path.join(ROOT, 'dist/lambda', dir, 'index.mjs'), 'utf8');
    assert.match(src, new RegExp(`export\\s*\\{[^}]*\\b${handler.split('.')[1]}\\b[^}]*\\}`), `dist/lambda/${dir}/index.mjs exports ${handler}`);
    const lg = p.LoggingConfig?.LogGroup?.Ref;
    assert.equal(resources[lg]?.Type, 'AWS::Logs::LogGroup');
    assert.equal(resources[lg]!.Properties.RetentionInDays, 30);
  }
});

test('WebSocket API: $connect, $disconnect and $default all go to the ws function; auto-deployed stage', () => {
  const routes = ofType('AWS::ApiGatewayV2::Route');
  assert.deepEqual(routes.map(([, r]) => r.Properties.RouteKey).sort(), ['$connect', '$default', '$disconnect']);
  for (const [, r] of routes) {
    const target = r.Properties.Target['Fn::Join'][1];
    assert.equal(target[0], 'integrations/');
    const integ = resources[target[1].Ref]!;
    assert.equal(integ.Type, 'AWS::ApiGatewayV2::Integration');
    assert.equal(integ.Properties.IntegrationType, 'AWS_PROXY');
    assert.ok(refersTo(integ.Properties.IntegrationUri, wsId), `${r.Properties.RouteKey} -> ws function`);
    assert.ok(!refersTo(integ.Properties.IntegrationUri, httpId));
    // API Gateway may invoke the function for this route.
    const perm = ofType('AWS::Lambda::Permission').find(([, p]) => p.Properties.Principal === 'apigateway.amazonaws.com' && JSON.stringify(p.Properties.SourceArn).includes(`/*${r.Properties.RouteKey}"`));
    assert.ok(perm && refersTo(perm[1].Properties.FunctionName, wsId), `invoke permission for ${r.Properties.RouteKey}`);
  }
  template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'WEBSOCKET' });
  template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { StageName: 'prod', AutoDeploy: true, ApiId: { Ref: logicalId(stack.api) },
    DefaultRouteSettings: { ThrottlingRateLimit: 2000, ThrottlingBurstLimit: 5000 } });
});

test('HTTP side: a function URL with response streaming on the http function, auth done by the app', () => {
  const [[, url], ...more] = ofType('AWS::Lambda::Url');
  assert.equal(more.length, 0);
  assert.equal(url!.Properties.InvokeMode, 'RESPONSE_STREAM');
  assert.equal(url!.Properties.AuthType, 'NONE');
  assert.ok(refersTo(url!.Properties.TargetFunctionArn, httpId));
});

// ------------------------------------------------------------------------------------------ IAM

/** The IAM actions the adapters' SDK commands need, read from their sources. */
function adapterActions(): { dynamo: Set<string>; s3Read: Set<string>; s3: Set<string>; connections: Set<string> } {
  const out = { dynamo: new Set<string>(), s3Read: new Set<string>(), s3: new Set<string>(), connections: new Set<string>() };
  const s3Map: Record<string, string> = { HeadObject: 's3:GetObject', GetObject: 's3:GetObject', ListObjectsV2: 's3:ListBucket', PutObject: 's3:PutObject', DeleteObject: 's3:DeleteObject' };
  const dir = path.join(ROOT, 'cloud/adapters/aws');
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/client-([a-z0-9]+)'/g)) {
      for (const name of m[1]!.split(',').map((s) => s.trim()).filter((s) => s.endsWith('Command'))) {
        if (!new RegExp(`new ${name}\\(`).test(src)) continue;
        const op = name.slice(0, -'Command'.length);
        if (m[2] === 'dynamodb') { if (op !== 'CreateTable') out.dynamo.add(`dynamodb:${op}`); } // CreateTable: tests and local set-ups only
        else if (m[2] === 's3') {
          assert.ok(s3Map[op], `an S3 operation this test does not know: ${op} (add its IAM action to the map and to the stack)`);
          out.s3.add(s3Map[op]!);
          if (['HeadObject', 'GetObject', 'ListObjectsV2'].includes(op)) out.s3Read.add(s3Map[op]!);
        } else if (m[2] === 'apigatewaymanagementapi') out.connections.add('execute-api:ManageConnections');
        else assert.fail(`an AWS client this test does not know: ${m[2]}`);
      }
    }
  }
  return out;
}

function statementsOf(fnId: string): { Effect: string; Action: string[]; Resource: unknown[]; Condition?: unknown }[] {
  const roleId = resources[fnId]!.Properties.Role['Fn::GetAtt'][0];
  const role = resources[roleId]!;
  assert.equal(role.Properties.ManagedPolicyArns, undefined, 'no managed policies (AWSLambdaBasicExecutionRole is on Resource "*")');
  assert.equal(role.Properties.Policies, undefined);
  return ofType('AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
    .flatMap(([, p]) => arr(p.Properties.PolicyDocument.Statement)).map((s: any) => ({ ...s, Action: arr(s.Action), Resource: arr(s.Resource) }));
}

const granted = (fnId: string, action: string) => statementsOf(fnId).filter((s) => s.Effect === 'Allow' && s.Action.includes(action));

test('IAM: each function may do what the adapters send, on the table, the segments bucket and this API\'s @connections only', () => {
  const need = adapterActions();
  assert.ok(need.dynamo.size >= 5 && need.s3.size >= 4 && need.connections.size === 1, `adapters read: ${JSON.stringify({ ...need, dynamo: [...need.dynamo], s3: [...need.s3] })}`);
  const apiId = logicalId(stack.api);
  for (const [fnId, s3] of [[wsId, need.s3Read], [httpId, need.s3]] as const) {
    for (const a of need.dynamo) {
      const st = granted(fnId, a);
      assert.equal(st.length, 1, `${fnId}: ${a}`);
      assert.deepEqual(st[0]!.Resource.map((r) => JSON.stringify(r)).sort(), [
        JSON.stringify({ 'Fn::GetAtt': [tableId, 'Arn'] }),
        JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/*']] }),
      ].sort());
    }
    for (const a of s3) {
      const st = granted(fnId, a).filter((x) => !refersTo(x.Resource, auditId));
      assert.equal(st.length, 1, `${fnId}: ${a}`);
      assert.equal(st[0]!.Condition, undefined, `${fnId}: ${a} unconditional (an s3:prefix condition on ListBucket turns 404s into 403s)`);
      const want = a === 's3:ListBucket' ? { 'Fn::GetAtt': [segmentsId, 'Arn'] } : { 'Fn::Join': ['', [{ 'Fn::GetAtt': [segmentsId, 'Arn'] }, '/*']] };
      assert.deepEqual(st[0]!.Resource, [want], `${fnId}: ${a} on the segments bucket`);
    }
    const mc = granted(fnId, 'execute-api:ManageConnections');
    assert.equal(mc.length, 1);
    const arn = JSON.stringify(mc[0]!.Resource);
    assert.ok(arn.includes(`{"Ref":"${apiId}"}`) && arn.includes('"/prod/*/@connections/*"'), `ManageConnections on this API's stage only: ${arn}`);
  }
  // Least privilege: the ws function presigns nothing and writes no objects.
  for (const a of ['s3:PutObject', 's3:DeleteObject']) assert.equal(granted(wsId, a).length, 0, `ws function has no ${a}`);
  // Logs: each function writes its own log group only.
  for (const fnId of [wsId, httpId, archiveId]) {
    const st = granted(fnId, 'logs:PutLogEvents');
    assert.deepEqual(st.map((s) => s.Resource), [[{ 'Fn::GetAtt': [resources[fnId]!.Properties.LoggingConfig.LogGroup.Ref, 'Arn'] }]]);
  }
});

test('IAM: no Allow with Action "*" or Resource "*" anywhere; the "*" principals are a Deny and the public function URL', () => {
  const wild = (a: unknown) => a === '*' || (typeof a === 'string' && /^[a-z0-9-]+:\*$/.test(a));
  let allows = 0;
  for (const [id, r] of Object.entries(resources)) {
    const docs = r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::S3::BucketPolicy' ? [r.Properties.PolicyDocument]
      : r.Type === 'AWS::IAM::Role' ? [r.Properties.AssumeRolePolicyDocument, ...arr(r.Properties.Policies).map((p: any) => p.PolicyDocument)] : [];
    for (const s of docs.flatMap((d) => arr(d?.Statement)) as any[]) {
      if (s.Effect !== 'Allow') continue;
      allows++;
      for (const a of arr(s.Action)) assert.ok(!wild(a), `${id}: Allow of ${a}`);
      for (const res of arr(s.Resource)) assert.notEqual(res, '*', `${id}: Allow on Resource "*" (${arr(s.Action).join(', ')})`);
      if (r.Type === 'AWS::IAM::Role') assert.deepEqual(s.Principal, { Service: 'lambda.amazonaws.com' });
      else if (r.Type === 'AWS::S3::BucketPolicy') {
        // The one Allow in a bucket policy: CloudFront reading the viewer's files (origin access
        // control), for this distribution only.
        assert.ok(refersTo(r.Properties.Bucket, viewerId), `${id}: only the viewer bucket lets anyone else read`);
        assert.deepEqual([s.Principal, s.Action], [{ Service: 'cloudfront.amazonaws.com' }, 's3:GetObject'], id);
        assert.ok(refersTo(s.Condition?.StringEquals?.['AWS:SourceArn'], distributionId), `${id}: limited to the viewer distribution`);
      } else assert.equal(s.Principal, undefined, `${id}: identity policies name no principal`);
    }
    // Otherwise the bucket policies' Principal "*" with s3:* is the SSL-only Deny (a Deny can only restrict).
    if (r.Type === 'AWS::S3::BucketPolicy') for (const s of arr(r.Properties.PolicyDocument.Statement) as any[]) assert.ok(s.Effect === 'Deny' || s.Principal?.Service === 'cloudfront.amazonaws.com', id);
  }
  assert.ok(allows >= 10, `statements were checked (${allows})`);
  // Lambda resource policies: API Gateway (a service principal, per route) and Principal "*" only
  // where AWS requires it: a function URL with auth NONE is public by definition (the app checks
  // bearer tokens), and AWS wants both InvokeFunctionUrl (auth type NONE) and InvokeFunction
  // (only via the function URL) for it.
  for (const [id, p] of ofType('AWS::Lambda::Permission')) {
    const q = p.Properties;
    if (q.Principal === 'apigateway.amazonaws.com') { assert.ok(refersTo(q.FunctionName, wsId) && q.SourceArn, id); continue; }
    if (q.Principal === 'events.amazonaws.com') { assert.ok(refersTo(q.FunctionName, archiveId) && q.SourceArn, id); continue; }
    assert.equal(q.Principal, '*', id);
    assert.ok(refersTo(q.FunctionName, httpId), `${id}: only the http function is public`);
    assert.ok((q.Action === 'lambda:InvokeFunctionUrl' && q.FunctionUrlAuthType === 'NONE') || (q.Action === 'lambda:InvokeFunction' && q.InvokedViaFunctionUrl === true), `${id}: ${q.Action} limited to the function URL`);
  }
});

// -------------------------------------------------------------------------------------- outputs

test('outputs: wss:// URL, HTTP URL, bucket names, and a relay command line with flags the CLI has', () => {
  const outs = template.toJSON().Outputs as Record<string, { Value: any }>;
  const stageUrl = JSON.stringify(outs.WebSocketUrl!.Value);
  assert.ok(stageUrl.startsWith('{"Fn::Join":["",["wss://",{"Ref":"') && stageUrl.endsWith('/prod"]]}'), stageUrl);
  assert.deepEqual(outs.HttpUrl!.Value, { 'Fn::GetAtt': [ofType('AWS::Lambda::Url')[0]![0], 'FunctionUrl'] });
  assert.deepEqual(outs.SegmentsBucketName!.Value, { Ref: segmentsId });
  assert.deepEqual(outs.AuditBucketName!.Value, { Ref: auditId });
  assert.deepEqual(outs.TableName!.Value, { Ref: tableId });
  const parts = outs.RelayCommand!.Value['Fn::Join'][1] as unknown[];
  const text = parts.map((p) => (typeof p === 'string' ? p : '<x>')).join('');
  assert.match(text, /^cloudcons relay --config relay\.yaml --cloud <x> --ws-url wss:\/\/<x>.*\/prod --segment-ms 300000 --heartbeat-ms 240000 --token-file \/etc\/cloudcons\/relay-token$/);
  assert.ok(refersTo(parts, ofType('AWS::Lambda::Url')[0]![0]), 'the command carries the HTTP URL');
  const help = cli(['relay', '--help']);
  assert.equal(help.code, 0, help.stderr);
  for (const flag of text.match(/--[a-z-]+/g)!) assert.ok(help.stdout.toString().includes(flag), `cloudcons relay has ${flag}`);
});

// ----------------------------------------------------------------------------------- web viewer

test('web viewer: private encrypted TLS-only bucket behind CloudFront (OAC), /v1/* to the API uncached, security headers, config.json names the WebSocket', () => {
  const bucket = resources[viewerId]!.Properties;
  assert.deepEqual(bucket.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
  assert.equal(bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
  const policy = ofType('AWS::S3::BucketPolicy').find(([, p]) => refersTo(p.Properties.Bucket, viewerId))![1];
  assert.ok(arr(policy.Properties.PolicyDocument.Statement).some((s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');

  const dist = resources[distributionId]!.Properties.DistributionConfig;
  assert.equal(dist.DefaultRootObject, 'index.html');
  assert.equal(dist.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
  assert.ok(arr(dist.Origins).some((o: any) => o.OriginAccessControlId), 'the bucket is read through origin access control');
  const api = arr(dist.CacheBehaviors).find((b: any) => b.PathPattern === '/v1/*') as any;
  assert.equal(api.ViewerProtocolPolicy, 'https-only');
  assert.equal(api.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', 'CachingDisabled');
  assert.equal(api.OriginRequestPolicyId, 'b689b0a8-53d0-40ab-baf2-68738e2966ac', 'AllViewerExceptHostHeader: Authorization reaches the function');
  assert.deepEqual(api.AllowedMethods.sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
  const apiOrigin = arr(dist.Origins).find((o: any) => o.Id === api.TargetOriginId) as any;
  assert.ok(refersTo(apiOrigin.DomainName, ofType('AWS::Lambda::Url')[0]![0]), '/v1/* goes to the http function URL');

  const [[, hp]] = ofType('AWS::CloudFront::ResponseHeadersPolicy');
  const sec = hp!.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
  const csp = JSON.stringify(sec.ContentSecurityPolicy.ContentSecurityPolicy);
  for (const part of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", 'connect-src', 'wss://', '.execute-api.']) assert.ok(csp.includes(part), `CSP has ${part}: ${csp}`);
  assert.equal(sec.FrameOptions.FrameOption, 'DENY');
  assert.equal(sec.ReferrerPolicy.ReferrerPolicy, 'no-referrer');

  const [[, deploy]] = ofType('Custom::CDKBucketDeployment');
  assert.ok(refersTo(deploy!.Properties.DestinationBucketName, viewerId));
  assert.ok(JSON.stringify(deploy!.Properties).includes('no-cache'), 'served no-cache: a deploy shows at once');
  // config.json (the second source) is filled in at deploy time with the WebSocket API's URL.
  assert.ok(refersTo(deploy!.Properties.SourceMarkers[1], logicalId(stack.api)), 'config.json carries the WebSocket URL');
  const outs = template.toJSON().Outputs as Record<string, { Value: any }>;
  assert.ok(refersTo(outs.ViewerUrl!.Value, distributionId));
});

test('single sign-on: the oidc prop reaches the ws and http functions\' environment and the viewer\'s CSP allows the token endpoint only', () => {
  const s = new CloudconsStack(new App({ outdir: fs.mkdtempSync(path.join(outdir, 'o-')) }), 'O', {
    oidc: { issuer: 'https://idp.example/realms/ops', audience: 'cloudcons', adminGroups: ['ops-admins', 'root'], tokenEndpoint: 'https://idp.example/realms/ops/protocol/openid-connect/token' },
  });
  const r = Template.fromStack(s).toJSON().Resources as Record<string, Resource>;
  const vars = (f: IConstruct) => r[s.getLogicalId(f.node.defaultChild as CfnElement)]!.Properties.Environment.Variables;
  for (const f of [s.wsFunction, s.httpFunction]) {
    assert.equal(vars(f).CLOUDCONS_OIDC_ISSUER, 'https://idp.example/realms/ops');
    assert.equal(vars(f).CLOUDCONS_OIDC_AUDIENCE, 'cloudcons');
    assert.equal(vars(f).CLOUDCONS_OIDC_ADMIN_GROUPS, 'ops-admins,root');
    assert.equal(vars(f).CLOUDCONS_OIDC_USER_CLAIM, undefined, 'defaults are the code\'s');
  }
  assert.equal(vars(s.archiveFunction).CLOUDCONS_OIDC_ISSUER, undefined);
  assert.equal(resources[wsId]!.Properties.Environment.Variables.CLOUDCONS_OIDC_ISSUER, undefined, 'none by default');
  const csp = JSON.stringify(Object.values(r).find((x) => x.Type === 'AWS::CloudFront::ResponseHeadersPolicy')!.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy);
  assert.ok(csp.includes(' https://idp.example/realms/ops/protocol/openid-connect/token; frame-ancestors'), csp);
  assert.throws(() => new CloudconsStack(new App({ outdir }), 'O2', { oidc: { issuer: 'https://idp.example', audience: '' } }), /issuer and audience go together/);
});
