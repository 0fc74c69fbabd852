import { AwsV4Signer } from 'aws4fetch';
import { md5 } from '@noble/hashes/legacy.js';
import { exponential, retry, withTimeout } from '../../model/async.ts';
import { toBase64 } from '../../model/encoding.ts';
import { NO_METRICS, type Metrics } from '../../model/metrics.ts';
import { S3Error } from './errors.ts';
import { byteLengthOf, joinBytes } from './bytes.ts';
import { blocks, escapeXml, text } from './xml.ts';
import { isDigestError, jsSha256, multipartHeaders, type PayloadCheck, payloadHeaders, S3_ALGORITHM, type Sha256Factory } from './integrity.ts';

/** The fetch the client calls; tests pass one that injects faults. */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface S3ClientConfig {
  /** Where request durations and retries are recorded. */
  metrics?: Metrics;
  /** e.g. http://127.0.0.1:9000; defaults to AWS's regional endpoint. */
  endpoint?: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /**
   * `endpoint/bucket/key` instead of `bucket.endpoint/key` (MinIO, radosgw, most self-hosted stores).
   * Unset: path style when the endpoint is an IP address or localhost, which has no bucket subdomains.
   */
  forcePathStyle?: boolean;
  /** Attempts per call (1 = no retry) and the time after which no new attempt starts. */
  attempts?: number;
  retryBudgetMs?: number;
  /**
   * Send large byte bodies as streams of views of their bytes, with a Content-Length. Bun's fetch
   * copies a whole Uint8Array body before sending it (a second copy of every part in flight) but
   * sends a stream as it reads it. Only for a fetch that keeps a streamed body's Content-Length.
   */
  streamBodies?: boolean;
  /**
   * Makes the runtime's fetch send a streamed body with a Content-Length rather than chunked, which
   * S3 refuses (Workers: `body.pipeThrough(new FixedLengthStream(size))`). Bun needs none: it keeps
   * the Content-Length header given.
   */
  fixedLength?: (body: ReadableStream<Uint8Array>, size: number) => ReadableStream<Uint8Array>;
  fetch?: Fetch;
  /**
   * What each UploadPart and PutObject declares about its bytes, for S3 to refuse them if they
   * changed on the way (see integrity.ts). Default `sha256`, the signed payload hash.
   */
  payloadCheck?: PayloadCheck;
  /** The streaming SHA-256 for `sha256` (the runtime's native one; default @noble/hashes'). */
  sha256?: Sha256Factory;
  /**
   * Complete a multipart upload only if nothing is at its key yet (`If-None-Match: *`). Default on;
   * switched off for the client's life when the service refuses the header.
   */
  conditionalComplete?: boolean;
}

export interface Part {
  partNumber: number;
  etag: string;
  size: number;
  /** The part's S3 checksum (base64), when the upload declared an algorithm (crc32c, crc64nvme). */
  checksum?: string;
}

/** What sending a part gives back: its ETag and, where parts carry one, its S3 checksum (for the completion). */
export type SentPart = Pick<Part, 'etag' | 'checksum'>;

export interface MultipartUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

type Query = Record<string, string | number>;
/** What an S3 call answered; `response` only for a streamed body. */
interface Answer {
  status: number;
  headers: Headers;
  text: string;
  response?: Response;
}

interface Call {
  key?: string;
  query?: Query;
  headers?: Record<string, string>;
  /** A list of views is one body, their bytes in order (a part made of slabs). */
  body?: Uint8Array | Uint8Array[] | string | ReadableStream<Uint8Array>;
  /** A streamed body can be sent only once. */
  once?: boolean;
  /**
   * The headers declare what the body hashes to: when S3 finds the bytes it got do not match (they
   * changed on the way), the call is sent again from the same bytes, within the attempts.
   */
  checked?: boolean;
}

/** A call's body as it goes out: made afresh for each attempt (a stream is read once). */
interface Outgoing {
  /** The headers to sign: the call's, with the Content-Length of a body sent as a stream. */
  headers?: Record<string, string>;
  size: number;
  body(): Uint8Array | string | ReadableStream<Uint8Array> | undefined;
}

const STREAM_CHUNK = 256 * 1024;

/** Bytes as a stream of views of them, at most STREAM_CHUNK each: nothing is copied before the socket write. */
function viewsOf(list: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let index = 0;
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      for (; index < list.length && at >= list[index]!.byteLength; index++) at = 0;
      const bytes = list[index];
      if (!bytes) return controller.close();
      controller.enqueue(bytes.subarray(at, (at += STREAM_CHUNK)));
    },
  });
}

/** Every operation the client sends: the label values of its metrics, there at 0 from the start. */
const OPERATIONS = [
  'ListObjectsV2',
  'CreateMultipartUpload',
  'UploadPart',
  'UploadPartCopy',
  'ListParts',
  'CompleteMultipartUpload',
  'AbortMultipartUpload',
  'PutObject',
  'GetObject',
  'HeadObject',
  'DeleteObjects',
  'ListMultipartUploads',
] as const;
type Operation = (typeof OPERATIONS)[number];

/** An IP literal (v4, or v6 in brackets) or localhost: `bucket.<host>` would not resolve to it. */
function hasNoSubdomains(hostname: string): boolean {
  return isIpLiteral(hostname) || /^localhost$|\.localhost$/i.test(hostname);
}

const isIpLiteral = (hostname: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith('[');

/** RFC 3986 encoding of each path segment, as SigV4 expects for S3 keys. */
const encodeKey = (key: string) =>
  key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');

/**
 * The S3 calls Tusflow makes, as raw SigV4-signed REST requests (aws4fetch): no SDK, so it runs on
 * any runtime. Every call here is safe to repeat, so each is retried with exponential backoff and
 * full jitter on 5xx, 429, SlowDown, RequestTimeout and network errors, bounded in count and time.
 */
export class S3Client {
  /** Signing keys, reused across requests (aws4fetch derives one per day and region). */
  readonly #keys = new Map<string, ArrayBuffer>();
  readonly #base: URL;
  readonly #pathStyle: boolean;
  readonly #fetch: Fetch;
  readonly #attempts: number;
  readonly #budgetMs: number;
  readonly #metrics: Metrics;
  /** Requests sent, by operation (retries included): what a user pays for. */
  readonly requests = new Map<string, number>();
  retries = 0;
  /** Bodies S3 refused because their bytes did not match their declared digest (each was sent again). */
  digestRefusals = 0;
  readonly payloadCheck: PayloadCheck;
  readonly #sha256: Sha256Factory;
  #conditionalComplete: boolean;

  constructor(readonly config: S3ClientConfig) {
    this.#base = new URL(config.endpoint ?? `https://s3.${config.region}.amazonaws.com`);
    this.#pathStyle = config.forcePathStyle ?? hasNoSubdomains(this.#base.hostname);
    // URL's hostname setter silently keeps an IP address (`bucket.127.0.0.1` is no valid host), so
    // every request would go to the endpoint's root instead of the bucket.
    if (!this.#pathStyle && isIpLiteral(this.#base.hostname)) {
      throw new Error(`virtual-host addressing puts the bucket in the host name, which an IP address (${this.#base.hostname}) cannot take: use path style`);
    }
    // Called through a closure: on workerd, a detached `fetch` called as a method throws.
    this.#fetch = config.fetch ?? ((input, init) => fetch(input, init));
    this.#attempts = config.attempts ?? 5;
    this.#budgetMs = config.retryBudgetMs ?? 20_000;
    this.#metrics = config.metrics ?? NO_METRICS;
    this.payloadCheck = config.payloadCheck ?? 'sha256';
    this.#sha256 = config.sha256 ?? jsSha256;
    this.#conditionalComplete = config.conditionalComplete ?? true;
    for (const operation of OPERATIONS) {
      this.#metrics.declare('tusflow_s3_request_duration_seconds', { operation });
      this.#metrics.declare('tusflow_s3_retries_total', { operation });
    }
  }

  #url(key = '', query: Query = {}): URL {
    const url = new URL(this.#base);
    const path = url.pathname.replace(/\/$/, '');
    if (this.#pathStyle) url.pathname = `${path}/${this.config.bucket}/${encodeKey(key)}`;
    else {
      url.hostname = `${this.config.bucket}.${url.hostname}`;
      url.pathname = `${path}/${encodeKey(key)}`;
    }
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, String(value));
    return url;
  }

  /**
   * One S3 call, retried while it is safe to: on 5xx, 429, SlowDown, RequestTimeout, network errors
   * and deadlines, unless its body is a stream (sent once). Retries wait with full jitter, up to
   * 100 ms doubling to 2 s, within the attempts and the time budget.
   */
  async #send(operation: Operation, method: string, call: Call = {}, stream = false): Promise<Answer> {
    const url = this.#url(call.key, call.query);
    const outgoing = this.#outgoing(call);
    return retry(() => this.#attempt(operation, method, url, outgoing, stream), {
      attempts: call.once ? 1 : this.#attempts,
      budgetMs: this.#budgetMs,
      maxDelayMs: exponential(100, 2_000),
      retryable: (error) => !(error instanceof S3Error) || error.transient || (call.checked === true && isDigestError(error.code)),
      onRetry: (error) => {
        if (error instanceof S3Error && isDigestError(error.code)) this.digestRefusals++;
        this.retries++;
        this.#metrics.inc('tusflow_s3_retries_total', { operation });
      },
    });
  }

  /**
   * Byte bodies go out as streams of views where the fetch keeps their Content-Length (Bun's,
   * Workers' with `fixedLength`, node:http's on Deno and Node); elsewhere a list of views is joined
   * once, here.
   */
  #outgoing(call: Call): Outgoing {
    const views = call.body instanceof Uint8Array ? [call.body] : Array.isArray(call.body) ? call.body : undefined;
    const size = typeof call.body === 'string' ? call.body.length : views ? byteLengthOf(views) : Number(call.headers?.['Content-Length'] ?? 0);
    const streamed = this.config.streamBodies === true && views !== undefined && (views.length > 1 || size > STREAM_CHUNK);
    if (streamed) return { headers: { ...call.headers, 'Content-Length': String(size) }, size, body: () => this.#fixed(viewsOf(views), size) };
    const payload = views ? (views.length === 1 ? views[0] : joinBytes(views)) : (call.body as string | ReadableStream<Uint8Array> | undefined);
    return { headers: call.headers, size, body: () => (payload instanceof ReadableStream ? this.#fixed(payload, size) : payload) };
  }

  #fixed(body: ReadableStream<Uint8Array>, size: number): ReadableStream<Uint8Array> {
    return this.config.fixedLength ? this.config.fixedLength(body, size) : body;
  }

  /**
   * One attempt: signed (each attempt afresh: a signature carries its time), sent, and answered
   * within a deadline of 10 s plus 1 s per MiB of body, so a hung connection counts as a failure
   * instead of hanging the request. The answer's body is read inside it, so a cut answer is a
   * failure too; with `stream`, the body is left to the caller and the deadline ends with the
   * headers. An error answer is thrown as an S3Error.
   */
  async #attempt(operation: Operation, method: string, url: URL, outgoing: Outgoing, stream: boolean): Promise<Answer> {
    this.requests.set(operation, (this.requests.get(operation) ?? 0) + 1);
    const sent = performance.now();
    const deadlineMs = 10_000 + outgoing.size / 1024;
    const late = () => new Error(`S3 ${operation} did not answer within ${Math.round(deadlineMs / 1000)} s`);
    return withTimeout(
      deadlineMs,
      async (signal) => {
        const signed = await this.#sign(url, method, outgoing.headers);
        const body = outgoing.body();
        const response = await this.#fetch(signed.url, {
          method,
          headers: signed.headers,
          body: body as BodyInit | undefined,
          signal,
          ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
        } as RequestInit);
        const text = response.ok && stream ? '' : await response.text();
        this.#metrics.observe('tusflow_s3_request_duration_seconds', { operation }, (performance.now() - sent) / 1000);
        if (!response.ok) throw errorFromXml(operation, response.status, text);
        return { status: response.status, headers: response.headers, text, ...(stream ? { response } : {}) };
      },
      late,
    );
  }

  /**
   * Only the headers are signed (S3 takes UNSIGNED-PAYLOAD): the body goes to fetch as it is, no
   * Request built around it.
   */
  #sign(url: URL, method: string, headers: Record<string, string> | undefined): Promise<{ url: URL; headers: Headers }> {
    return new AwsV4Signer({
      url: url.href,
      method,
      headers,
      accessKeyId: this.config.accessKeyId,
      secretAccessKey: this.config.secretAccessKey,
      sessionToken: this.config.sessionToken,
      region: this.config.region,
      service: 's3',
      cache: this.#keys,
    }).sign();
  }

  /**
   * A URL that lets whoever holds it make this one request for `expiresSeconds`, signed in its query
   * (SigV4 presigning, payload unsigned): a browser sends bytes with it straight to S3. Nothing is sent.
   */
  async presign(method: string, key: string, query: Query, expiresSeconds: number): Promise<string> {
    const url = this.#url(key, { ...query, 'X-Amz-Expires': expiresSeconds });
    const signed = await new AwsV4Signer({
      url: url.href,
      method,
      accessKeyId: this.config.accessKeyId,
      secretAccessKey: this.config.secretAccessKey,
      sessionToken: this.config.sessionToken,
      region: this.config.region,
      service: 's3',
      signQuery: true,
      cache: this.#keys,
    }).sign();
    return signed.url.href;
  }

  /** The bucket's own URL, in this client's addressing style: where browsers POST form uploads. */
  bucketUrl(): string {
    return this.#url().href;
  }

  /**
   * Lists nothing in the bucket (ListObjectsV2, max-keys=0): the cheapest call that reaches the
   * bucket itself and, unlike HEAD, answers an error with its code (NoSuchBucket, AccessDenied,
   * AuthorizationHeaderMalformed for a wrong region, …).
   */
  async probeBucket(): Promise<void> {
    await this.#send('ListObjectsV2', 'GET', { query: { 'list-type': 2, 'max-keys': 0 } });
  }

  /** `checksum: false` declares no checksum algorithm (S3_CHECKSUM): for parts sent by clients that send none. */
  async createMultipartUpload(key: string, headers: Record<string, string> = {}, o: { checksum?: boolean } = {}): Promise<string> {
    const declared = o.checksum === false ? headers : { ...headers, ...multipartHeaders(this.payloadCheck) };
    const res = await this.#send('CreateMultipartUpload', 'POST', { key, query: { uploads: '' }, headers: declared });
    const uploadId = text(res.text, 'UploadId');
    if (!uploadId) throw new S3Error('CreateMultipartUpload', res.status, 'MalformedResponse', 'no UploadId');
    return uploadId;
  }

  /**
   * Sends a part from its bytes, one array or views of them in order (the slabs of a part), with
   * their digest (`known.sha256` when the caller hashed them as they came, see `partHash`): a part
   * S3 refuses for not matching it is sent again from the same views.
   */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array | Uint8Array[], known?: { sha256?: Uint8Array }): Promise<SentPart> {
    const headers = payloadHeaders(this.payloadCheck, body instanceof Uint8Array ? [body] : body, this.#sha256, known);
    const res = await this.#send('UploadPart', 'PUT', { key, query: { partNumber, uploadId }, body, headers, checked: true });
    const sent: SentPart = { etag: res.headers.get('ETag') ?? '' };
    // The checksum S3 checked the part against is the one the completion must give back.
    const checksum = headers[`x-amz-checksum-${this.payloadCheck}`];
    if (checksum) sent.checksum = checksum;
    return sent;
  }

  /**
   * Sends a part from a stream of exactly `size` bytes, once (a stream cannot be replayed: the
   * caller keeps a copy to retry with). Needs a fetch that sends a streamed body with the given
   * Content-Length rather than chunked, as Bun's does.
   */
  async uploadPartStream(key: string, uploadId: string, partNumber: number, body: ReadableStream<Uint8Array>, size: number): Promise<string> {
    const headers = { 'Content-Length': String(size) };
    const res = await this.#send('UploadPart', 'PUT', { key, query: { partNumber, uploadId }, body, headers, once: true });
    return res.headers.get('ETag') ?? '';
  }

  /** Copies `source` (or a byte range of it) in as a part, inside S3: no bytes pass through here. */
  async uploadPartCopy(key: string, uploadId: string, partNumber: number, source: string, range?: [number, number]): Promise<SentPart> {
    const headers: Record<string, string> = { 'x-amz-copy-source': `/${this.config.bucket}/${encodeKey(source)}` };
    if (range) headers['x-amz-copy-source-range'] = `bytes=${range[0]}-${range[1]}`;
    const body = (await this.#send('UploadPartCopy', 'PUT', { key, query: { partNumber, uploadId }, headers })).text;
    if (blocks(body, 'Error').length) throw errorFromXml('UploadPartCopy', 200, body);
    const sent: SentPart = { etag: text(body, 'ETag') ?? '' };
    // S3 computes a copied part's checksum (CopyPartResult) when the upload declared an algorithm.
    const checksum = this.#checksumTag() && text(body, this.#checksumTag()!);
    if (checksum) sent.checksum = checksum;
    return sent;
  }

  /** Every part of the upload, across as many pages as S3 needs. */
  async listParts(key: string, uploadId: string): Promise<Part[]> {
    const parts: Part[] = [];
    let marker = '';
    for (;;) {
      const query: Query = { uploadId, 'max-parts': 1000 };
      if (marker) query['part-number-marker'] = marker;
      const body = (await this.#send('ListParts', 'GET', { key, query })).text;
      for (const part of blocks(body, 'Part')) {
        const listed: Part = { partNumber: Number(text(part, 'PartNumber')), etag: text(part, 'ETag') ?? '', size: Number(text(part, 'Size')) };
        const checksum = this.#checksumTag() && text(part, this.#checksumTag()!);
        if (checksum) listed.checksum = checksum;
        parts.push(listed);
      }
      marker = text(body, 'NextPartNumberMarker') ?? '';
      if (text(body, 'IsTruncated') !== 'true' || !marker) return parts.sort((a, b) => a.partNumber - b.partNumber);
    }
  }

  /** ListParts' and CompleteMultipartUpload's element for a part's checksum, when parts carry one. */
  #checksumTag(): string | undefined {
    const check = this.payloadCheck;
    return check === 'crc32c' || check === 'crc64nvme' ? `Checksum${S3_ALGORITHM[check]}` : undefined;
  }

  /**
   * Completes the upload. With `size`, S3 checks the object's length (`x-amz-mp-object-size`);
   * unless turned off, only where no object is at the key yet (`If-None-Match: *`): a
   * PreconditionFailed S3Error (412) then. A service that refuses the condition (NotImplemented,
   * or an InvalidArgument naming it) gets the call again without it, and no more after that.
   */
  async completeMultipartUpload(key: string, uploadId: string, parts: Pick<Part, 'partNumber' | 'etag' | 'checksum'>[], size?: number): Promise<void> {
    const tag = this.#checksumTag();
    const xml = `<CompleteMultipartUpload>${parts
      .map((p) => {
        const checksum = tag && p.checksum ? `<${tag}>${escapeXml(p.checksum)}</${tag}>` : '';
        return `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag>${checksum}</Part>`;
      })
      .join('')}</CompleteMultipartUpload>`;
    const headers: Record<string, string> = size === undefined ? {} : { 'x-amz-mp-object-size': String(size) };
    const conditional = this.#conditionalComplete;
    if (conditional) headers['If-None-Match'] = '*';
    try {
      // S3 may answer 200 and still fail: the error is then in the body.
      const body = (await this.#send('CompleteMultipartUpload', 'POST', { key, query: { uploadId }, body: xml, headers })).text;
      if (blocks(body, 'Error').length) throw errorFromXml('CompleteMultipartUpload', 200, body);
    } catch (error) {
      if (!(conditional && error instanceof S3Error && refusesCondition(error))) throw error;
      this.#conditionalComplete = false;
      return this.completeMultipartUpload(key, uploadId, parts, size);
    }
  }

  /**
   * The hash a part's bytes must be fed as they fill it, for `uploadPart`'s `known.sha256`: the
   * runtime's SHA-256 when parts declare one (`sha256`), else undefined.
   */
  get partHash(): Sha256Factory | undefined {
    return this.payloadCheck === 'sha256' ? this.#sha256 : undefined;
  }

  /** Whether completions are sent with `If-None-Match: *` (false once the service refused it). */
  get conditionalComplete(): boolean {
    return this.#conditionalComplete;
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.#send('AbortMultipartUpload', 'DELETE', { key, query: { uploadId } });
    } catch (error) {
      if (!(error instanceof S3Error && error.notFound)) throw error;
    }
  }

  /**
   * Stores an object, with its bytes' digest (see uploadPart). `onlyNew`: only where no object is at
   * the key yet (`If-None-Match: *`, while the service takes it, as completions): a
   * PreconditionFailed S3Error (412) then.
   */
  async putObject(key: string, body: Uint8Array | Uint8Array[] | string, headers: Record<string, string> = {}, o: { onlyNew?: boolean } = {}): Promise<void> {
    const digest = payloadHeaders(this.payloadCheck, body instanceof Uint8Array ? [body] : body, this.#sha256);
    const conditional = o.onlyNew === true && this.#conditionalComplete;
    const sent = conditional ? { ...headers, ...digest, 'If-None-Match': '*' } : { ...headers, ...digest };
    try {
      await this.#send('PutObject', 'PUT', { key, body, headers: sent, checked: true });
    } catch (error) {
      if (!(conditional && error instanceof S3Error && refusesCondition(error))) throw error;
      this.#conditionalComplete = false;
      return this.putObject(key, body, headers, o);
    }
  }

  /** The object's body and headers, or undefined when there is no such key. */
  async getObject(key: string, range?: [number, number]): Promise<Response | undefined> {
    try {
      const headers: Record<string, string> = range ? { Range: `bytes=${range[0]}-${range[1]}` } : {};
      return (await this.#send('GetObject', 'GET', { key, headers }, true)).response;
    } catch (error) {
      if (error instanceof S3Error && error.notFound) return undefined;
      throw error;
    }
  }

  async headObject(key: string): Promise<{ size: number; headers: Headers } | undefined> {
    try {
      const res = await this.#send('HeadObject', 'HEAD', { key });
      return { size: Number(res.headers.get('Content-Length')), headers: res.headers };
    } catch (error) {
      if (error instanceof S3Error && error.notFound) return undefined;
      throw error;
    }
  }

  async deleteObjects(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const xml = `<Delete><Quiet>true</Quiet>${keys.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join('')}</Delete>`;
    // DeleteObjects requires Content-MD5, which WebCrypto does not offer.
    const headers = { 'Content-MD5': toBase64(md5(new TextEncoder().encode(xml))) };
    const body = (await this.#send('DeleteObjects', 'POST', { query: { delete: '' }, body: xml, headers })).text;
    const failed = blocks(body, 'Error').filter((e) => text(e, 'Code') !== 'NoSuchKey');
    if (failed.length) throw errorFromXml('DeleteObjects', 200, failed[0]!);
  }

  /** Keys and sizes of the objects under `prefix` (ListObjectsV2, every page). */
  async *listObjects(prefix: string): AsyncIterable<{ key: string; size: number }> {
    let token = '';
    for (;;) {
      const query: Query = { 'list-type': 2, prefix };
      if (token) query['continuation-token'] = token;
      const body = (await this.#send('ListObjectsV2', 'GET', { query })).text;
      for (const object of blocks(body, 'Contents')) yield { key: text(object, 'Key') ?? '', size: Number(text(object, 'Size')) };
      token = text(body, 'NextContinuationToken') ?? '';
      if (text(body, 'IsTruncated') !== 'true' || !token) return;
    }
  }

  /** Multipart uploads under `prefix` that were started and neither completed nor aborted. */
  async *listMultipartUploads(prefix: string): AsyncIterable<MultipartUpload> {
    let keyMarker = '';
    let uploadIdMarker = '';
    for (;;) {
      const query: Query = { uploads: '', prefix };
      if (keyMarker) query['key-marker'] = keyMarker;
      if (uploadIdMarker) query['upload-id-marker'] = uploadIdMarker;
      const body = (await this.#send('ListMultipartUploads', 'GET', { query })).text;
      for (const upload of blocks(body, 'Upload')) {
        yield { key: text(upload, 'Key') ?? '', uploadId: text(upload, 'UploadId') ?? '', initiated: new Date(text(upload, 'Initiated') ?? 0) };
      }
      keyMarker = text(body, 'NextKeyMarker') ?? '';
      uploadIdMarker = text(body, 'NextUploadIdMarker') ?? '';
      if (text(body, 'IsTruncated') !== 'true' || !keyMarker) return;
    }
  }
}

/**
 * A service that does not take `If-None-Match` (rather than a failed condition): it says so by its
 * code or names the header. Any other refusal (a 501 for something else) is an error of its own,
 * and leaves the condition on.
 */
function refusesCondition(error: S3Error): boolean {
  if (error.code === 'NotImplemented') return true;
  return (error.status === 400 || error.status === 501) && /If-None-Match/i.test(error.message);
}

function errorFromXml(operation: string, status: number, body: string): S3Error {
  const fallback = status === 404 ? 'NotFound' : status === 403 ? 'AccessDenied' : `Http${status}`;
  return new S3Error(operation, status, text(body, 'Code') ?? fallback, text(body, 'Message') ?? '');
}
