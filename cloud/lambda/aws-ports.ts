// The core's ports on AWS: DynamoDB state (one table, adapters/aws/dynamo-table.ts) and S3
// segments; given the audit bucket, audit listings also read the records archived there
// (adapters/aws/s3-audit-archive.ts). The Lambda entry points and the tests assemble their cores
// from this.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoAuditStore } from '../adapters/aws/dynamo-audit-store.ts';
import { DynamoConsoleRegistry } from '../adapters/aws/dynamo-console-registry.ts';
import { DynamoRelayRegistry } from '../adapters/aws/dynamo-relay-registry.ts';
import { DynamoHotTail } from '../adapters/aws/dynamo-hot-tail.ts';
import { DynamoLockStore } from '../adapters/aws/dynamo-lock-store.ts';
import { DynamoSessionStore } from '../adapters/aws/dynamo-session-store.ts';
import { DynamoTokenStore } from '../adapters/aws/dynamo-token-store.ts';
import { DynamoAccessStore } from '../adapters/aws/dynamo-access-store.ts';
import { DynamoKeyStore } from '../adapters/aws/dynamo-key-store.ts';
import { ArchivedAuditStore } from '../adapters/aws/s3-audit-archive.ts';
import { DynamoConnections } from '../adapters/aws/apigw-connections.ts';
import { S3SegmentStore } from '../adapters/aws/s3-segment-store.ts';
import type { CloudPorts, ConnectionSender } from '../core/ports.ts';

export function awsPorts(o: { db: DynamoDBClient; table: string; s3: S3Client; bucket: string; prefix?: string; auditBucket?: string; sender: ConnectionSender }): CloudPorts {
  const { db, table } = o;
  const audit = new DynamoAuditStore(db, table);
  return {
    locks: new DynamoLockStore({ client: db, table }),
    sessions: new DynamoSessionStore(db, table),
    consoles: new DynamoConsoleRegistry(db, table),
    relays: new DynamoRelayRegistry(db, table),
    segments: new S3SegmentStore({ client: o.s3, bucket: o.bucket, prefix: o.prefix }),
    hot: new DynamoHotTail(db, table),
    audit: o.auditBucket ? new ArchivedAuditStore(audit, new S3SegmentStore({ client: o.s3, bucket: o.auditBucket })) : audit,
    tokens: new DynamoTokenStore(db, table),
    access: new DynamoAccessStore(db, table),
    keys: new DynamoKeyStore(db, table),
    sender: o.sender,
    // The HTTP function closes a revoked token's connections through it (the ws one writes them).
    connections: new DynamoConnections(db, table),
    clock: { now: () => Date.now() },
  };
}
