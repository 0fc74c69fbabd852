import type { Upload } from '../../engine/types.ts';
import { contentHeaders } from '../../protocol/download.ts';
import type { ByteRange, DataStore, WriteOptions } from '../types.ts';
import type { Part, S3Client } from './client.ts';
import { S3Error } from './errors.ts';
import { partSizeFor, sendParts } from './parts.ts';

export interface S3StoreOptions {
  client: S3Client;
  /** Prepended to every key: the finished object is `<prefix><id>`. */
  prefix: string;
  /** Preferred part size; grown per upload when its length needs more than 10,000 parts. */
  partSize: number;
  /** Parts uploaded at once per PATCH. */
  parallelParts: number;
}

/** What S3 keeps about an upload so that it can be rebuilt without the state store. */
interface Info {
  length?: number;
  metadata: Upload['metadata'];
  createdAt: number;
  uploadId: string;
  partSize: number;
}

/**
 * Uploads as S3 multipart uploads. Full parts go straight to S3 as the body streams; bytes that do
 * not fill a part when a PATCH ends wait in an incomplete-part object (`<key>.part`, tagged with the
 * part number it will become) and are joined to the front of the next PATCH. So every part but the
 * last has the same size, and the offset can be proven from S3 alone: ListParts, the incomplete part
 * and the info object (`<key>.info`).
 */
export class S3DataStore implements DataStore {
  readonly #s3: S3Client;

  constructor(readonly options: S3StoreOptions) {
    this.#s3 = options.client;
  }

  key(id: string): string {
    return `${this.options.prefix}${id}`;
  }

  #fields(upload: Upload): { uploadId: string; partSize: number } {
    const uploadId = upload.store?.uploadId;
    const partSize = Number(upload.store?.partSize);
    if (!uploadId || !(partSize > 0)) throw new Error(`upload ${upload.id} has no S3 multipart upload`);
    return { uploadId, partSize };
  }

  /** Fails with a clear reason when the bucket is missing or the credentials are refused. */
  async check(): Promise<void> {
    try {
      await this.#s3.headBucket();
    } catch (error) {
      if (!(error instanceof S3Error)) throw error;
      const bucket = this.#s3.config.bucket;
      if (error.status === 404) throw new Error(`S3 bucket "${bucket}" does not exist`);
      if (error.status === 403) throw new Error(`S3 refused the credentials for bucket "${bucket}" (403)`);
      throw error;
    }
  }

  async create(upload: Upload): Promise<Record<string, string>> {
    const partSize = partSizeFor(upload.length, this.options.partSize);
    const key = this.key(upload.id);
    const headers = contentHeaders(upload.metadata);
    const uploadId = await this.#s3.createMultipartUpload(key, {
      'Content-Type': headers['Content-Type']!,
      'Content-Disposition': headers['Content-Disposition']!,
    });
    await this.#writeInfo(upload, uploadId, partSize);
    return { uploadId, partSize: String(partSize) };
  }

  async #writeInfo(upload: Upload, uploadId: string, partSize: number): Promise<void> {
    const info: Info = { length: upload.length, metadata: upload.metadata, createdAt: upload.createdAt, uploadId, partSize };
    await this.#s3.putObject(`${this.key(upload.id)}.info`, JSON.stringify(info), { 'Content-Type': 'application/json' });
  }

  async declareLength(upload: Upload): Promise<void> {
    const { uploadId, partSize } = this.#fields(upload);
    await this.#writeInfo(upload, uploadId, partSize);
  }

  async write(upload: Upload, body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<number> {
    const { uploadId, partSize } = this.#fields(upload);
    const key = this.key(upload.id);
    const firstPart = Math.floor(upload.offset / partSize) + 1;
    const carried = upload.offset % partSize;
    const carry = carried > 0 ? await this.#readIncompletePart(key, carried) : undefined;

    const result = await sendParts(body, {
      partSize,
      firstPart,
      carry,
      parallel: this.options.parallelParts,
      send: async (partNumber, bytes) => void (await this.#s3.uploadPart(key, uploadId, partNumber, bytes)),
    });
    await options.verify();

    // Only now do the new bytes count: the old incomplete part stays until it is replaced, so a
    // write that fails before this point leaves the upload exactly as it was.
    const offset = upload.offset + result.received;
    const last = upload.length !== undefined && offset === upload.length;
    if (result.tail.byteLength > 0 && last) {
      await this.#s3.uploadPart(key, uploadId, result.nextPart, result.tail);
    } else if (result.tail.byteLength > 0 && result.received > 0) {
      await this.#s3.putObject(`${key}.part`, result.tail, { 'x-amz-meta-part': String(result.nextPart) });
    } else if (carried > 0 && result.tail.byteLength === 0) {
      await this.#s3.deleteObjects([`${key}.part`]);
    }
    return offset;
  }

  async #readIncompletePart(key: string, size: number): Promise<Uint8Array> {
    const res = await this.#s3.getObject(`${key}.part`);
    const bytes = res ? new Uint8Array(await res.arrayBuffer()) : new Uint8Array();
    if (bytes.byteLength !== size) {
      throw new Error(`incomplete part of ${key} holds ${bytes.byteLength} bytes, expected ${size}`);
    }
    return bytes;
  }

  async finish(upload: Upload): Promise<void> {
    const { uploadId, partSize } = this.#fields(upload);
    const key = this.key(upload.id);
    const length = upload.length ?? upload.offset;
    if (length === 0) {
      await this.#s3.abortMultipartUpload(key, uploadId);
      const headers = contentHeaders(upload.metadata);
      await this.#s3.putObject(key, new Uint8Array(), { 'Content-Type': headers['Content-Type']!, 'Content-Disposition': headers['Content-Disposition']! });
      return;
    }
    const count = Math.ceil(length / partSize);
    // Parts past the last one can exist (a PATCH whose checksum failed after sending them): leave them out.
    const parts = (await this.#listParts(key, uploadId)).filter((p) => p.partNumber <= count);
    if (parts.length === count - 1) {
      // The final bytes are still in the incomplete part (a deferred length declared by an empty PATCH).
      const tail = await this.#readIncompletePart(key, length - (count - 1) * partSize);
      parts.push({ partNumber: count, etag: await this.#s3.uploadPart(key, uploadId, count, tail), size: tail.byteLength });
    }
    parts.forEach((part, i) => {
      const expected = i + 1 < count ? partSize : length - (count - 1) * partSize;
      if (part.partNumber !== i + 1 || part.size !== expected) {
        throw new Error(`part ${part.partNumber} of ${key} has ${part.size} bytes, expected part ${i + 1} of ${expected}`);
      }
    });
    if (parts.length !== count) throw new Error(`${key} has ${parts.length} parts, expected ${count}`);
    await this.#s3.completeMultipartUpload(key, uploadId, parts);
    await this.#s3.deleteObjects([`${key}.part`]);
  }

  /** ListParts, or nothing when a previous attempt already completed the upload. */
  async #listParts(key: string, uploadId: string): Promise<Part[]> {
    try {
      return await this.#s3.listParts(key, uploadId);
    } catch (error) {
      if (error instanceof S3Error && error.notFound && (await this.#s3.headObject(key))) return [];
      throw error;
    }
  }

  async read(upload: Upload, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#s3.getObject(this.key(upload.id), range && [range.start, range.end]);
    if (!res?.body) throw new Error(`object ${this.key(upload.id)} is missing`);
    return res.body;
  }

  async remove(upload: Upload): Promise<void> {
    const key = this.key(upload.id);
    if (upload.store?.uploadId) await this.#s3.abortMultipartUpload(key, upload.store.uploadId);
    await this.#s3.deleteObjects([key, `${key}.part`, `${key}.info`]);
  }

  /** Rebuilds an upload's record from S3 alone (the state store lost it). */
  async recover(id: string): Promise<Upload | undefined> {
    const key = this.key(id);
    const res = await this.#s3.getObject(`${key}.info`);
    if (!res) return undefined;
    const info = (await res.json()) as Info;
    const upload: Upload = {
      id,
      offset: 0,
      length: info.length,
      metadata: info.metadata,
      createdAt: info.createdAt,
      store: { uploadId: info.uploadId, partSize: String(info.partSize) },
    };
    const object = await this.#s3.headObject(key);
    if (object) return { ...upload, offset: object.size, length: object.size, finishedAt: upload.createdAt };

    let parts: Part[];
    try {
      parts = await this.#s3.listParts(key, info.uploadId);
    } catch (error) {
      if (error instanceof S3Error && error.notFound) return undefined; // aborted
      throw error;
    }
    let full = 0;
    while (parts[full]?.partNumber === full + 1 && parts[full]!.size === info.partSize) full++;
    upload.offset = full * info.partSize;
    const next = parts[full];
    if (next?.partNumber === full + 1 && info.length !== undefined && upload.offset + next.size === info.length) {
      upload.offset = info.length; // the short last part went in: finished, not yet completed
    } else {
      const tail = await this.#s3.headObject(`${key}.part`);
      if (tail && tail.headers.get('x-amz-meta-part') === String(full + 1)) upload.offset += tail.size;
    }
    return upload;
  }
}
