/** `tusflow/upstash`: the Redis stores over Upstash's REST API. Runs on every runtime, Workers included. */
export { upstashClient, upstashRunner, upstashRateLimiter } from '../state/upstash.ts';
export { RedisStateStore, type RedisStateOptions } from '../state/redis/store.ts';
export { RedisLocker, type RedisLockerOptions } from '../state/redis/locker.ts';
export { RedisRateLimiter } from '../state/redis/rate-limit.ts';
export type { ScriptRunner } from '../state/redis/client.ts';
