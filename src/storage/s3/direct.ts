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
}

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
    const uploadId = await this.options.client.createMultipartUpload(this.objectKey(upload), this.options.objectHeaders(upload));
    await this.options.writeInfo(upload, uploadId);
    return { uploadId, partSize: '0', direct: '1' };
  }

  async createSingle(upload: Upload): Promise<Record<string, string>> {
    await this.options.writeInfo(upload, '');
    return { uploadId: '', partSize: '0', direct: '1' };
  }

  async signPost(upload: Upload, o: { type: string; maxSize?: number; expiresSeconds: number }): Promise<{ url: string; fields: Record<string, string> }> {
    const client = this.options.client;
    const fields = await postPolicyFields(client.config, { key: this.objectKey(upload), ...o });
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

  complete(upload: Upload, parts: Pick<DirectPart, 'partNumber' | 'etag'>[]): Promise<void> {
    return this.options.client.completeMultipartUpload(this.objectKey(upload), uploadIdOf(upload), parts);
  }
}

function uploadIdOf(upload: Upload): string {
  const uploadId = upload.store?.uploadId;
  if (!uploadId) throw new Error(`upload ${upload.id} has no S3 multipart upload`);
  return uploadId;
}
