import { TusError, type ErrorCode } from '../model/errors.ts';
import { createHasher } from '../model/checksum.ts';
import { toBase64 } from '../model/encoding.ts';
import type { Checksum } from '../model/checksum.ts';
import type { RunningHash } from '../model/digest.ts';

export interface MeteredBody {
  stream: ReadableStream<Uint8Array>;
  /**
   * Throws CHECKSUM_MISMATCH when the digest of everything read differs from the client's, and
   * BODY_INTERRUPTED when a body with a checksum was cut.
   */
  verify(): void;
  /** True when the client went away or the request was cut before the body ended. */
  readonly interrupted: boolean;
  /** Bytes read from the client so far. */
  readonly received: number;
  /**
   * The whole-upload digest over exactly the upload's first `offset` bytes, for a store that kept
   * less than it read (a body cut while it waited for memory leaves the rest of a chunk unstored):
   * rebuilt from the state before the last chunk and that chunk's first bytes. Undefined without a
   * running digest, or for an offset it cannot rebuild.
   */
  runningAt(offset: number): RunningHash | undefined;
  /**
   * Aborts when the body is cut: `signal` aborted, the client went away (noticed even while nothing
   * reads, as when the store waits for memory), or it sent nothing for the idle time.
   */
  readonly signal: AbortSignal;
}

export interface MeterOptions {
  limit: number;
  overflow: ErrorCode;
  checksum?: Checksum;
  /** The upload's whole-upload digest, fed every byte that passes (a cut body still counts). */
  running?: RunningHash;
  signal: AbortSignal;
  /**
   * The request's own signal, which aborts when the client goes away: noticed even while nothing
   * reads (a store waiting for memory), when a body still has bytes queued.
   */
  clientSignal?: AbortSignal;
  /** A read that brings no byte for this long cuts the body, as a client that disconnects does. */
  idleTimeoutMs?: number;
}

/**
 * Wraps a request body for a data store: stops at `limit` bytes (what follows would pass the upload's
 * length), hashes as it goes, and ends early when `signal` aborts, the client goes away, or it sends
 * nothing for `idleTimeoutMs`. A body cut so ends the stream normally, so the store keeps what
 * arrived — unless a checksum was sent, because a partial body can never match it; then the stream
 * errors (and `verify` throws, for a store that stopped reading first) and the store discards the write.
 */
export function meterBody(source: ReadableStream<Uint8Array>, options: MeterOptions): MeteredBody {
  const { limit, overflow, checksum, running, signal, clientSignal, idleTimeoutMs } = options;
  const hasher = checksum && createHasher(checksum.algorithm);
  // With a client signal to notice a client that goes away, the reader is taken at the first read,
  // not before: once a body has a reader the runtime reads it ahead into memory (Bun: about 2 MiB
  // per request), while a store that waits for memory first leaves it in the socket, so TCP slows
  // the client instead. Without one, only the reader notices, so it is taken at once.
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const attach = () => {
    if (reader) return reader;
    reader = source.getReader();
    // The runtime errors the request body when the client goes away (if no bytes are still queued).
    reader.closed.catch((error: unknown) => cut(error));
    return reader;
  };
  const stop = (reason?: unknown) => (reader ? reader.cancel(reason) : source.cancel(reason));
  let received = 0;
  // The running digest before the last chunk read, and that chunk (see `runningAt`).
  let beforeLast: RunningHash | undefined;
  let lastChunk: Uint8Array | undefined;
  let lastLength = 0;
  let interrupted = false;
  let cutReason: unknown;
  const cutting = new AbortController();
  // Cancelling the reader settles a pending read at once. (Racing each read against a long-lived
  // abort promise would instead pin every chunk read in memory until the request ends.)
  const cut = (reason: unknown) => {
    if (cutting.signal.aborted) return;
    interrupted = true;
    cutReason = reason;
    cutting.abort(reason);
    stop(reason).catch(() => {});
  };
  const signals = clientSignal ? [signal, clientSignal] : [signal];
  const onAbort = (event: Event) => cut((event.target as AbortSignal).reason);
  const unwatch = () => {
    for (const s of signals) s.removeEventListener('abort', onAbort);
  };
  for (const s of signals) {
    if (s.aborted) cut(s.reason);
    else s.addEventListener('abort', onAbort, { once: true });
  }
  if (!clientSignal) attach();

  // Idle time counts only while a read waits for the client (not while the store is busy and reads
  // nothing); one timer per idle period, not one per chunk.
  let readingSince: number | undefined;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  const watchIdle = () => {
    idleTimer = undefined;
    if (readingSince === undefined || idleTimeoutMs === undefined) return;
    const idle = performance.now() - readingSince;
    if (idle >= idleTimeoutMs) cut(new Error(`no byte of the body arrived for ${idleTimeoutMs / 1000} s`));
    else idleTimer = setTimeout(watchIdle, idleTimeoutMs - idle);
  };

  const end = (controller: ReadableStreamDefaultController<Uint8Array>, cause?: unknown) => {
    unwatch();
    clearTimeout(idleTimer);
    if (interrupted && hasher) controller.error(new TusError('BODY_INTERRUPTED', String(cause ?? cutReason)));
    else controller.close();
  };

  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
        readingSince = performance.now();
        if (idleTimeoutMs !== undefined) idleTimer ??= setTimeout(watchIdle, idleTimeoutMs);
        try {
          result = await attach().read();
        } catch (error) {
          cut(error); // the client went away
          return end(controller, error);
        } finally {
          readingSince = undefined;
        }
        if (result.done) return end(controller);
        const chunk = result.value;
        if (received + chunk.byteLength > limit) {
          unwatch();
          clearTimeout(idleTimer);
          stop().catch(() => {});
          return controller.error(new TusError(overflow));
        }
        received += chunk.byteLength;
        hasher?.update(chunk);
        if (running) {
          beforeLast = running.clone();
          lastChunk = chunk;
          lastLength = chunk.byteLength;
          running.update(chunk);
        }
        controller.enqueue(chunk);
      },
      cancel(reason) {
        unwatch();
        clearTimeout(idleTimer);
        return stop(reason);
      },
    },
    { highWaterMark: 0 },
  );

  return {
    stream,
    get interrupted() {
      return interrupted;
    },
    get received() {
      return received;
    },
    signal: cutting.signal,
    runningAt(offset) {
      if (!running || offset === running.hashed) return running;
      if (!beforeLast || !lastChunk || offset < beforeLast.hashed || offset > running.hashed) return undefined;
      // A chunk the store freed (its buffer detached) cannot be hashed again.
      if (lastChunk.byteLength !== lastLength) return undefined;
      const rebuilt = beforeLast.clone();
      rebuilt.update(lastChunk.subarray(0, offset - beforeLast.hashed));
      return rebuilt;
    },
    verify() {
      if (!hasher || !checksum) return;
      if (interrupted) throw new TusError('BODY_INTERRUPTED', String(cutReason ?? 'the body was cut'));
      const expected = checksum.digest.replace(/=+$/, '');
      if (toBase64(hasher.digest()).replace(/=+$/, '') !== expected) throw new TusError('CHECKSUM_MISMATCH');
    },
  };
}
