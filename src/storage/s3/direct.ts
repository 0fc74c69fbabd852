import { TusError } from '../../model/errors.ts';
import type { Upload } from '../../model/upload.ts';
import type { DirectPart, DirectUploads } from '../direct.ts';
import type { S3Client } from './client.ts';
import { S3Error } from './errors.ts';
import { postPolicyFields } from './post-policy.ts';

interface S3DirectOptions {
  client: S3Client;
  prefix: string;
  /** The headers the finished object is stored with (as for tus uploads). */
  objectHeaders(upload: Upload): Record<string, string>;
  /** Writes the upload's `<id>.info` (with no multipart upload: ''), marked direct, so that a lost record can be rebuilt. */
  writeInfo(upload: Upload, uploadId: string): Promise<void>;
  /** The store's completion (no overwrite of another object, the length checked, a lost answer's retry). */
  complete(key: string, uploadId: string, parts: DirectPart[], length: number): Promise<void>;
}

/** S3's refusals of a completion that are the client's doing (the parts it named), answered 400. */
const CLIENT_PART_ERRORS = new Set(['EntityTooSmall', 'InvalidPart', 'InvalidPartOrder']);

/**
 * Direct uploads as S3 multipart uploads whose parts the client PUTs itself, with URLs presigned
 * in their query: the multipart upload is at the same key, and described by the same `.info`
 * object, as a tus upload's, so reading, removing, expiring and recovering work the same.
 */
export class S3DirectUploads implements DirectUploads {
  constructor(readonly options: S3DirectOptions) {}

  objectKey(upload: Pick<Upload, 'id' | 'key'>): string {
    return `${this.options.prefix}${upload.key ?? upload.id}`;
  }

  async create(upload: Upload): Promise<Record<string, string>> {
    // No checksum algorithm declared (S3_CHECKSUM): the browser's parts carry none.
    const uploadId = await this.options.client.createMultipartUpload(this.objectKey(upload), this.options.objectHeaders(upload), { checksum: false });
    await this.options.writeInfo(upload, uploadId);
    return { uploadId, partSize: '0', direct: '1' };
  }

  async createSingle(upload: Upload): Promise<Record<string, string>> {
    await this.options.writeInfo(upload, '');
    return { uploadId: '', partSize: '0', direct: '1' };
  }

  async signPost(upload: Upload, o: { type: string; maxSize?: number; expiresSeconds: number; now?: Date }): Promise<{ url: string; fields: Record<string, string> }> {
    const client = this.options.client;
    // The headers a tus upload's object gets (type, disposition, cache, class, metadata), as
    // exact-match fields: S3 stores them, and refuses a POST that changes one.
    const headers = { 'Content-Type': o.type, ...this.options.objectHeaders(upload) };
    const fields = await postPolicyFields(client.config, { key: this.objectKey(upload), headers, maxSize: o.maxSize, expiresSeconds: o.expiresSeconds, now: o.now });
    return { url: client.bucketUrl(), fields };
  }

  async storedSize(upload: Upload): Promise<number | undefined> {
    return (await this.options.client.headObject(this.objectKey(upload)))?.size;
  }

  signPart(upload: Upload, partNumber: number, expiresSeconds: number): Promise<string> {
    return this.options.client.presign('PUT', this.objectKey(upload), { partNumber, uploadId: uploadIdOf(upload) }, expiresSeconds);
  }

  async listParts(upload: Upload): Promise<DirectPart[] | undefined> {
    try {
      return await this.options.client.listParts(this.objectKey(upload), uploadIdOf(upload));
    } catch (error) {
      // radosgw answers NoSuchKey for an upload that was completed or aborted, S3 NoSuchUpload.
      if (error instanceof S3Error && error.notFound) return undefined;
      throw error;
    }
  }

  async complete(upload: Upload, parts: DirectPart[], length: number): Promise<void> {
    try {
      await this.options.complete(this.objectKey(upload), uploadIdOf(upload), parts, length);
    } catch (error) {
      if (error instanceof S3Error && CLIENT_PART_ERRORS.has(error.code)) throw new TusError('INVALID_DIRECT_REQUEST', `S3 refused the parts (${error.code})`);
      throw error;
    }
  }
}

function uploadIdOf(upload: Upload): string {
  const uploadId = upload.store?.uploadId;
  if (!uploadId) throw new TusError('NOT_FOUND', 'it is sent in one form POST, not in parts');
  return uploadId;
}
