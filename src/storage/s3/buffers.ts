import { metrics } from '../../observability/metrics.ts';
import { TusError } from '../../protocol/errors.ts';

interface Waiter {
  size: number;
  since: number;
  resolve(buffer: Uint8Array<ArrayBuffer>): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Part buffers shared by every upload of a store, within a byte budget. A PATCH that needs a buffer
 * while the budget is spent waits, first come first served — its request body is not read
 * meanwhile, so the client is slowed by TCP instead of the server growing with the number of
 * uploads. Buffers are reused, so a stream of PATCHes allocates nothing once warm.
 */
export class PartBuffers {
  readonly #budget: number;
  readonly #maxWaitMs: number;
  /** Bytes in buffers handed out or kept for reuse. */
  #held = 0;
  readonly #free = new Map<number, Uint8Array<ArrayBuffer>[]>();
  readonly #waiting: Waiter[] = [];

  /**
   * `maxWaitMs` bounds a wait: clients that hold buffers while trickling their bytes must not stall
   * every other upload forever. Past it the PATCH fails with 503 BUSY and its client retries.
   */
  constructor(budget: number, maxWaitMs = 30_000) {
    this.#budget = budget;
    this.#maxWaitMs = maxWaitMs;
  }

  /** A buffer of `size` bytes (contents undefined), once the budget allows it. */
  take(size: number): Promise<Uint8Array<ArrayBuffer>> {
    const ready = this.#waiting.length === 0 ? this.#grab(size) : undefined;
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        size,
        since: performance.now(),
        resolve,
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
          reject(new TusError('BUSY'));
          this.#serve(); // it may have been what held the others back
        }, this.#maxWaitMs),
      };
      this.#waiting.push(waiter);
    });
  }

  /** Returns a buffer taken here; it may be handed out again at once. */
  give(buffer: Uint8Array<ArrayBuffer>): void {
    const list = this.#free.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.#free.set(buffer.byteLength, list);
    this.#serve();
  }

  /** Hands out buffers to waiters in order, for as long as the first one can be served. */
  #serve(): void {
    for (let first = this.#waiting[0]; first; first = this.#waiting[0]) {
      const buffer = this.#grab(first.size);
      if (!buffer) return;
      this.#waiting.shift();
      clearTimeout(first.timer);
      metrics.observe('tusflow_part_buffer_wait_seconds', {}, (performance.now() - first.since) / 1000);
      first.resolve(buffer);
    }
  }

  /**
   * A free buffer of that size, or a new one if the budget has room (made by dropping free buffers
   * of other sizes). A part larger than the whole budget is given when nothing else is held, so
   * no upload waits forever.
   */
  #grab(size: number): Uint8Array<ArrayBuffer> | undefined {
    const reused = this.#free.get(size)?.pop();
    if (reused) return reused;
    if (this.#held + size > this.#budget) {
      for (const [freeSize, list] of this.#free) this.#held -= freeSize * list.length;
      this.#free.clear();
    }
    if (this.#held + size > this.#budget && this.#held > 0) return undefined;
    this.#held += size;
    metrics.set('tusflow_part_buffer_bytes', {}, this.#held);
    return new Uint8Array(size);
  }
}
