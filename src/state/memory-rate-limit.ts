import type { RateLimiter } from './types.ts';

/** A fixed one-minute window per client, in this process (one instance, or no shared store). */
export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
  ) {}

  async hit(client: string) {
    const now = Date.now();
    let window = this.#windows.get(client);
    if (!window || window.resetAt <= now) {
      if (this.#windows.size > 10_000) for (const [k, w] of this.#windows) if (w.resetAt <= now) this.#windows.delete(k);
      this.#windows.set(client, (window = { count: 0, resetAt: now + this.windowMs }));
    }
    window.count++;
    return { allowed: window.count <= this.limit, retryAfterSeconds: Math.max(1, Math.ceil((window.resetAt - now) / 1000)) };
  }
}
