// Just enough of the untyped test peers (s3rver, dynalite) for test/aws-peers.ts.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  export default class S3rver {
    constructor(opts: {
      port?: number; address?: string; silent?: boolean; directory: string; resetOnClose?: boolean;
      configureBuckets?: { name: string; configs?: string[] }[];
    });
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
declare module 'dynalite' {
  import type { Server } from 'node:http';
  export default function dynalite(opts?: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number; path?: string }): Server;
}
