import type { ServerEnv, TusflowOptions } from '../config.ts';
import { MemoryRateLimiter, type RateLimiter } from '../limits/rate-limit.ts';
import type { ScriptRunner } from './redis/client.ts';
import { RedisLocker } from './redis/locker.ts';
import { RedisRateLimiter } from './redis/rate-limit.ts';
import { RedisStateStore } from './redis/store.ts';
import { upstashClient, upstashRateLimiter, upstashRunner } from './upstash.ts';

export type SharedState = Pick<TusflowOptions, 'state' | 'locker' | 'rateLimiter'>;

/** Records, locks and the rate limit in Redis, shared by every instance with the same Redis and prefix. */
export function sharedState(env: ServerEnv, runner: ScriptRunner, rateLimiter?: RateLimiter): SharedState {
  const prefix = env.STATE_KEY_PREFIX;
  return {
    state: new RedisStateStore({
      runner,
      prefix,
      finishedTtlMs: env.FINISHED_TTL_SECONDS * 1000,
      graceMs: Math.max(3_600_000, env.CLEANUP_INTERVAL_SECONDS * 2000),
    }),
    locker: new RedisLocker({ runner, prefix, leaseMs: env.LOCK_LEASE_MS, timeoutMs: 10_000 }),
    rateLimiter: env.RATE_LIMIT ? (rateLimiter ?? new RedisRateLimiter({ runner, prefix, limit: env.RATE_LIMIT })) : undefined,
  };
}

/** Upstash state when UPSTASH_REDIS_REST_URL is set (any runtime, Workers and Deno Deploy included). */
export function upstashStateFromEnv(env: ServerEnv): SharedState | undefined {
  if (!env.UPSTASH_REDIS_REST_URL || !env.UPSTASH_REDIS_REST_TOKEN) return undefined;
  const redis = upstashClient({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
  const limiter = env.RATE_LIMIT ? upstashRateLimiter(redis, env.STATE_KEY_PREFIX, env.RATE_LIMIT) : undefined;
  return sharedState(env, upstashRunner(redis), limiter);
}

/** Without a shared store, the rate limit is per process. */
export const localRateLimiter = (env: ServerEnv): RateLimiter | undefined =>
  env.RATE_LIMIT ? new MemoryRateLimiter(env.RATE_LIMIT) : undefined;
