import * as tus from 'tus-js-client';

export interface ClientUploadOptions {
  chunkSize?: number;
  metadata?: Record<string, string>;
  uploadUrl?: string;
  /** Called with bytes sent; return true to abort the upload there. */
  abortWhen?: (bytesSent: number) => boolean;
  parallelUploads?: number;
  /** 'tus-v1' (default), 'ietf-draft-03' or 'ietf-draft-05' (missing from tus-js-client's types). */
  protocol?: string;
  uploadDataDuringCreation?: boolean;
  headers?: Record<string, string>;
}

/**
 * Uploads with tus-js-client, the client users have. Resolves with the upload URL, and whether it
 * was aborted by `abortWhen` before finishing.
 */
export function tusUpload(endpoint: string, bytes: Uint8Array, options: ClientUploadOptions = {}): Promise<{ url: string; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    let aborted = false;
    const upload = new tus.Upload(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      endpoint,
      uploadUrl: options.uploadUrl,
      chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
      metadata: options.metadata ?? {},
      parallelUploads: options.parallelUploads ?? 1,
      ...(options.protocol ? ({ protocol: options.protocol } as object) : {}),
      uploadDataDuringCreation: options.uploadDataDuringCreation ?? false,
      headers: options.headers ?? {},
      retryDelays: [0, 100, 300],
      storeFingerprintForResuming: false,
      onProgress(sent) {
        if (!aborted && options.abortWhen?.(sent)) {
          aborted = true;
          upload.abort().then(() => resolve({ url: upload.url!, aborted: true }), reject);
        }
      },
      onError: reject,
      onSuccess: () => {
        if (!aborted) resolve({ url: upload.url!, aborted: false });
      },
    });
    upload.start();
  });
}
