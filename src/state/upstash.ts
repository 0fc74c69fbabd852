import { Ratelimit } from '@upstash/ratelimit';
import { Redis } from '@upstash/redis';
import type { RateLimiter } from './types.ts';
import { scriptRunner, type ScriptRunner } from './redis/client.ts';

/** Upstash's REST client (plain fetch, so any runtime). */
export function upstashClient(options: { url: string; token: string }): Redis {
  // No auto-pipelining: it would batch commands of different requests into one fetch, which Workers
  // refuse (an I/O object of one request used by another); each operation is one command anyway.
  return new Redis({ url: options.url, token: options.token, automaticDeserialization: false, enableAutoPipelining: false });
}

/** Scripts over Upstash's REST API. */
export function upstashRunner(redis: Redis): ScriptRunner {
  return scriptRunner({
    evalsha: (sha, keys, args) => redis.evalsha(sha, keys, args),
    eval: (source, keys, args) => redis.eval(source, keys, args),
  });
}

/** Upstash's own rate limiter (@upstash/ratelimit), a fixed one-minute window per client. */
export function upstashRateLimiter(redis: Redis, prefix: string, limit: number): RateLimiter {
  const limiter = new Ratelimit({ redis, limiter: Ratelimit.fixedWindow(limit, '60 s'), prefix: `${prefix}rate` });
  return {
    async hit(client) {
      const { success, reset } = await limiter.limit(client);
      return { allowed: success, retryAfterSeconds: Math.max(1, Math.ceil((reset - Date.now()) / 1000)) };
    },
  };
}
