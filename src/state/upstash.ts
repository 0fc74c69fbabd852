import { Redis } from '@upstash/redis';
import { scriptRunner, type ScriptRunner } from './redis/client.ts';

/** Scripts over Upstash's REST API (`@upstash/redis`): plain fetch, so any runtime. */
export function upstashRunner(options: { url: string; token: string }): ScriptRunner {
  // No auto-pipelining: it would batch commands of different requests into one fetch, which Workers
  // refuse (an I/O object of one request used by another); each operation is one command anyway.
  const redis = new Redis({ url: options.url, token: options.token, automaticDeserialization: false, enableAutoPipelining: false });
  return scriptRunner({
    evalsha: (sha, keys, args) => redis.evalsha(sha, keys, args),
    eval: (source, keys, args) => redis.eval(source, keys, args),
  });
}
