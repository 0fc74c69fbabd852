import type { Upload } from '../../model/upload.ts';
import { isUploadId } from '../../model/id.ts';
import { DIGEST_ALGORITHMS, type UploadDigest } from '../../model/digest.ts';
import type { Metrics } from '../../model/metrics.ts';
import type { ByteRange } from '../../model/upload.ts';
import type { DataStore, WriteOptions, WriteResult } from '../types.ts';
import type { Part, S3Client } from './client.ts';
import { S3Error } from './errors.ts';
import { planConcat, sendPlan } from './concat.ts';
import { heldViews, PartBuffers } from './buffers.ts';
import { partSizeFor, sendParts, type PartsResult } from './parts.ts';
import { planSegments, segmentPrefix, segmentStart } from './segments.ts';
import { TailCache, type Tail } from './tail-cache.ts';
import { freeChunk } from './bytes.ts';
import { TusError } from '../../model/errors.ts';
import { multipartEtag } from './integrity.ts';
import { objectSettingsHeaders } from './object-settings.ts';
import { S3DirectUploads } from './direct.ts';

export interface S3StoreOptions {
  client: S3Client;
  /** Prepended to every key: the finished object is `<prefix><id>`. */
  prefix: string;
  /** Preferred part size; grown per upload when its length needs more than 10,000 parts. */
  partSize: number;
  /** Parts uploaded at once per PATCH. */
  parallelParts: number;
  /**
   * Bytes of part buffers for all uploads together (default 128 MiB), taken in slabs as bytes
   * arrive: past it, a PATCH waits for memory, so memory does not grow with the number of uploads.
   */
  bufferMemory?: number;
  /** How long a PATCH waits for part memory (one wait) before it fails with 503 (default 30 s). */
  bufferWaitMs?: number;
  /**
   * At most this many bytes of tails kept between PATCHes (saves reading them back from S3). They
   * are part memory, within `bufferMemory`, and given back first when it runs short; default: no
   * cap of their own.
   */
  tailCacheBytes?: number;
  /**
   * Upload a part while its bytes arrive instead of after (see S3Client.uploadPartStream). Only
   * with a fetch that sends a streamed body with a fixed Content-Length (Bun's, node:http's).
   */
  streamParts?: boolean;
  /** Request bodies come from the runtime's HTTP server: free their chunks once copied (see sendParts). */
  releaseChunks?: boolean;
  /** Where the part memory in use and the waits for it are recorded (the client records its requests). */
  metrics?: Metrics;
  /**
   * The headers the finished object is stored with (Content-Type, Content-Disposition, …), from the
   * upload's metadata: what a download straight from the bucket is served with. Default: none.
   */
  objectHeaders?: (upload: Upload) => Record<string, string>;
  /**
   * Complete an upload even over an object that appeared at its key meanwhile (default false: the
   * completion fails with 409 KEY_TAKEN and the object stays).
   */
  overwrite?: boolean;
  /**
   * Downloads answered with a redirect to a presigned GetObject URL valid this long, so their bytes
   * go from S3 to the client without passing through the server (see `downloadUrl`).
   */
  downloadRedirect?: { expiresSeconds: number };
}

/**
 * What S3 keeps about an upload so that it can be rebuilt without the state store: whatever a
 * decision about it rests on — who may use it (`owner`), what it is (`concat`: a partial that may
 * be concatenated, a final that takes no PATCH), where its bytes are (`key`). Files written before
 * `owner` and `concat` existed lack them.
 */
interface Info {
  key?: string;
  length?: number;
  metadata: Upload['metadata'];
  createdAt: number;
  uploadId: string;
  partSize: number;
  owner?: string;
  concat?: Upload['concat'];
  /** The client sends the parts straight to S3 (see direct.ts). */
  direct?: true;
  /**
   * The whole-upload digest asked for (RFC 9530). A record rebuilt from here has it without its
   * running state, so the engine refuses to complete it unchecked rather than complete it.
   */
  digest?: Pick<UploadDigest, 'algorithm' | 'expected'>;
}

/** The record fields an info object restores, taken only when they have their proper types. */
function restored(info: Info): Pick<Upload, 'key' | 'owner' | 'concat' | 'digest'> {
  const fields: Pick<Upload, 'key' | 'owner' | 'concat' | 'digest'> = {};
  const digest: unknown = info.digest;
  if (isAskedDigest(digest)) fields.digest = digest.expected === undefined ? { algorithm: digest.algorithm } : { algorithm: digest.algorithm, expected: digest.expected };
  if (typeof info.key === 'string') fields.key = info.key;
  if (typeof info.owner === 'string') fields.owner = info.owner;
  const concat: unknown = info.concat;
  if (concat === 'partial') fields.concat = concat;
  else if (isFinalConcat(concat)) fields.concat = { final: [...concat.final] };
  return fields;
}

const isAskedDigest = (value: unknown): value is Pick<UploadDigest, 'algorithm' | 'expected'> =>
  typeof value === 'object' &&
  value !== null &&
  DIGEST_ALGORITHMS.includes((value as UploadDigest).algorithm) &&
  ['string', 'undefined'].includes(typeof (value as UploadDigest).expected);

/** What a write that finds the upload already complete in S3 ends with. */
const COMPLETED = { completed: true } as const;

/**
 * Where a write at an upload's offset goes: its multipart upload, the part its bytes start, and how
 * many bytes of that part earlier writes stored (carried in front of the body).
 */
interface WriteTarget {
  key: string;
  uploadId: string;
  partSize: number;
  firstPart: number;
  carried: number;
}

const isFinalConcat = (value: unknown): value is { final: string[] } => {
  const final: unknown = (value as { final?: unknown } | null)?.final;
  return Array.isArray(final) && final.length > 0 && final.every((id) => typeof id === 'string' && isUploadId(id));
};

/**
 * Uploads as S3 multipart uploads. Full parts go straight to S3 as the body streams. Bytes that do
 * not fill a part when a PATCH ends (the incomplete part) are stored as segment objects named by
 * their offset, `<key>.part/<offset>`, one per PATCH so no byte is rewritten, and are joined to the
 * front of the next PATCH. So every part but the last has the same size, and the offset can be
 * proven from S3 alone: ListParts, the segments, and the info object (`<key>.info`).
 */
/** What S3 answers a request signed for another region than the bucket's. */
const REGION_CODES = new Set(['AuthorizationHeaderMalformed', 'PermanentRedirect', 'IllegalLocationConstraintException', 'IncorrectEndpoint']);

export class S3DataStore implements DataStore {
  readonly #s3: S3Client;
  readonly #tails: TailCache;
  readonly #buffers: PartBuffers;

  /** Uploads whose parts clients send straight to S3, with presigned URLs. */
  readonly direct: S3DirectUploads;

  constructor(readonly options: S3StoreOptions) {
    this.#s3 = options.client;
    this.direct = new S3DirectUploads({
      client: options.client,
      prefix: options.prefix,
      objectHeaders: (upload) => this.#objectHeaders(upload),
      writeInfo: (upload, uploadId) => this.#writeInfo(upload, uploadId, 0, true),
      complete: (key, uploadId, parts, length) => this.#complete(key, uploadId, parts, length),
    });
    this.#buffers = new PartBuffers(options.bufferMemory ?? 128 * 1024 * 1024, { maxWaitMs: options.bufferWaitMs, metrics: options.metrics });
    this.#tails = new TailCache(this.#buffers, options.tailCacheBytes ?? Number.POSITIVE_INFINITY);
  }

  /** Where an upload's helper objects live: `<key>.info` and the segments `<key>.part/<offset>`. */
  key(id: string): string {
    return `${this.options.prefix}${id}`;
  }

  /** The object the upload becomes: named by the id, or by the key a pre-create hook chose. */
  #object(upload: Pick<Upload, 'id' | 'key'>): string {
    return `${this.options.prefix}${upload.key ?? upload.id}`;
  }

  #fields(upload: Upload): { uploadId: string; partSize: number } {
    const uploadId = upload.store?.uploadId;
    const partSize = Number(upload.store?.partSize);
    if (!uploadId || !(partSize > 0)) throw new Error(`upload ${upload.id} has no S3 multipart upload`);
    return { uploadId, partSize };
  }

  /**
   * Reaches the bucket itself and fails with a clear reason when it is missing, the credentials are
   * refused or the region is wrong; the S3Error (or network error) is the thrown error's cause.
   */
  async check(): Promise<void> {
    try {
      await this.#s3.probeBucket();
    } catch (error) {
      if (!(error instanceof S3Error)) throw error;
      const bucket = this.#s3.config.bucket;
      const answer = `${error.status} ${error.code}`;
      if (error.status === 404 || error.code === 'NoSuchBucket') throw new Error(`S3 bucket "${bucket}" does not exist (${answer})`, { cause: error });
      if (REGION_CODES.has(error.code) || error.status === 301) {
        throw new Error(`S3 bucket "${bucket}" is not in region ${this.#s3.config.region} (${answer})`, { cause: error });
      }
      if (error.status === 403) throw new Error(`S3 refused the credentials for bucket "${bucket}" (${answer})`, { cause: error });
      throw error;
    }
  }

  /** The server's headers for the object, and over them the settings a pre-create hook chose. */
  #objectHeaders(upload: Upload): Record<string, string> {
    return { ...this.options.objectHeaders?.(upload), ...objectSettingsHeaders(upload.object ?? {}) };
  }

  async create(upload: Upload): Promise<Record<string, string>> {
    const partSize = partSizeFor(upload.length, this.options.partSize);
    const key = this.#object(upload);
    const uploadId = await this.#s3.createMultipartUpload(key, this.#objectHeaders(upload));
    await this.#writeInfo(upload, uploadId, partSize);
    return { uploadId, partSize: String(partSize) };
  }

  async #writeInfo(upload: Upload, uploadId: string, partSize: number, direct?: true): Promise<void> {
    const { key, length, metadata, createdAt, owner, concat } = upload;
    const info: Info = { key, length, metadata, createdAt, uploadId, partSize, owner, concat, direct };
    if (upload.digest) info.digest = { algorithm: upload.digest.algorithm, expected: upload.digest.expected };
    await this.#s3.putObject(`${this.key(upload.id)}.info`, JSON.stringify(info), { 'Content-Type': 'application/json' });
  }

  async concat(final: Upload, partials: Upload[]): Promise<Record<string, string>> {
    const key = this.#object(final);
    const objectHeaders = this.#objectHeaders(final);
    const lengths = partials.map((p) => p.length ?? 0);
    const length = lengths.reduce((a, b) => a + b, 0);
    const plan = planConcat(lengths);
    const info = { uploadId: '', partSize: '0' };
    if (plan.length === 0) {
      await this.#putEmpty(key, objectHeaders);
    } else {
      info.uploadId = await this.#s3.createMultipartUpload(key, objectHeaders);
      try {
        const sources = partials.map((p) => this.#object(p));
        const parts = await sendPlan(this.#s3, key, info.uploadId, sources, plan, this.options.parallelParts * 2);
        await this.#complete(key, info.uploadId, parts, length);
      } catch (error) {
        await this.#s3.abortMultipartUpload(key, info.uploadId).catch(() => {});
        throw error;
      }
    }
    await this.#writeInfo(final, info.uploadId, 0);
    return info;
  }

  async declareLength(upload: Upload): Promise<void> {
    const { uploadId, partSize } = this.#fields(upload);
    await this.#writeInfo(upload, uploadId, partSize);
  }

  async write(upload: Upload, body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<WriteResult> {
    const at = this.#target(upload);
    // What this instance wrote last is current when the upload is still where that write left it:
    // the state store then holds its offset, so the segments it made obsolete can go now (never
    // earlier: until the offset is saved, a retry may need them).
    const previous = this.#tails.take(upload.id, upload.offset);
    const cleanup = previous?.obsolete.length ? this.#deleteSegments(previous.obsolete).catch(() => {}) : undefined;
    if (at.carried === 0) previous?.held?.memory.release();
    // The carried bytes are the start of the first part: read back, they take its memory.
    const firstPart = options.size === undefined ? at.partSize : Math.min(at.partSize, at.carried + options.size);
    const carry = at.carried > 0 ? (previous ?? (await this.#readCarry(upload, upload.offset - at.carried, firstPart, options.signal))) : undefined;
    if (carry && 'completed' in carry) return carry;

    // From here the body's parts own the carried memory (sendParts gives it back), and the write owns what it leaves.
    const result = await this.#orCompleted(upload, () => this.#sendBody(at, body, carry, options));
    if ('completed' in result) return result;
    try {
      return await this.#commit(upload, at, carry, result, cleanup);
    } catch (error) {
      result.held?.memory.release();
      throw error;
    }
  }

  /** Stores what the write left (the last part, or a segment) and keeps it for the next write. */
  async #commit(upload: Upload, at: WriteTarget, carry: Tail | undefined, result: PartsResult, cleanup: Promise<void> | undefined): Promise<WriteResult> {
    // Only now do the new bytes count. Nothing stored before is deleted here (see above), so a
    // write that fails anywhere, or whose offset is never saved, leaves the upload as it was.
    const offset = upload.offset + result.received;
    const { nextPart } = result;
    const tail = heldViews(result.held);
    const tailLength = result.held?.length ?? 0;
    const plan = planSegments(this.key(upload.id), carry, {
      offset,
      length: upload.length,
      carried: at.carried,
      received: result.received,
      tail: tailLength,
      sentPart: nextPart > at.firstPart,
    });
    if (plan.last && tailLength > 0) {
      // The held bytes were hashed as they arrived: not again here.
      const known = result.heldHash && { sha256: result.heldHash.digest() };
      const sent = await this.#orCompleted(upload, () => this.#s3.uploadPart(at.key, at.uploadId, nextPart, tail, known));
      // An earlier request completed it: nothing of this write is kept, its memory included.
      if (sent === COMPLETED) {
        result.held?.memory.release();
        return COMPLETED;
      }
    }
    if (plan.segment) await this.#s3.putObject(plan.segment.key, viewsFrom(tail, plan.segment.from));
    if (plan.last) result.held?.memory.release();
    const kept = plan.last ? {} : { held: result.held, hash: result.heldHash };
    this.#tails.put(upload.id, { offset, ...kept, segments: plan.segments, obsolete: plan.obsolete });
    await cleanup;
    return { offset };
  }

  /** Where a write at the upload's offset goes. */
  #target(upload: Upload): WriteTarget {
    const { uploadId, partSize } = this.#fields(upload);
    const firstPart = Math.floor(upload.offset / partSize) + 1;
    return { key: this.#object(upload), uploadId, partSize, firstPart, carried: upload.offset % partSize };
  }

  /**
   * Sends the carried bytes and then the body as full parts, and verifies the body; resolves with
   * what is left after the last full part. Parts of a write that fails must not count if the offset
   * is ever rebuilt from S3 alone: their checksum may have failed, or never been checked (the body
   * was cut, a later part failed). The first of them is overwritten with a 1-byte part, where
   * recovery stops; the client's retry sends it whole again. (A part whose send started may be
   * stored even if its answer was lost.) With `onDurable` (no checksum), whole parts count as soon
   * as they and every part before them are stored: they are reported, and the distrust starts after
   * them.
   */
  async #sendBody(at: WriteTarget, body: ReadableStream<Uint8Array>, carry: Tail | undefined, options: WriteOptions): Promise<PartsResult> {
    const { key, uploadId, partSize, firstPart } = at;
    let sendsStarted = false;
    // Parts stored so far; `durable` of them, from the first, without a gap (they finish out of order).
    const done = new Set<number>();
    let durable = 0;
    const sent = (partNumber: number) => {
      done.add(partNumber);
      options.onProgress?.(done.size * partSize - at.carried);
      if (!options.onDurable || !done.has(firstPart + durable)) return;
      while (done.has(firstPart + durable)) durable++;
      options.onDurable(durable * partSize - at.carried);
    };
    let result: PartsResult | undefined;
    try {
      result = await sendParts(body, {
        partSize,
        firstPart,
        held: carry?.held,
        heldHash: carry?.hash,
        keepTail: true,
        parallel: this.options.parallelParts,
        buffers: this.#buffers,
        send: async (partNumber, bytes, sha256) => {
          sendsStarted = true;
          await this.#s3.uploadPart(key, uploadId, partNumber, bytes, { sha256 });
          sent(partNumber);
        },
        hash: this.#s3.partHash,
        // A streamed part's digest is not known before its bytes are: with a payload check, parts
        // are sent once buffered (see README, S3 integrity, for what that costs).
        stream:
          this.options.streamParts && this.#s3.payloadCheck === 'off'
            ? async (partNumber, part, size) => {
                sendsStarted = true;
                await this.#s3.uploadPartStream(key, uploadId, partNumber, part, size);
                sent(partNumber);
              }
            : undefined,
        expected: options.size,
        release: this.options.releaseChunks,
        signal: options.signal,
      });
      await options.verify();
      return result;
    } catch (error) {
      result?.held?.memory.release();
      // Parts reported durable count already (the engine may have recorded them): the distrust starts after them.
      if (sendsStarted) await this.#s3.uploadPart(key, uploadId, firstPart + durable, new Uint8Array(1)).catch(() => {});
      throw error;
    }
  }

  /**
   * Runs a request of a write, resolving with COMPLETED instead of its error when the error shows
   * the upload completed (NoSuchUpload): an earlier request completed it, and its answer was lost.
   */
  async #orCompleted<T>(upload: Upload, request: () => Promise<T>): Promise<T | typeof COMPLETED> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof S3Error && error.notFound && (await this.#completed(upload))) return COMPLETED;
      throw error;
    }
  }

  /** Whether the upload's object exists whole: it was completed. */
  async #completed(upload: Upload): Promise<boolean> {
    const object = await this.#s3.headObject(this.#object(upload));
    return object !== undefined && upload.length !== undefined && object.size === upload.length;
  }

  /**
   * The incomplete part's bytes read back from S3 (another instance, or a restart, wrote them).
   * The next commit rewrites them as one segment, which also retires any a failed request left.
   * The listing's sizes say which segments hold the part without a gap; they are read at once.
   */
  async #readCarry(upload: Upload, partStart: number, partBytes = upload.offset - partStart, signal?: AbortSignal): Promise<Tail | typeof COMPLETED> {
    const found = await this.#segments(this.key(upload.id));
    const chain: { key: string; at: number; size: number }[] = [];
    for (let at = partStart; at < upload.offset; ) {
      const segment = found.get(at);
      if (!segment || segment.size <= 0) return this.#missingCarry(upload, at);
      const size = Math.min(segment.size, upload.offset - at);
      chain.push({ key: segment.key, at, size });
      at += size;
    }
    // Read into slabs of the part memory, as the first part's start: it counts in the budget.
    const length = upload.offset - partStart;
    const memory = this.#buffers.part(Math.max(partBytes, length));
    try {
      for (let i = 0; i * this.#buffers.slabSize < length; i++) await memory.take(signal);
      const read = await Promise.all(chain.map(async ({ key, at, size }) => ((await this.#readInto(key, memory.slabs, at - partStart, size)) ? undefined : at)));
      const gap = read.find((at) => at !== undefined);
      if (gap !== undefined) {
        memory.release();
        return this.#missingCarry(upload, gap);
      }
    } catch (error) {
      memory.release();
      throw error;
    }
    return { offset: upload.offset, held: { memory, length }, segments: [...found.values()].map((s) => s.key), obsolete: [], consolidate: true };
  }

  /** Streams the first `size` bytes of an object into slabs at `from`; false when it has fewer. */
  async #readInto(key: string, slabs: Uint8Array[], from: number, size: number): Promise<boolean> {
    const res = await this.#s3.getObject(key);
    if (!res?.body) return false;
    const slabSize = this.#buffers.slabSize;
    let at = 0;
    for await (const chunk of res.body) {
      for (let i = 0; i < chunk.byteLength && at < size; ) {
        const pos = from + at;
        const slab = slabs[Math.floor(pos / slabSize)]!;
        const inSlab = pos % slabSize;
        const n = Math.min(slabSize - inSlab, chunk.byteLength - i, size - at);
        slab.set(chunk.subarray(i, i + n), inSlab);
        i += n;
        at += n;
      }
      if (this.options.releaseChunks) freeChunk(chunk);
    }
    return at >= size;
  }

  /**
   * The last PATCH completed the upload (which removes the segments) but its offset was never
   * saved: a crash between the two. The retry is answered as the completion it repeats.
   */
  async #missingCarry(upload: Upload, at: number): Promise<typeof COMPLETED> {
    if (await this.#completed(upload)) return COMPLETED;
    throw new Error(`incomplete part of ${upload.id} is missing bytes from offset ${at}`);
  }

  /** The upload's segment objects by starting offset. */
  async #segments(key: string): Promise<Map<number, { key: string; size: number }>> {
    const found = new Map<number, { key: string; size: number }>();
    for await (const object of this.#s3.listObjects(segmentPrefix(key))) {
      const start = segmentStart(key, object.key);
      if (start !== undefined) found.set(start, object);
    }
    return found;
  }

  async #deleteSegments(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) await this.#s3.deleteObjects(keys.slice(i, i + 1000));
  }

  async finish(upload: Upload): Promise<void> {
    const { uploadId, partSize } = this.#fields(upload);
    const key = this.#object(upload);
    const length = upload.length ?? upload.offset;
    if (length === 0) {
      await this.#s3.abortMultipartUpload(key, uploadId);
      await this.#putEmpty(key, this.#objectHeaders(upload));
      return;
    }
    const count = Math.ceil(length / partSize);
    let listed: Part[];
    try {
      listed = await this.#s3.listParts(key, uploadId);
    } catch (error) {
      // An earlier attempt completed it (and its answer, or the record of it, was lost).
      if (!(error instanceof S3Error && error.notFound && (await this.#completed(upload)))) throw error;
      return this.#dropSegments(upload.id);
    }
    if (listed.length === 0 && (await this.#completed(upload))) return this.#dropSegments(upload.id);
    // Parts past the last one can exist (a PATCH whose checksum failed after sending them): leave them out.
    const parts = listed.filter((p) => p.partNumber <= count);
    if (parts.length === count - 1) {
      // The final bytes are still in segments (a deferred length declared by an empty PATCH on
      // another instance): send them as the last part.
      const tail = await this.#readCarry({ ...upload, offset: length }, (count - 1) * partSize);
      // Completed meanwhile (by a request whose answer was lost): as when nothing is left to list.
      if ('completed' in tail) return this.#dropSegments(upload.id);
      try {
        const size = tail.held?.length ?? 0;
        parts.push({ partNumber: count, ...(await this.#s3.uploadPart(key, uploadId, count, heldViews(tail.held))), size });
      } finally {
        tail.held?.memory.release();
      }
    }
    parts.forEach((part, i) => {
      const expected = i + 1 < count ? partSize : length - (count - 1) * partSize;
      if (part.partNumber !== i + 1 || part.size !== expected) {
        throw new Error(`part ${part.partNumber} of ${key} has ${part.size} bytes, expected part ${i + 1} of ${expected}`);
      }
    });
    if (parts.length !== count) throw new Error(`${key} has ${parts.length} parts, expected ${count}`);
    await this.#complete(key, uploadId, parts, length);
    await this.#dropSegments(upload.id);
  }

  /**
   * Completes the multipart upload without overwriting an object another writer put at its key
   * meanwhile (a hook-chosen key, or the same key in another deployment): S3 checks it with
   * `If-None-Match: *` where it can, and a HeadObject first covers services that ignore the header
   * (radosgw 16 does). S3 checks the length too (`x-amz-mp-object-size`). A 412 can also answer
   * the retry of a completion that succeeded (its answer lost): the object is then this upload's,
   * which its multipart ETag (MD5 of the parts' MD5s) shows.
   */
  async #complete(key: string, uploadId: string, parts: Pick<Part, 'partNumber' | 'etag' | 'checksum'>[], length: number): Promise<void> {
    if (this.options.overwrite !== true && (await this.#s3.headObject(key))) throw keyTaken(key);
    try {
      await this.#s3.completeMultipartUpload(key, uploadId, parts, length);
    } catch (error) {
      if (!(error instanceof S3Error && (error.status === 412 || error.code === 'PreconditionFailed'))) throw error;
      const found = await this.#s3.headObject(key);
      if (found?.headers.get('ETag') !== multipartEtag(parts.map((p) => p.etag))) throw keyTaken(key);
    }
  }

  /**
   * Stores an empty upload's object as `#complete` stores others: never over an object another
   * writer put at its key (HeadObject first, then `If-None-Match: *`). A 412 can answer the retry
   * of a put that succeeded: an empty object at the key is then taken as this upload's (its bytes
   * are the same whoever put it).
   */
  async #putEmpty(key: string, headers: Record<string, string>): Promise<void> {
    const guarded = this.options.overwrite !== true;
    if (guarded && (await this.#s3.headObject(key))) throw keyTaken(key);
    try {
      await this.#s3.putObject(key, new Uint8Array(), headers, { onlyNew: guarded });
    } catch (error) {
      if (!(error instanceof S3Error && (error.status === 412 || error.code === 'PreconditionFailed'))) throw error;
      if ((await this.#s3.headObject(key))?.size !== 0) throw keyTaken(key);
    }
  }

  /** Deletes every segment of an upload that no longer needs them (finished or removed). */
  async #dropSegments(id: string): Promise<void> {
    this.#tails.take(id, -1); // gives back its memory
    await this.#deleteSegments([...(await this.#segments(this.key(id))).values()].map((s) => s.key));
  }

  async read(upload: Upload, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#s3.getObject(this.#object(upload), range && [range.start, range.end]);
    if (!res?.body) throw new Error(`object ${this.#object(upload)} is missing`);
    // Where a stream needs it to be sent with its length (Workers), the download gets it too.
    const fixedLength = this.#s3.config.fixedLength;
    const length = range ? range.end - range.start + 1 : upload.length;
    return fixedLength && length !== undefined ? fixedLength(res.body, length) : res.body;
  }

  /**
   * A presigned GetObject URL of the finished object that answers with `headers`' Content-Type and
   * Content-Disposition (S3's response-content-* overrides, signed into the URL), or undefined when
   * downloads are not redirected. Nothing is sent to S3.
   */
  async downloadUrl(upload: Upload, headers: { 'Content-Type': string; 'Content-Disposition': string }): Promise<string | undefined> {
    const redirect = this.options.downloadRedirect;
    if (!redirect) return undefined;
    const overrides = { 'response-content-type': headers['Content-Type'], 'response-content-disposition': headers['Content-Disposition'] };
    return this.#s3.presign('GET', this.#object(upload), overrides, redirect.expiresSeconds);
  }

  async remove(upload: Upload): Promise<void> {
    const object = this.#object(upload);
    if (upload.store?.uploadId) await this.#s3.abortMultipartUpload(object, upload.store.uploadId);
    await this.#dropSegments(upload.id);
    await this.#deleteSegments([object, `${this.key(upload.id)}.info`]);
  }

  async *stale(before: number): AsyncIterable<Pick<Upload, 'id' | 'store'>> {
    const prefix = this.options.prefix;
    for await (const upload of this.#s3.listMultipartUploads(prefix)) {
      const id = upload.key.slice(prefix.length);
      if (isUploadId(id) && upload.initiated.getTime() < before) yield { id, store: { uploadId: upload.uploadId } };
    }
  }

  /** Whether an object, or a multipart upload that will become one, is at the key already. */
  async keyInUse(key: string): Promise<boolean> {
    const object = `${this.options.prefix}${key}`;
    if (await this.#s3.headObject(object)) return true;
    // Listed in key order, so an upload at exactly this key comes before those at longer keys.
    for await (const upload of this.#s3.listMultipartUploads(object)) return upload.key === object;
    return false;
  }

  /** Rebuilds an upload's record from S3 alone (the state store lost it). */
  async recover(id: string): Promise<Upload | undefined> {
    const base = this.key(id);
    const res = await this.#s3.getObject(`${base}.info`);
    if (!res) return undefined;
    const info = (await res.json()) as Info;
    const upload: Upload = {
      id,
      offset: 0,
      length: info.length,
      metadata: info.metadata,
      createdAt: info.createdAt,
      store: { uploadId: info.uploadId, partSize: String(info.partSize), ...(info.direct === true ? { direct: '1' } : {}) },
      ...restored(info),
    };
    // A direct upload sent in one form POST: unfinished, stored or not, so that the engine's finish
    // (its hooks, after its POST policy expired) decides.
    if (info.direct === true && !info.uploadId) return upload;
    const key = this.#object(upload);
    const object = await this.#s3.headObject(key);
    if (object) {
      // When the object was completed: a finished partial upload expires that long after it.
      const finishedAt = Date.parse(object.headers.get('Last-Modified') ?? '') || upload.createdAt;
      return { ...upload, offset: object.size, length: object.size, finishedAt };
    }

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
      return upload;
    }
    // Then as far as the segments reach without a gap; they never hold a whole part.
    const segments = await this.#segments(base);
    const partEnd = upload.offset + info.partSize;
    for (let segment = segments.get(upload.offset); segment && upload.offset + segment.size < partEnd; ) {
      upload.offset += segment.size;
      segment = segments.get(upload.offset);
    }
    return upload;
  }
}

/** What a completion that found another object at its key fails with (answered 409). */
const keyTaken = (key: string) => new TusError('KEY_TAKEN', `an object appeared at ${key} before the upload completed; it was kept`);

/** The views' bytes from `from` on (still views). */
function viewsFrom(views: Uint8Array[], from: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const view of views) {
    if (from >= view.byteLength) from -= view.byteLength;
    else {
      out.push(from > 0 ? view.subarray(from) : view);
      from = 0;
    }
  }
  return out;
}
