import { Redis } from 'ioredis';
import { scriptRunner, type ScriptRunner } from './redis/client.ts';

/**
 * Scripts over a TCP connection to Redis (ioredis: works under Bun and Deno alike). Server-only:
 * it opens sockets, so the Worker entry never imports it.
 */
export function tcpRedisRunner(url: string): ScriptRunner {
  // RESP2, so replies have the same flat shapes as Upstash's.
  const redis = new Redis(url, { protocol: 2, maxRetriesPerRequest: 2 });
  // A lost connection fails the commands waiting on it, which say so; the connection's own error
  // events would otherwise be printed as unhandled, a stack trace per reconnect attempt. The last
  // one names the cause ("connect ECONNREFUSED 127.0.0.1:6379") that ioredis's command error lacks.
  let lastError: Error | undefined;
  // The text is for the server's log and its start-up line: the engine answers clients a generic reason.
  redis.on('error', (error: Error) => void (lastError = error));
  // Reconnected: a later failure must not be blamed on a cause that is over.
  redis.on('ready', () => void (lastError = undefined));
  const explained = (error: unknown): never => {
    if (lastError && error instanceof Error && /max retries/i.test(error.message)) {
      throw new Error(`Redis is not reachable: ${lastError.message}`, { cause: error });
    }
    throw error;
  };
  return scriptRunner(
    {
      evalsha: (sha, keys, args) => redis.evalsha(sha, keys.length, ...keys, ...args).catch(explained),
      eval: (source, keys, args) => redis.eval(source, keys.length, ...keys, ...args).catch(explained),
    },
    async () => void (await redis.quit().catch(() => redis.disconnect())),
  );
}
