// `npx cdk synth` as a user runs it (the real CDK CLI, cdk.json, infra/app.ts through tsx), the way
// CI can: no AWS credentials, no network. The CLI's own calls home are switched off
// (CDK_DISABLE_CLI_TELEMETRY, CDK_DISABLE_VERSION_CHECK, --no-notices; AWS_EC2_METADATA_DISABLED
// so the SDK does not probe the instance metadata service for a default account; npm's update
// check off for npx), AWS_* variables are removed and HOME is an empty directory (no ~/.aws
// profiles or credentials, no ~/.cdk cache). The stack is environment-agnostic, so nothing needs
// an account. (A test cannot prove "no network" here: this machine has none, and the CLI checks
// connectivity before it would use a proxy, so a proxy listener sees nothing either way.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from './stack.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-synth-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('npx cdk synth: offline, without credentials, context options applied, template and Lambda assets written', { timeout: 120_000 }, async () => {
  const home = path.join(tmp, 'home');
  fs.mkdirSync(home);
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(AWS_|CDK_)/.test(k)));
  Object.assign(env, {
    HOME: home, CDK_DISABLE_CLI_TELEMETRY: '1', CDK_DISABLE_VERSION_CHECK: '1', AWS_EC2_METADATA_DISABLED: 'true', npm_config_update_notifier: 'false',
  });
  const out = path.join(tmp, 'cdk.out');
  const started = Date.now();
  const child = spawn('npx', ['cdk', 'synth', '--no-notices', '--no-version-reporting', '--quiet', '-o', out, '-c', 'stackName=CcSynthTest', '-c', 'auditRetentionDays=7'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  // A CLI waiting on the network would hang here: kill it (by its pid) well before the test's timeout.
  const kill = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((r) => child.once('close', r));
  clearTimeout(kill);
  const ms = Date.now() - started;
  assert.equal(code, 0, `cdk synth exited ${code}:\n${output}`);
  console.error(`# cdk synth took ${ms} ms`);

  const file = path.join(out, 'CcSynthTest.template.json');
  assert.ok(fs.existsSync(file), `no template in ${out}: ${fs.readdirSync(out).join(', ')}\n${output}`);
  const tpl = JSON.parse(fs.readFileSync(file, 'utf8')) as { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
  const types = Object.values(tpl.Resources).map((r) => r.Type);
  for (const t of ['AWS::ApiGatewayV2::Api', 'AWS::ApiGatewayV2::Stage', 'AWS::Lambda::Url', 'AWS::DynamoDB::Table', 'AWS::S3::Bucket']) assert.ok(types.includes(t), `template has ${t}`);
  // ws, http, archive, and CDK's BucketDeployment handler that copies the web viewer into its bucket.
  assert.equal(types.filter((t) => t === 'AWS::Lambda::Function').length, 4);
  assert.ok(types.includes('AWS::CloudFront::Distribution') && types.includes('Custom::CDKBucketDeployment'), 'the web viewer is hosted');
  const audit = Object.values(tpl.Resources).find((r) => r.Properties?.ObjectLockEnabled);
  assert.deepEqual(audit?.Properties.ObjectLockConfiguration.Rule.DefaultRetention, { Mode: 'COMPLIANCE', Days: 7 }, '-c auditRetentionDays=7 reached the stack');

  // Each function's code asset is staged: the bundle, as built.
  const assets = JSON.parse(fs.readFileSync(path.join(out, 'CcSynthTest.assets.json'), 'utf8')) as { files: Record<string, { source: { path: string; packaging: string } }> };
  const staged = Object.values(assets.files).filter((f) => f.source.packaging === 'zip').map((f) => path.join(out, f.source.path));
  const bundles = ['ws', 'http', 'archive'].map((n) => fs.readFileSync(path.join(ROOT, 'dist/lambda', n, 'index.mjs')));
  const ours = staged.filter((dir) => fs.existsSync(path.join(dir, 'index.mjs')) && bundles.some((b) => b.equals(fs.readFileSync(path.join(dir, 'index.mjs')))));
  assert.equal(ours.length, 3, 'the three Lambda bundles (ws, http, archive), as built, are staged');
  const viewer = staged.find((dir) => fs.existsSync(path.join(dir, 'assets', 'app.js')));
  assert.ok(viewer, `the web viewer (dist/web) is staged: ${staged.join(', ')}`);
  assert.ok(fs.readFileSync(path.join(viewer, 'index.html')).equals(fs.readFileSync(path.join(ROOT, 'dist/web/index.html'))));
  assert.ok(!fs.existsSync(path.join(ROOT, 'cdk.context.json')), 'no context lookups (they would need credentials)');
});
