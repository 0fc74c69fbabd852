import { Redis } from '@upstash/redis';
import { scriptRunner, type ScriptRunner } from './redis/client.ts';

/** Scripts over Upstash's REST API (`@upstash/redis`): plain fetch, so any runtime. */
export function upstashRunner(options: { url: string; token: string }): ScriptRunner {
  const redis = new Redis({ url: options.url, token: options.token, automaticDeserialization: false });
  return scriptRunner({
    evalsha: (sha, keys, args) => redis.evalsha(sha, keys, args),
    eval: (source, keys, args) => redis.eval(source, keys, args),
  });
}
