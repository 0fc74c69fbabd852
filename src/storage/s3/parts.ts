import { TusError } from '../../model/errors.ts';
import { type HeldBytes, PartBuffers, SLAB_SIZE } from './buffers.ts';
import { freeChunk, joinBytes } from './bytes.ts';
import type { Sha256, Sha256Factory } from './integrity.ts';

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
  /** Bytes carried over from the previous request (its incomplete part), placed before the body (not copied). */
  carry?: Uint8Array;
  /**
   * Bytes carried over in slabs of `buffers` (instead of `carry`): the first part goes on filling
   * them, so they count in the budget as that part's. This call owns their memory from here.
   */
  held?: HeldBytes;
  /** The running SHA-256 of `held`'s bytes, from the write that left them (see PartsResult): they are not hashed again. */
  heldHash?: Sha256;
  /** Keep what is left after the last full part in its slabs and return it as `held` (the caller gives it back), not copied. */
  keepTail?: boolean;
  /** Parts being sent at once; reading the body waits while this many are in flight. */
  parallel: number;
  /** Where part memory comes from (shared by a store's uploads); default: a pool of this call's own. */
  buffers?: PartBuffers;
  /**
   * Sends a full part, given as views of its bytes in order (the carry, then the slabs), with their
   * SHA-256 when `hash` is given.
   */
  send(partNumber: number, bytes: Uint8Array[], sha256?: Uint8Array): Promise<void>;
  /**
   * Hashes each part's bytes as they are copied into its slabs, so that its SHA-256 is ready when
   * it fills (no second pass over the part, no copy of it).
   */
  hash?: Sha256Factory;
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
  /**
   * Aborts when the request is cut (client gone, shutdown, lock takeover): a wait for memory ends at
   * once, the rest of the body is left unread, and the call ends as if the body had ended there.
   */
  signal?: AbortSignal;
}

export interface PartsResult {
  /** Bytes taken from the body into parts. */
  received: number;
  /** The number the next part would get. */
  nextPart: number;
  /** What is left after the last full part (carry included): shorter than a part; a copy (empty with `keepTail`). */
  tail: Uint8Array;
  /** With `keepTail`: the same bytes in their slabs, or undefined when there are none. */
  held?: HeldBytes;
  /**
   * With `hash`: the SHA-256 of the held bytes as they arrived, not finished — digested when they
   * are sent as the last part, or continued by the next write that fills their part.
   */
  heldHash?: Sha256;
}

const NONE = new Uint8Array(0);

/**
 * Cuts a stream into fixed-size parts and sends each as soon as it is full (or, with `stream`, as
 * soon as it starts), several at once, with backpressure on the stream. A part is filled slab by
 * slab, each taken from `buffers` only when a byte needs it (the first before the body is read), so
 * a body that stalls holds only what it has sent and one slab; this call holds at most parallel + 1 parts whatever the body's size — a streamed
 * part is fed views of its own slabs, kept for a retry. If the stream or a send fails, every send
 * already started is settled before the error is thrown, so nothing of this call is still running
 * when the caller retries.
 */
export async function sendParts(body: ReadableStream<Uint8Array>, o: PartsOptions): Promise<PartsResult> {
  const buffers = o.buffers ?? new PartBuffers(Number.POSITIVE_INFINITY, { slabSize: Math.min(SLAB_SIZE, o.partSize) });
  // The part being filled: the carry (first part only), then its slabs; `slab` is the last of them,
  // its first `inSlab` bytes set.
  let head = o.carry ?? NONE;
  let received = 0;
  // A part needs no more memory than the bytes the body has still to bring (a small PATCH, a short last part).
  const partMemory = (room: number) => buffers.part(o.expected === undefined ? room : Math.min(room, o.expected - received));
  let memory = o.held ? o.held.memory : partMemory(o.partSize - head.byteLength);
  let slab: Uint8Array<ArrayBuffer> | undefined;
  let inSlab = 0;
  let filled = head.byteLength;
  if (o.held) {
    // The held bytes are the start of the first part: its last slab goes on filling.
    filled = o.held.length;
    const room = o.partSize - filled;
    buffers.resize(memory, Math.ceil((filled + (o.expected === undefined ? room : Math.min(room, o.expected))) / buffers.slabSize));
    slab = memory.slabs.at(-1);
    inSlab = filled - (memory.slabs.length - 1) * buffers.slabSize;
    if (!slab) inSlab = 0;
  }
  let partNumber = o.firstPart;
  const inflight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let tail = NONE;
  let held: HeldBytes | undefined;
  let thrown: { error: unknown } | undefined;
  let heldHash: Sha256 | undefined;

  /** The part's bytes so far, as views of the carry and the slabs (nothing copied). */
  const contents = (): Uint8Array[] => {
    const views = head.byteLength > 0 ? [head] : [];
    const last = memory.slabs.length - 1;
    for (const [i, s] of memory.slabs.entries()) if (i < last || inSlab > 0) views.push(i < last ? s : s.subarray(0, inSlab));
    return views;
  };

  // The part's bytes so far, hashed: those carried in first (unless their hash came with them), then
  // each view as it is copied.
  let hasher = o.hash && o.held && o.heldHash ? o.heldHash : o.hash?.();
  if (hasher && hasher !== o.heldHash) for (const view of contents()) hasher.update(view);

  const track = (sending: Promise<void>) => {
    inflight.add(sending);
    void sending.then(() => inflight.delete(sending));
  };

  // The part being streamed: its request's body, and the request itself. Once the request has
  // failed (fetch may have cancelled the body), the bytes only go to the slabs, for the resend.
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
    const remaining = o.expected === undefined ? 0 : o.expected - received;
    const needed = o.partSize - filled;
    if (!o.stream || remaining < needed || remaining - needed >= o.partSize) return;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const partBody = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    for (const view of contents()) controller.enqueue(view);
    const request = o.stream(partNumber, partBody, o.partSize);
    const entry = { feed: controller, request, tracked: request.catch(() => void (entry.failed = true)), failed: false };
    track(entry.tracked); // in flight from its first byte
    live = entry;
  };

  const flush = async () => {
    if (partNumber > MAX_PARTS) throw new TusError('TOO_LARGE', 'the upload would need more than 10,000 parts');
    const full = memory;
    const bytes = contents();
    const number = partNumber++;
    const sha256 = hasher?.digest();
    hasher = o.hash?.();
    let sending: Promise<void>;
    if (live) {
      feed((c) => c.close());
      inflight.delete(live.tracked);
      sending = live.request.catch(() => o.send(number, bytes, sha256));
      live = undefined;
    } else sending = o.send(number, bytes, sha256);
    track(
      sending
        .then(
          () => {},
          (error: unknown) => void (failure ??= { error }),
        )
        .finally(() => full.release()),
    );
    head = NONE;
    memory = partMemory(o.partSize);
    slab = undefined;
    filled = 0;
    while (inflight.size >= o.parallel) await Promise.race(inflight);
    if (failure) throw failure.error;
    if (partNumber <= MAX_PARTS) startStream();
  };

  // A wait for memory that the request's end cut short: the body ends here.
  const cut = (error: unknown): undefined => {
    if (o.signal?.aborted) return undefined;
    throw error;
  };

  try {
    // Memory first, then the body: a body not yet read stays in its socket while this waits (TCP
    // slows the client), whereas one that is read is buffered by the runtime meanwhile.
    if (!slab && o.expected !== 0) {
      slab = memory.tryTake() ?? (await memory.take(o.signal).catch(cut));
      inSlab = 0;
    }
    if (slab || o.expected === 0) startStream();
    reading: for await (const chunk of slab || o.expected === 0 ? body : []) {
      for (let at = 0; at < chunk.byteLength; ) {
        if (!slab || inSlab === slab.byteLength) {
          slab = memory.tryTake() ?? (await memory.take(o.signal).catch(cut));
          if (!slab) break reading;
          inSlab = 0;
        }
        const n = Math.min(slab.byteLength - inSlab, o.partSize - filled, chunk.byteLength - at);
        const view = slab.subarray(inSlab, inSlab + n);
        view.set(chunk.subarray(at, at + n));
        hasher?.update(view);
        feed((c) => c.enqueue(view));
        inSlab += n;
        filled += n;
        received += n;
        at += n;
        if (filled === o.partSize) await flush();
      }
      if (o.release) freeChunk(chunk);
    }
  } catch (error) {
    thrown = { error };
  } finally {
    // A part the body did not fill is not sent: its request fails for want of bytes, and the
    // bytes it had stay in the tail.
    feed((c) => c.error(new Error('the body ended before the part was full')));
    await Promise.allSettled(inflight);
    if (o.keepTail && !thrown && !failure && head.byteLength === 0 && filled > 0) {
      held = { memory, length: filled };
      heldHash = hasher;
      buffers.hold(memory, Math.ceil(filled / buffers.slabSize));
    } else {
      if (!o.keepTail || head.byteLength > 0) tail = joinBytes(contents());
      memory.release();
    }
  }
  const error = thrown ?? failure;
  if (error) {
    held?.memory.release();
    throw error.error;
  }
  return { received, nextPart: partNumber, tail, held, heldHash };
}
