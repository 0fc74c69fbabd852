/** The bytes waiting for the next PATCH of one upload, and the segment objects that hold them. */
export interface Tail {
  /** The upload offset these bytes end at. */
  offset: number;
  bytes: Uint8Array;
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
 * moved past is never mistaken for current.
 */
export class TailCache {
  readonly #entries = new Map<string, Tail>();
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxEntries = 10_000,
  ) {}

  take(id: string, offset: number): Tail | undefined {
    const tail = this.#entries.get(id);
    if (!tail) return undefined;
    this.#drop(id, tail);
    return tail.offset === offset ? tail : undefined;
  }

  put(id: string, tail: Tail): void {
    const old = this.#entries.get(id);
    if (old) this.#drop(id, old);
    if (tail.bytes.byteLength > this.maxBytes) return;
    this.#entries.set(id, tail);
    this.#bytes += tail.bytes.byteLength;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes && this.#entries.size <= this.maxEntries) break;
      this.#drop(oldest, entry);
    }
  }

  #drop(id: string, tail: Tail): void {
    this.#entries.delete(id);
    this.#bytes -= tail.bytes.byteLength;
  }
}
