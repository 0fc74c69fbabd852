/**
 * The page's uploads when the server offers direct uploads (S3_DIRECT): the bytes go from the
 * browser straight to S3, part by part, with URLs the server signs (its Companion API). It has the
 * surface of tus-js-client's Upload that the page uses, and keeps its resumable uploads in the same
 * storage (so "Unfinished uploads" lists both kinds): each is a Tusflow upload whose URL the page
 * watches, resumes from the parts S3 lists, and deletes with a tus DELETE like any other.
 */
import { defaultOptions, type DetailedError, type PreviousUpload } from 'tus-js-client';

const MiB = 1024 * 1024;
/** S3 takes at most 10,000 parts of at least 5 MiB (but the last). */
const MIN_PART = 8 * MiB;
const MAX_PARTS = 10_000;
/** Parts sent at once, and part URLs signed in one request. */
const PARALLEL = 3;
const SIGN_BATCH = 12;
/** A request that gets no answer, or one that may pass (5xx, 429), is tried again after these delays (ms). */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10_000];
const storage = defaultOptions.urlStorage;

export interface DirectOptions {
  /** The server's `/s3/multipart` URL. */
  api: string;
  /** The tus collection URL: a direct upload's URL is `<endpoint><id>`, as a tus upload's. */
  endpoint: string;
  metadata: Record<string, string>;
  /** Read at each request to the server (a token given after a refusal is used by the next). */
  headers(): Record<string, string>;
  onUploadUrlAvailable(): void;
  onProgress(sent: number, total: number): void;
  onSuccess(): void;
  onError(error: Error): void;
}

/** What the page keeps to resume a direct upload: Companion's ids. */
interface DirectIds {
  uploadId: string;
  key: string;
}
type StoredUpload = PreviousUpload & { direct?: DirectIds };
interface ListedPart {
  PartNumber: number;
  Size: number;
  ETag: string;
}

/** An answer that is not a success, shaped as tus-js-client's errors so the page shows it the same way. */
function answered(status: number | undefined, body: string, what: string): Error {
  const error = new Error(status === undefined ? `${what}: the server cannot be reached` : `${what}: ${status} ${body}`) as DetailedError;
  return Object.assign(error, {
    originalRequest: {},
    originalResponse: status === undefined ? null : { getStatus: () => status, getBody: () => body },
  });
}

const passing = (status: number | undefined) => status === undefined || status >= 500 || status === 429;

export class DirectUpload {
  url: string | null = null;
  #ids?: DirectIds;
  #storageKey?: string;
  #controller?: AbortController;
  readonly #fingerprint: string;

  constructor(
    readonly file: File,
    readonly options: DirectOptions,
  ) {
    this.#fingerprint = ['tusflow-direct', file.name, file.type, file.size, file.lastModified, options.api].join('-');
  }

  async findPreviousUploads(): Promise<PreviousUpload[]> {
    const found = (await storage.findUploadsByFingerprint(this.#fingerprint)) as StoredUpload[];
    return found.filter((upload) => upload.direct?.uploadId && upload.direct.key);
  }

  resumeFromPreviousUpload(previous: PreviousUpload): void {
    const ids = (previous as StoredUpload).direct;
    if (!ids) return;
    this.#ids = ids;
    this.#storageKey = previous.urlStorageKey;
    this.url = previous.uploadUrl;
  }

  start(): void {
    this.#controller?.abort();
    const controller = new AbortController();
    this.#controller = controller;
    this.#run(controller.signal).catch((error: unknown) => {
      if (!controller.signal.aborted) this.options.onError(error instanceof Error ? error : new Error(String(error)));
    });
  }

  /** Stops sending; with `terminate`, also removes the upload from the server (and S3). */
  async abort(terminate = false): Promise<void> {
    this.#controller?.abort();
    if (!terminate) return;
    if (this.#storageKey) await storage.removeUpload(this.#storageKey);
    if (this.url) await fetch(this.url, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', ...this.options.headers() } }).catch(() => {});
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { file, options } = this;
    if (!this.#ids) {
      const body = JSON.stringify({ filename: file.name, type: file.type || 'application/octet-stream', metadata: options.metadata });
      const ids = (await this.#json('POST', options.api, signal, body)) as DirectIds;
      this.#ids = ids;
      this.url = `${options.endpoint}${ids.uploadId}`;
      const stored = { size: file.size, metadata: options.metadata, creationTime: new Date().toString(), uploadUrl: this.url, parallelUploadUrls: null, direct: ids };
      this.#storageKey = await storage.addUpload(this.#fingerprint, stored as unknown as PreviousUpload);
      options.onUploadUrlAvailable();
    }
    const { uploadId, key } = this.#ids;
    const query = `key=${encodeURIComponent(key)}`;
    const partSize = Math.max(MIN_PART, Math.ceil(file.size / MAX_PARTS));
    const count = Math.max(1, Math.ceil(file.size / partSize));
    const sizeOf = (n: number) => Math.min(partSize, file.size - (n - 1) * partSize);
    // What S3 holds already (a resumed upload): parts of the right size count, the rest is sent again.
    const listed = await this.#listed(`${options.api}/${uploadId}?${query}`, signal);
    if (listed === 'finished') return this.#done();
    const etags = new Map(listed.filter((p) => p.PartNumber <= count && p.Size === sizeOf(p.PartNumber)).map((p) => [p.PartNumber, p.ETag]));
    const missing = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !etags.has(n));
    // Bytes of each part in flight, for the progress: what S3 holds plus what is on its way.
    const loaded = new Map<number, number>();
    let held = [...etags.keys()].reduce((sum, n) => sum + sizeOf(n), 0);
    const progress = () => options.onProgress(held + [...loaded.values()].reduce((a, b) => a + b, 0), file.size);
    progress();
    for (let at = 0; at < missing.length; at += SIGN_BATCH) {
      const batch = missing.slice(at, at + SIGN_BATCH);
      // Signed in one request; sent PARALLEL at a time (the URLs last 15 minutes).
      const { presignedUrls } = (await this.#json('GET', `${options.api}/${uploadId}/batch?${query}&partNumbers=${batch.join(',')}`, signal)) as {
        presignedUrls: Record<string, string>;
      };
      const queue = [...batch];
      const worker = async () => {
        for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
          const part = n;
          const start = (part - 1) * partSize;
          const etag = await this.#put(presignedUrls[part]!, file.slice(start, start + sizeOf(part)), signal, (bytes) => {
            loaded.set(part, bytes);
            progress();
          });
          loaded.delete(part);
          etags.set(part, etag);
          held += sizeOf(part);
          progress();
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL, batch.length) }, worker));
    }
    const parts = [...etags.entries()].sort(([a], [b]) => a - b).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
    await this.#json('POST', `${options.api}/${uploadId}/complete?${query}`, signal, JSON.stringify({ parts }));
    await this.#done();
  }

  /**
   * The parts S3 holds; 'finished' when the upload was completed meanwhile (a completion whose
   * answer was lost). One that is gone (removed, or aborted by the server's cleanup) leaves the
   * unfinished uploads, and fails.
   */
  async #listed(url: string, signal: AbortSignal): Promise<ListedPart[] | 'finished'> {
    try {
      return (await this.#json('GET', url, signal)) as ListedPart[];
    } catch (error) {
      const status = (error as DetailedError).originalResponse?.getStatus();
      if (status === 404 || status === 410) await this.#forget();
      if (status === 400 && (await this.#finished(signal))) return 'finished';
      throw error;
    }
  }

  /** Whether the server has the upload finished (its tus HEAD: offset = length). */
  async #finished(signal: AbortSignal): Promise<boolean> {
    if (!this.url) return false;
    const res = await fetch(this.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...this.options.headers() }, signal, cache: 'no-store' }).catch(
      () => undefined,
    );
    const length = res?.headers.get('Upload-Length');
    return res?.ok === true && length !== null && length !== undefined && res.headers.get('Upload-Offset') === length;
  }

  async #done(): Promise<void> {
    await this.#forget();
    this.options.onProgress(this.file.size, this.file.size);
    this.options.onSuccess();
  }

  /** Removes the upload from the page's unfinished ones. */
  async #forget(): Promise<void> {
    if (this.#storageKey) await storage.removeUpload(this.#storageKey);
    this.#storageKey = undefined;
  }

  /** A JSON request to the server, tried again while the answer may pass. */
  async #json(method: string, url: string, signal: AbortSignal, body?: string): Promise<unknown> {
    const headers: Record<string, string> = { ...this.options.headers(), ...(body ? { 'Content-Type': 'application/json' } : {}) };
    return this.#retrying(`${method} ${new URL(url).pathname}`, signal, async () => {
      const res = await fetch(url, { method, headers, body, signal, cache: 'no-store' });
      if (!res.ok) return { status: res.status, body: (await res.text()).trim() };
      return { value: await res.json() };
    });
  }

  /** PUTs a part straight to S3 with its presigned URL; resolves with its ETag. */
  #put(url: string, part: Blob, signal: AbortSignal, progress: (bytes: number) => void): Promise<string> {
    return this.#retrying('sending a part to S3', signal, () => {
      const xhr = new XMLHttpRequest();
      return new Promise((resolve) => {
        const onAbort = () => xhr.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        xhr.upload.onprogress = (event) => progress(event.loaded);
        xhr.onloadend = () => {
          signal.removeEventListener('abort', onAbort);
          const etag = xhr.getResponseHeader('ETag');
          if (xhr.status >= 200 && xhr.status < 300 && etag) resolve({ value: etag });
          // Stored but its ETag unreadable: the bucket's CORS rule does not expose it (tusflow s3-cors).
          else if (xhr.status >= 200 && xhr.status < 300)
            resolve({ status: 502, body: "S3 stored the part but its ETag cannot be read: the bucket's CORS rule must expose ETag" });
          else resolve({ status: xhr.status || undefined, body: xhr.responseText.slice(0, 300) });
        };
        xhr.open('PUT', url);
        xhr.send(part);
      });
    });
  }

  async #retrying<T>(what: string, signal: AbortSignal, attempt: () => Promise<{ value: T } | { status?: number; body: string }>): Promise<T> {
    for (let i = 0; ; i++) {
      let result: { value: T } | { status?: number; body: string };
      try {
        result = await attempt();
      } catch (error) {
        if (signal.aborted) throw error;
        result = { body: String(error) };
      }
      if ('value' in result) return result.value;
      if (signal.aborted) throw new Error('aborted');
      if (!passing(result.status) || i >= RETRY_DELAYS.length) throw answered(result.status, result.body, what);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS[i]));
    }
  }
}
