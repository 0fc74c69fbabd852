import type { RateLimiter } from '../types.ts';
import type { ScriptRunner } from './client.ts';
import { RATE } from './scripts.ts';

/** A fixed one-minute window per client in Redis, shared by every instance: one command a request. */
export class RedisRateLimiter implements RateLimiter {
  constructor(readonly options: { runner: ScriptRunner; prefix: string; limit: number; windowMs?: number }) {}

  async hit(client: string) {
    const windowMs = this.options.windowMs ?? 60_000;
    const [count, left] = (await this.options.runner.run(RATE, [`${this.options.prefix}rate:{${client}}`], [windowMs])) as [number, number];
    return { allowed: count <= this.options.limit, retryAfterSeconds: Math.max(1, Math.ceil(left / 1000)) };
  }
}
