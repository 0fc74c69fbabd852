import { TusError, type ErrorCode } from '../protocol/errors.ts';
import { createHasher, toBase64 } from '../protocol/checksum.ts';
import type { Checksum } from '../protocol/headers.ts';

export interface MeteredBody {
  stream: ReadableStream<Uint8Array>;
  /** Throws CHECKSUM_MISMATCH when the digest of everything read differs from the client's. */
  verify(): void;
  /** True when the client went away or the request was cut before the body ended. */
  readonly interrupted: boolean;
}

/**
 * Wraps a request body for a data store: stops at `limit` bytes (what follows would pass the upload's
 * length), hashes as it goes, and ends early when `signal` aborts. A client that disconnects ends the
 * stream normally, so the store keeps what arrived — unless a checksum was sent, because a partial
 * body can never match it; then the stream errors and the store discards the write.
 */
export function meterBody(
  source: ReadableStream<Uint8Array>,
  options: { limit: number; overflow: ErrorCode; checksum?: Checksum; signal: AbortSignal },
): MeteredBody {
  const { limit, overflow, checksum, signal } = options;
  const hasher = checksum && createHasher(checksum.algorithm);
  const reader = source.getReader();
  let received = 0;
  let interrupted = false;
  // Cancelling the reader settles a pending read at once. (Racing each read against a long-lived
  // abort promise would instead pin every chunk read in memory until the request ends.)
  const onAbort = () => {
    interrupted = true;
    reader.cancel(signal.reason).catch(() => {});
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });

  const end = (controller: ReadableStreamDefaultController<Uint8Array>, cause?: unknown) => {
    signal.removeEventListener('abort', onAbort);
    if (interrupted && hasher) controller.error(new TusError('BODY_INTERRUPTED', String(cause ?? signal.reason)));
    else controller.close();
  };

  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (error) {
          interrupted = true; // the client went away
          return end(controller, error);
        }
        if (result.done) return end(controller);
        const chunk = result.value;
        if (received + chunk.byteLength > limit) {
          signal.removeEventListener('abort', onAbort);
          reader.cancel().catch(() => {});
          return controller.error(new TusError(overflow));
        }
        received += chunk.byteLength;
        hasher?.update(chunk);
        controller.enqueue(chunk);
      },
      cancel(reason) {
        signal.removeEventListener('abort', onAbort);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );

  return {
    stream,
    get interrupted() {
      return interrupted;
    },
    verify() {
      if (!hasher || !checksum) return;
      const expected = checksum.digest.replace(/=+$/, '');
      if (toBase64(hasher.digest()).replace(/=+$/, '') !== expected) throw new TusError('CHECKSUM_MISMATCH');
    },
  };
}
