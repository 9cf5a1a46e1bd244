// The WebSocket Lambda handler awaits the audit store's settle() before an invocation ends: the
// head's last move of an append (DynamoDB) runs after the input went out, and a frozen container
// must not be left with it. (The handler end to end: test/e2e/lambda.test.ts.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWsHandler } from './ws-handler.ts';
import type { DynamoConnections } from '../adapters/aws/apigw-connections.ts';
import { embeddedPorts } from '../server/embedded-ports.ts';
import { cleanup, tmpDir } from '../../test/helpers.ts';

after(cleanup);

test('an invocation ends only after the audit store settled', async () => {
  const closed: string[] = [];
  const { ports, close } = embeddedPorts(tmpDir('ws-handler'), { send: async () => true, close: async (c) => { closed.push(c); } });
  let release!: () => void;
  let settles = 0;
  ports.audit.settle = () => { settles++; return new Promise<void>((r) => { release = r; }); };
  const connections = { get: async () => undefined } as unknown as DynamoConnections;
  const handler = createWsHandler({ ports, connections, log: () => {} });
  let done = false;
  const run = handler({ requestContext: { routeKey: '$default', connectionId: 'c1' }, body: '{}' }).then((r) => { done = true; return r; });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual([closed, settles, done], [['c1'], 1, false], 'the work is done, the invocation waits for settle');
  release();
  assert.deepEqual(await run, { statusCode: 200 });
  close();
});
