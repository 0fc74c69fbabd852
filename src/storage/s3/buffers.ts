import { metrics } from '../../observability/metrics.ts';
import { TusError } from '../../protocol/errors.ts';

/**
 * Part buffers shared by every upload of a store, within a byte budget. A PATCH that needs a buffer
 * while the budget is spent waits (first come, first served) — its request body is not read
 * meanwhile, so the client is slowed by TCP instead of the server growing with the number of
 * uploads. Buffers are reused, so a stream of PATCHes allocates nothing once warm.
 */
export class PartBuffers {
  readonly #budget: number;
  readonly #maxWaitMs: number;
  /** Bytes in buffers handed out or kept for reuse. */
  #held = 0;
  readonly #free = new Map<number, Uint8Array<ArrayBuffer>[]>();
  readonly #waiting: (() => void)[] = [];

  /**
   * `maxWaitMs` bounds a wait: clients that hold buffers while trickling their bytes must not stall
   * every other upload forever. Past it the PATCH fails with 503 BUSY and its client retries.
   */
  constructor(budget: number, maxWaitMs = 30_000) {
    this.#budget = budget;
    this.#maxWaitMs = maxWaitMs;
  }

  /** A buffer of `size` bytes (contents undefined), once the budget allows it. */
  async take(size: number): Promise<Uint8Array<ArrayBuffer>> {
    let waitedSince: number | undefined;
    for (let turn = 0; ; turn++) {
      let buffer = this.#free.get(size)?.pop();
      if (!buffer) {
        // Room is made by dropping free buffers of other sizes; a part larger than the whole
        // budget is still given when nothing else is out, so no upload waits forever.
        if (this.#held + size > this.#budget) this.#dropFree();
        if (this.#held + size <= this.#budget || this.#held === 0) {
          this.#held += size;
          metrics.set('tusflow_part_buffer_bytes', {}, this.#held);
          buffer = new Uint8Array(size);
        }
      }
      if (buffer) {
        if (waitedSince !== undefined) metrics.observe('tusflow_part_buffer_wait_seconds', {}, (performance.now() - waitedSince) / 1000);
        return buffer;
      }
      waitedSince ??= performance.now();
      await this.#wait(turn > 0, this.#maxWaitMs - (performance.now() - waitedSince));
    }
  }

  /** Until a buffer comes back; a waiter woken but beaten to it waits again at the front. */
  #wait(front: boolean, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const at = this.#waiting.indexOf(wake);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(new TusError('BUSY'));
      }, Math.max(0, ms));
      if (front) this.#waiting.unshift(wake);
      else this.#waiting.push(wake);
    });
  }

  /** Returns a buffer taken here; it may be handed out again at once. */
  give(buffer: Uint8Array<ArrayBuffer>): void {
    const list = this.#free.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.#free.set(buffer.byteLength, list);
    this.#waiting.shift()?.();
  }

  #dropFree(): void {
    for (const [size, list] of this.#free) this.#held -= size * list.length;
    this.#free.clear();
    metrics.set('tusflow_part_buffer_bytes', {}, this.#held);
  }
}
