/**
 * `tusflow/redis`: records, locks and the rate limit in Redis, shared by every instance. Server-only:
 * `tcpRedisRunner` opens a TCP connection with ioredis. On Workers, take the same stores from
 * `tusflow/upstash`.
 */
export { RedisStateStore, type RedisStateOptions } from '../state/redis/store.ts';
export { RedisLocker, type RedisLockerOptions } from '../state/redis/locker.ts';
export { RedisRateLimiter } from '../state/redis/rate-limit.ts';
export { scriptRunner, type ScriptRunner, type Eval } from '../state/redis/client.ts';
export { tcpRedisRunner } from '../state/redis-tcp.ts';
