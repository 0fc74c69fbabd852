import { Redis } from 'ioredis';
import { scriptRunner, type ScriptRunner } from './redis/client.ts';

/**
 * Scripts over a TCP connection to Redis (ioredis: works under Bun and Deno alike). Server-only:
 * it opens sockets, so the Worker entry never imports it.
 */
export function tcpRedisRunner(url: string): ScriptRunner {
  // RESP2, so replies have the same flat shapes as Upstash's.
  const redis = new Redis(url, { protocol: 2, maxRetriesPerRequest: 2 });
  return scriptRunner(
    {
      evalsha: (sha, keys, args) => redis.evalsha(sha, keys.length, ...keys, ...args),
      eval: (source, keys, args) => redis.eval(source, keys.length, ...keys, ...args),
    },
    async () => void (await redis.quit().catch(() => redis.disconnect())),
  );
}
