import { TusError } from '../../protocol/errors.ts';
import { PartBuffers } from './buffers.ts';

export const MiB = 1024 * 1024;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;

/**
 * The part size for an upload: the preferred size, grown (in whole MiB) when the length needs it so
 * the upload fits in 10,000 parts. Fixed per upload, because every part but the last must have the
 * same size (R2 refuses anything else) and part numbers are derived from offsets.
 */
export function partSizeFor(length: number | undefined, preferred: number): number {
  if (length === undefined) return preferred;
  if (length > MAX_OBJECT_SIZE) throw new TusError('TOO_LARGE', 'S3 objects end at 5 TiB');
  const needed = Math.ceil(Math.ceil(length / MAX_PARTS) / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(preferred, needed));
}

export interface PartsOptions {
  partSize: number;
  /** The number the first full part gets. */
  firstPart: number;
  /** Bytes carried over from the previous request (its incomplete part), placed before the body. */
  carry?: Uint8Array;
  /** Parts being sent at once; reading the body waits while this many are in flight. */
  parallel: number;
  /** Where part buffers come from (shared by a store's uploads); default: a pool of this call's own. */
  buffers?: PartBuffers;
  send(partNumber: number, bytes: Uint8Array): Promise<void>;
  /**
   * Sends a part while its bytes still arrive (the request body is the part's stream, of a known
   * size), so receiving and uploading overlap. Used for parts the body is known to fill; if it
   * fails, the part is sent again from its buffered copy with `send`.
   */
  stream?(partNumber: number, body: ReadableStream<Uint8Array>, size: number): Promise<void>;
  /** How many bytes the body will bring, when known (Content-Length). */
  expected?: number;
  /**
   * The body's chunks are this call's alone (the runtime's HTTP server made them; no caller reads
   * them again): each is freed as soon as it is copied into a part. Left to the garbage collector,
   * chunks arriving at hundreds of MiB/s pile up by tens of MiB before it runs.
   */
  release?: boolean;
}

export interface PartsResult {
  /** Bytes read from the body. */
  received: number;
  /** The number the next part would get. */
  nextPart: number;
  /** What is left after the last full part (carry included): shorter than a part; a copy. */
  tail: Uint8Array;
}

const NONE = new Uint8Array(0);

/**
 * Cuts a stream into fixed-size parts and sends each as soon as it is full (or, with `stream`, as
 * soon as it starts), several at once, with backpressure on the stream: this call holds at most
 * parallel + 1 buffers whatever the body's size — a streamed part is fed views of its own buffer,
 * the copy kept for a retry. If the stream or a send fails, every send already started is settled
 * before the error is thrown, so nothing of this call is still running when the caller retries.
 */
export async function sendParts(body: ReadableStream<Uint8Array>, o: PartsOptions): Promise<PartsResult> {
  const buffers = o.buffers ?? new PartBuffers(Number.POSITIVE_INFINITY);
  // The buffer being filled; NONE while the next one is awaited.
  let buffer = await buffers.take(o.partSize);
  let filled = 0;
  let received = 0;
  let placed = 0; // body bytes copied into part buffers so far
  let partNumber = o.firstPart;
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let tail = NONE;

  if (o.carry) {
    buffer.set(o.carry);
    filled = o.carry.byteLength;
  }

  const track = (sending: Promise<void>) => {
    inflight.add(sending);
    void sending.then(() => inflight.delete(sending));
  };

  // The part being streamed: its request's body, and the request itself. Once the request has
  // failed (fetch may have cancelled the body), the bytes only go to the buffer, for the resend.
  let live: { feed: ReadableStreamDefaultController<Uint8Array>; request: Promise<void>; tracked: Promise<void>; failed: boolean } | undefined;
  const feed = (write: (c: ReadableStreamDefaultController<Uint8Array>) => void) => {
    if (!live || live.failed) return;
    try {
      write(live.feed);
    } catch {
      live.failed = true;
    }
  };
  const startStream = () => {
    // Only the body's last full part is streamed: earlier ones overlap with the reading of the
    // parts after them anyway (and buffered sends are the faster path), but the last one is what
    // the client waits for.
    const remaining = o.expected === undefined ? 0 : o.expected - placed;
    const needed = o.partSize - filled;
    if (!o.stream || remaining < needed || remaining - needed >= o.partSize) return;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const partBody = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    if (filled > 0) controller.enqueue(buffer.subarray(0, filled));
    const request = o.stream(partNumber, partBody, o.partSize);
    const entry = { feed: controller, request, tracked: request.catch(() => void (entry.failed = true)), failed: false };
    track(entry.tracked); // in flight from its first byte
    live = entry;
  };

  const flush = async () => {
    if (partNumber > MAX_PARTS) throw new TusError('TOO_LARGE', 'the upload would need more than 10,000 parts');
    const full = buffer;
    const number = partNumber++;
    let sending: Promise<void>;
    if (live) {
      feed((c) => c.close());
      inflight.delete(live.tracked);
      sending = live.request.catch(() => o.send(number, full));
      live = undefined;
    } else sending = o.send(number, full);
    track(sending.then(() => {}, (error: unknown) => void (failure ??= { error })).finally(() => buffers.give(full)));
    buffer = NONE;
    filled = 0;
    while (inflight.size >= o.parallel) await Promise.race(inflight);
    if (failure) throw failure.error;
    buffer = await buffers.take(o.partSize);
    if (partNumber <= MAX_PARTS) startStream();
  };

  try {
    startStream();
    for await (const chunk of body) {
      received += chunk.byteLength;
      for (let at = 0; at < chunk.byteLength; ) {
        const n = Math.min(o.partSize - filled, chunk.byteLength - at);
        buffer.set(chunk.subarray(at, at + n), filled);
        feed((c) => c.enqueue(buffer.subarray(filled, filled + n)));
        filled += n;
        placed += n;
        at += n;
        if (filled === o.partSize) await flush();
      }
      if (o.release) release(chunk);
    }
  } finally {
    // A part the body did not fill is not sent: its request fails for want of bytes, and the
    // bytes it had stay in the tail.
    feed((c) => c.error(new Error('the body ended before the part was full')));
    await Promise.allSettled(inflight);
    tail = buffer.slice(0, filled);
    if (buffer !== NONE) buffers.give(buffer);
  }
  if (failure) throw failure.error;
  return { received, nextPart: partNumber, tail };
}

/** Frees a chunk's memory now: transferring its buffer detaches it (only a chunk that is its whole buffer). */
function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength) buffer.transfer(0);
}
