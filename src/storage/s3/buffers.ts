import { NO_METRICS, type Metrics } from '../../model/metrics.ts';
import { TusError } from '../../model/errors.ts';

/**
 * The unit in which part memory is taken from the budget: as large as the views Bun's fetch is fed
 * (S3Client's stream chunks), small enough that a connection that stalls holds little.
 */
export const SLAB_SIZE = 256 * 1024;

export interface PartBuffersOptions {
  /**
   * How long one wait for a slab may last (default 30 s): if clients that hold slabs stop sending,
   * the others must not wait forever. Past it the PATCH fails with 503 BUSY and its client retries.
   */
  maxWaitMs?: number;
  /** Bytes per slab (default SLAB_SIZE). */
  slabSize?: number;
  /** How long after taking a slab a part still counts as filled by a client that sends (default 1 s). */
  activeMs?: number;
  /** Where the memory in use and the waits are recorded. */
  metrics?: Metrics;
}

interface Waiter {
  part: PartMemory;
  since: number;
  resolve(slab: Uint8Array<ArrayBuffer>): void;
  timer: ReturnType<typeof setTimeout>;
  /** Stops the wait's timer and its abort listener. */
  detach(): void;
}

/**
 * Memory for the parts of every upload of a store, within a byte budget. A part is filled slab by
 * slab as its body's bytes arrive: a connection holds its full slabs and the one it is filling (the
 * first taken before its body is read), so clients that open PATCHes and stall hold one slab each.
 * Past the budget a PATCH waits for a slab — its request body is not read meanwhile, not even
 * started, so the client is slowed by TCP instead of the server growing with the number of uploads. Slabs are reused, so
 * a stream of PATCHes allocates nothing once warm.
 *
 * Two rules decide who gets a slab:
 * - Safety: parts hold slabs while they wait for more, so a slab is only handed out when every part
 *   being filled can still be completed in some order (the banker's algorithm); otherwise parts that
 *   each hold some of the budget could wait for one another forever. A full part (being sent) counts
 *   as memory coming back.
 * - Admission: a new part starts only when the memory free, less what the parts being actively filled
 *   still need, holds all of it. Under load the budget then goes to a few parts that fill quickly
 *   and are sent, instead of being spread over many half-filled ones (which would leave few parts
 *   in flight to S3). A part whose client has sent nothing for `activeMs` stops counting, so clients
 *   that stall keep no one out for longer than that.
 */
export class PartBuffers {
  readonly slabSize: number;
  /** Slabs the budget allows (the last may be partly over it: the budget is rounded up). */
  readonly #capacity: number;
  readonly #maxWaitMs: number;
  readonly #metrics: Metrics;
  readonly #activeMs: number;
  /** Slabs allocated: handed out, or free for reuse. */
  #allocated = 0;
  #inUse = 0;
  readonly #free: Uint8Array<ArrayBuffer>[] = [];
  /** Parts holding slabs or waiting for one, and how many of them need each number of slabs. */
  readonly #parts = new Set<PartMemory>();
  readonly #totals = new Map<number, number>();
  readonly #waiting: Waiter[] = [];
  /** Serves the line again when the parts that keep new ones out stop counting as active. */
  #recheck: ReturnType<typeof setTimeout> | undefined;
  #serving = false;
  /**
   * Gives back the memory of one holder that can do without it (the oldest tail kept between
   * PATCHes, whose bytes are in S3 anyway), when a slab cannot be handed out; false when none is left.
   */
  reclaim?: () => boolean;

  constructor(budget: number, options: PartBuffersOptions = {}) {
    this.slabSize = options.slabSize ?? SLAB_SIZE;
    this.#metrics = options.metrics ?? NO_METRICS;
    this.#capacity = Math.max(1, Math.ceil(budget / this.slabSize));
    this.#maxWaitMs = options.maxWaitMs ?? 30_000;
    this.#activeMs = options.activeMs ?? 1_000;
  }

  /** Slabs handed out and not yet given back. */
  get inUse(): number {
    return this.#inUse;
  }

  /** PATCHes waiting for a slab. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Sets how many slabs `part` needs when full (a held tail that becomes the start of a part again). */
  resize(part: PartMemory, total: number): void {
    this.#resize(part, Math.max(total, part.slabs.length, 1));
  }

  /**
   * Keeps the first `slabs` slabs of `part` (the bytes a write leaves for the next) and gives back
   * the others; the part then needs nothing more, so it counts as memory that comes back (it is
   * given back when the budget runs short, see `reclaim`).
   */
  hold(part: PartMemory, slabs: number): void {
    if (slabs <= 0) {
      this.release(part);
      return;
    }
    const extra = part.slabs.splice(slabs);
    this.#inUse -= extra.length;
    this.#free.push(...extra);
    this.#resize(part, part.slabs.length);
    this.#serve();
  }

  /** The memory of one part that will hold `size` bytes from here (bytes it starts with elsewhere not counted). */
  part(size: number): PartMemory {
    return new PartMemory(this, Math.max(1, Math.ceil(size / this.slabSize)));
  }

  /** A slab for `part` now, if the rules allow it and no one is in line before a new part. */
  tryTake(part: PartMemory): Uint8Array<ArrayBuffer> | undefined {
    if (part.slabs.length === 0 && this.#waiting.length > 0) return undefined;
    return this.#grant(part);
  }

  /** A slab for `part` once the rules allow it; rejects with `signal`'s reason when it aborts first. */
  take(part: PartMemory, signal?: AbortSignal): Promise<Uint8Array<ArrayBuffer>> {
    const ready = this.tryTake(part);
    if (ready) return Promise.resolve(ready);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const leave = (error: unknown) => {
        waiter.detach();
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        reject(error);
        this.#serve(); // it may have been what held the others back
      };
      const onAbort = () => leave(signal!.reason);
      const waiter: Waiter = {
        part,
        since: performance.now(),
        resolve,
        timer: setTimeout(() => leave(new TusError('BUSY')), this.#maxWaitMs),
        detach: () => {
          part.waiting = false;
          clearTimeout(waiter.timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      part.waiting = true;
      this.#waiting.push(waiter);
      this.#register(part);
      this.#scheduleRecheck();
    });
  }

  /** Gives back every slab of `part` (sent, or abandoned); they may be handed out again at once. */
  release(part: PartMemory): void {
    if (!this.#unregister(part)) return;
    this.#inUse -= part.slabs.length;
    for (const slab of part.slabs.splice(0)) {
      // Slabs past the budget (an oversized part's) are left to the garbage collector.
      if (this.#allocated > this.#capacity) this.#allocated--;
      else this.#free.push(slab);
    }
    this.#metrics.set('tusflow_part_buffer_bytes', {}, this.#allocated * this.slabSize);
    this.#serve();
  }

  /** Hands out slabs to waiters in order; one that must wait keeps new parts behind it waiting too. */
  #serve(): void {
    if (this.#serving) return; // a reclaim gave memory back while the line is being served
    this.#serving = true;
    try {
      this.#serveLine();
    } finally {
      this.#serving = false;
    }
  }

  #serveLine(): void {
    let blocked = false;
    for (let i = 0; i < this.#waiting.length; ) {
      const waiter = this.#waiting[i]!;
      const slab = blocked && waiter.part.slabs.length === 0 ? undefined : this.#grant(waiter.part);
      if (!slab) {
        blocked = true;
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      waiter.detach();
      this.#metrics.observe('tusflow_part_buffer_wait_seconds', {}, (performance.now() - waiter.since) / 1000);
      waiter.resolve(slab);
    }
    this.#scheduleRecheck();
  }

  /**
   * Nothing is given back when a part merely stops counting as active, so a new part kept out by
   * active ones is looked at again when the first of them would stop.
   */
  #scheduleRecheck(): void {
    clearTimeout(this.#recheck);
    this.#recheck = undefined;
    if (!this.#waiting.some((w) => w.part.slabs.length === 0)) return;
    const now = performance.now();
    let first = Number.POSITIVE_INFINITY;
    for (const p of this.#parts) if (this.#active(p, now) && !p.waiting) first = Math.min(first, p.lastTake + this.#activeMs);
    if (first < Number.POSITIVE_INFINITY) this.#recheck = setTimeout(() => this.#serve(), Math.max(0, first - now) + 1);
  }

  #grant(part: PartMemory): Uint8Array<ArrayBuffer> | undefined {
    if (part.slabs.length >= part.total) this.#resize(part, part.slabs.length + 1); // the body brought more than it said
    const now = performance.now();
    while ((part.slabs.length === 0 && !this.#admits(part, now)) || !this.#safe(part)) {
      if (!this.reclaim?.()) return undefined;
    }
    const slab = this.#free.pop() ?? this.#allocate();
    this.#inUse++;
    part.slabs.push(slab);
    part.lastTake = now;
    this.#register(part);
    return slab;
  }

  #allocate(): Uint8Array<ArrayBuffer> {
    this.#allocated++;
    this.#metrics.set('tusflow_part_buffer_bytes', {}, this.#allocated * this.slabSize);
    return new Uint8Array(this.slabSize);
  }

  /** A part being filled by a client that sends: it took a slab lately, or waits for one. */
  #active(p: PartMemory, now: number): boolean {
    return p.slabs.length > 0 && p.slabs.length < p.total && (p.waiting || now - p.lastTake < this.#activeMs);
  }

  /** Whether a new part may start: the memory free, less what active parts still need, holds all of it. */
  #admits(part: PartMemory, now: number): boolean {
    let room = this.#capacity - this.#inUse;
    for (const p of this.#parts) if (p !== part && this.#active(p, now)) room -= p.total - p.slabs.length;
    return room >= Math.min(part.total, this.#capacity);
  }

  /** Whether one more slab for `part` leaves every part being filled able to complete. */
  #safe(part: PartMemory): boolean {
    // A part larger than the whole budget goes past it only while it holds all there is, so no
    // upload waits forever.
    if (this.#inUse >= this.#capacity) return this.#inUse === part.slabs.length;
    let free = this.#capacity - this.#inUse - 1;
    if (free >= Math.max(part.total, ...this.#totals.keys())) return true; // whatever each part still needs, it fits
    const filling = [{ need: part.total - part.slabs.length - 1, held: part.slabs.length + 1 }];
    for (const p of this.#parts) {
      // A full part is being sent: its slabs come back. One that holds nothing holds no one up.
      if (p !== part && p.slabs.length > 0) filling.push({ need: p.total - p.slabs.length, held: p.slabs.length });
    }
    // The parts that need least complete first, each freeing what it held; the last one may be an
    // oversized part that goes past the budget once it holds all there is.
    filling.sort((a, b) => a.need - b.need);
    for (const [i, { need, held }] of filling.entries()) {
      if (need > free && i < filling.length - 1) return false;
      free += held;
    }
    return true;
  }

  #resize(part: PartMemory, total: number): void {
    const registered = this.#unregister(part);
    part.total = total;
    if (registered) this.#register(part);
  }

  #register(part: PartMemory): void {
    if (this.#parts.has(part)) return;
    this.#parts.add(part);
    this.#totals.set(part.total, (this.#totals.get(part.total) ?? 0) + 1);
  }

  #unregister(part: PartMemory): boolean {
    if (!this.#parts.delete(part)) return false;
    const left = this.#totals.get(part.total)! - 1;
    if (left > 0) this.#totals.set(part.total, left);
    else this.#totals.delete(part.total);
    return true;
  }
}

/** Bytes kept in the slabs of a part, packed from the first slab: what a write leaves for the next. */
export interface HeldBytes {
  memory: PartMemory;
  length: number;
}

/** Views of held bytes, in order (nothing copied). */
export function heldViews(held: HeldBytes | undefined): Uint8Array[] {
  if (!held) return [];
  const size = held.memory.pool.slabSize;
  const views: Uint8Array[] = [];
  for (let i = 0; i * size < held.length; i++) views.push(held.memory.slabs[i]!.subarray(0, Math.min(size, held.length - i * size)));
  return views;
}

/** The slabs of one part, in the order they are filled. */
export class PartMemory {
  readonly slabs: Uint8Array<ArrayBuffer>[] = [];
  /** When it last took a slab (performance.now()), and whether it waits for one now. */
  lastTake = Number.NEGATIVE_INFINITY;
  waiting = false;

  constructor(
    readonly pool: PartBuffers,
    /** Slabs the part needs when full (or when the body ends, if that comes first). */
    public total: number,
  ) {}

  tryTake(): Uint8Array<ArrayBuffer> | undefined {
    return this.pool.tryTake(this);
  }

  take(signal?: AbortSignal): Promise<Uint8Array<ArrayBuffer>> {
    return this.pool.take(this, signal);
  }

  release(): void {
    this.pool.release(this);
  }
}
