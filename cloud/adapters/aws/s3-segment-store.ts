// SegmentStore on S3 (@aws-sdk/client-s3): the AWS twin of adapters/fs/segment-store.ts, held to
// the same contract (test/contracts/segment-store.contract.ts, run against s3rver).
//
// - put is create-only: PutObject with `If-None-Match: *` (S3 honours conditional writes since
//   2024-08: 412 PreconditionFailed if the key exists, 409 ConditionalRequestConflict if another
//   create of it is in flight; both mean "exists"). A HeadObject first answers the common case (a
//   relay re-uploading a segment after a lost reply) without sending the body again, and makes
//   stores that ignore If-None-Match on PUT (s3rver) create-only for callers that do not race.
// - get with a range is one ranged GetObject (`bytes=a-b`), so replay seeks into a segment by its
//   footer index without downloading all of it. A range starting at or past the end is empty, as
//   in the fs store.
// - list/children page through ListObjectsV2 (1000 keys a page); S3 returns keys in UTF-8 byte
//   order, which for the ASCII keys of protocol/SEGMENT.md is the fs store's order too.
// - Keys may live under a `prefix` (one bucket shared by several deployments or tests).
//
// The client comes from the caller: region, credentials and endpoint follow the AWS SDK's usual
// chain (AWS_REGION, AWS_ENDPOINT_URL for LocalStack or s3rver, roles on Lambda).
import {
  DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NotFound } from '../../../protocol/errors.ts';
import type { SegmentStore } from '../../core/ports.ts';

export interface S3SegmentStoreOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key (e.g. `prod/`). Default none. */
  prefix?: string;
}

/** An S3 client for the segment store. Checksums only when S3 requires them: the SDK's default
 *  (a CRC32 trailer on every upload, aws-chunked) is not understood by s3rver or older
 *  S3-compatible stores, and segments carry their own sha256 which the cloud verifies. */
export function segmentS3Client(config: S3ClientConfig = {}): S3Client {
  return new S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', ...config });
}

interface AwsError { name?: string; $metadata?: { httpStatusCode?: number } }
const status = (e: unknown) => (e as AwsError).$metadata?.httpStatusCode;
const named = (e: unknown, ...names: string[]) => names.includes((e as AwsError).name ?? '');

export class S3SegmentStore implements SegmentStore {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(opts: S3SegmentStoreOptions) {
    this.s3 = opts.client;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
  }

  async put(key: string, body: Buffer): Promise<'created' | 'exists'> {
    const Key = this.prefix + key;
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return 'exists';
    } catch (e) {
      if (status(e) !== 404 && !named(e, 'NotFound', 'NoSuchKey')) throw e;
    }
    try {
      await this.s3.send(new PutObjectCommand({
        Bucket: this.bucket, Key, Body: body, IfNoneMatch: '*', ContentType: 'application/octet-stream', ContentLength: body.length,
        // S3 checks it; an Object Lock bucket (the audit archive) refuses PUTs without one.
        ContentMD5: createHash('md5').update(body).digest('base64'),
      }));
      return 'created';
    } catch (e) {
      if (status(e) === 412 || status(e) === 409 || named(e, 'PreconditionFailed', 'ConditionalRequestConflict')) return 'exists';
      throw e;
    }
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Buffer> {
    if (range && range.end <= range.start) return Buffer.alloc(0);
    try {
      const r = await this.s3.send(new GetObjectCommand({
        Bucket: this.bucket, Key: this.prefix + key, Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined,
      }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (e) {
      if (named(e, 'NoSuchKey', 'NotFound') || status(e) === 404) throw new NotFound(`no segment ${key}`);
      // A range starting past the end: S3 answers 416 InvalidRange (only if the object exists).
      if (status(e) === 416 || named(e, 'InvalidRange')) return Buffer.alloc(0);
      throw e;
    }
  }

  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const r = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) out.push({ key: o.Key!.slice(this.prefix.length), size: o.Size ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async children(prefix: string): Promise<string[]> {
    const p = this.prefix + prefix;
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const r = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: p, Delimiter: '/', ContinuationToken: token }));
      for (const c of r.CommonPrefixes ?? []) names.add(c.Prefix!.slice(p.length).replace(/\/$/, ''));
      for (const o of r.Contents ?? []) names.add(o.Key!.slice(p.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return [...names].filter(Boolean).sort();
  }

  /** A presigned PUT of `key` for a relay, which holds no AWS credentials: valid for `expiresInS`
   *  (default 900), for exactly `size` bytes, create-only (`If-None-Match: *`) and, given the
   *  body's sha256, for exactly that body (S3 checks `x-amz-checksum-sha256`). The caller must
   *  send `headers` as given: they are part of the signature. */
  async presignPut(key: string, opts: { size: number; sha256?: Buffer; expiresInS?: number }): Promise<{ url: string; headers: Record<string, string> }> {
    const headers: Record<string, string> = { 'if-none-match': '*', 'content-type': 'application/octet-stream', 'content-length': String(opts.size) };
    if (opts.sha256) headers['x-amz-checksum-sha256'] = opts.sha256.toString('base64');
    const url = await getSignedUrl(this.s3, new PutObjectCommand({
      Bucket: this.bucket, Key: this.prefix + key, IfNoneMatch: '*', ContentType: headers['content-type'], ContentLength: opts.size,
      ...(opts.sha256 ? { ChecksumSHA256: headers['x-amz-checksum-sha256'] } : {}),
    }), { expiresIn: opts.expiresInS ?? 900, signableHeaders: new Set(Object.keys(headers)), unhoistableHeaders: new Set(Object.keys(headers)) });
    return { url, headers };
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
  }
}
