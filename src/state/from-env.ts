import type { ServerEnv, TusflowOptions } from '../config.ts';
import type { ScriptRunner } from './redis/client.ts';
import { RedisLocker } from './redis/locker.ts';
import { RedisStateStore } from './redis/store.ts';
import { upstashRunner } from './upstash.ts';

/** Records and locks in Redis, shared by every instance that uses the same Redis and prefix. */
export function sharedState(env: ServerEnv, runner: ScriptRunner, lockTimeoutMs = 10_000): Pick<TusflowOptions, 'state' | 'locker'> {
  const prefix = env.STATE_KEY_PREFIX;
  return {
    state: new RedisStateStore({
      runner,
      prefix,
      finishedTtlMs: env.FINISHED_TTL_SECONDS * 1000,
      graceMs: Math.max(3_600_000, env.CLEANUP_INTERVAL_SECONDS * 2000),
    }),
    locker: new RedisLocker({ runner, prefix, leaseMs: env.LOCK_LEASE_MS, timeoutMs: lockTimeoutMs }),
  };
}

/** Upstash state when UPSTASH_REDIS_REST_URL is set (any runtime, Workers and Deno Deploy included). */
export function upstashStateFromEnv(env: ServerEnv): Pick<TusflowOptions, 'state' | 'locker'> | undefined {
  if (!env.UPSTASH_REDIS_REST_URL || !env.UPSTASH_REDIS_REST_TOKEN) return undefined;
  return sharedState(env, upstashRunner({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN }));
}
