import type { HeldBytes, PartBuffers } from './buffers.ts';
import type { Sha256 } from './integrity.ts';

/** The bytes waiting for the next PATCH of one upload, and the segment objects that hold them. */
export interface Tail {
  /** The upload offset these bytes end at. */
  offset: number;
  /** The bytes, in slabs of the store's part memory (counted in its budget); none when empty. */
  held?: HeldBytes;
  /** The running SHA-256 of `held` (with S3_CHECKSUM=sha256), for the write that fills its part. */
  hash?: Sha256;
  /** Keys of the segment objects that hold `bytes`, in order. */
  segments: string[];
  /** Segments this write replaced: deleted once its offset is known to be saved. */
  obsolete: string[];
  /** Read back from S3 rather than remembered: the next write rewrites them as one segment. */
  consolidate?: boolean;
}

/**
 * Recently written tails, so that the next PATCH of an upload, usually sent to the same instance,
 * starts without reading its incomplete part back from S3. Bounded in bytes, oldest out first. An
 * entry is only used when its offset is the upload's offset, so a tail that another instance has
 * moved past is never mistaken for current. The bytes are slabs of the part memory, so they count in
 * its budget: when a PATCH finds it spent, the oldest tails give theirs back (their bytes are in
 * their segment objects: the next PATCH of that upload reads them back), and while PATCHes wait for
 * memory no new tail is kept.
 */
export class TailCache {
  readonly #entries = new Map<string, Tail>();
  #bytes = 0;

  constructor(
    readonly buffers: PartBuffers,
    readonly maxBytes: number,
    readonly maxEntries = 10_000,
  ) {
    buffers.reclaim = () => this.#evictOldest();
  }

  /** The upload's tail if it ends at `offset`: the caller owns its memory then (and gives it back). */
  take(id: string, offset: number): Tail | undefined {
    const tail = this.#entries.get(id);
    if (!tail) return undefined;
    const current = tail.offset === offset;
    this.#drop(id, tail, !current);
    return current ? tail : undefined;
  }

  /** Keeps the tail (taking over its memory), or gives its memory back at once. */
  put(id: string, tail: Tail): void {
    const old = this.#entries.get(id);
    if (old) this.#drop(id, old, true);
    const size = tail.held?.length ?? 0;
    this.#entries.set(id, tail);
    this.#bytes += size;
    if (size > this.maxBytes || (size > 0 && this.buffers.waiting > 0)) return void this.#drop(id, tail, true);
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes && this.#entries.size <= this.maxEntries) break;
      this.#drop(oldest, entry, true);
    }
  }

  /** Gives back the memory of the oldest tail that has any. */
  #evictOldest(): boolean {
    for (const [id, entry] of this.#entries) {
      if (!entry.held) continue;
      this.#drop(id, entry, true);
      return true;
    }
    return false;
  }

  #drop(id: string, tail: Tail, release: boolean): void {
    this.#entries.delete(id);
    this.#bytes -= tail.held?.length ?? 0;
    if (release) tail.held?.memory.release();
  }
}
