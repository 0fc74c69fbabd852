/**
 * Cloudflare Workers entry: `export default { fetch, scheduled }`. Bindings are the environment
 * variables of the other entries. A Worker has no disk and no shared memory between isolates, so it
 * needs S3 (S3_BUCKET, …) for bytes and Upstash (UPSTASH_REDIS_REST_URL/TOKEN) for records and locks.
 * `scheduled` (a cron trigger) runs the expiry cleanup.
 */
import { ConfigError, createTusflow, fromEnv, parseEnv, type ServerEnv, type Tusflow } from '../index.ts';
import { errorText } from '../observability/redact.ts';
import { MetricsRegistry } from '../observability/metrics.ts';
import { s3StoreFromEnv, upstashStateFromEnv, type S3Features } from '../wiring/env-stores.ts';

type Bindings = Record<string, unknown>;

/** workerd's TransformStream whose output has a known length, so fetch sends a Content-Length. */
declare class FixedLengthStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(length: number);
}

/**
 * Parts go to S3 as streams (while they arrive, and as views of their buffers), with a length
 * workerd's fetch sends; request chunks are freed once copied.
 */
const features: S3Features = {
  streamParts: true,
  releaseChunks: true,
  fixedLength: (body, size) => body.pipeThrough(new FixedLengthStream(size)),
};
/** An isolate has 128 MB in all: less for part buffers than on a server, unless a binding says so. */
const WORKER_BUFFER_MEMORY = String(48 * 1024 * 1024);

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

// One server per isolate, built on first use from the bindings (they are fixed per deployment).
let built: { bindings: Bindings; tusflow: Tusflow } | undefined;

/** The bindings a Worker cannot run without: it has no disk for bytes and no shared memory for records. */
const REQUIRED = ['S3_BUCKET', 'UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN'] as const;

/**
 * A Worker's settings from its bindings (string ones only); a ConfigError naming what is missing or
 * wrong. `npm run start:worker` calls it before starting, so it refuses there as a server would.
 */
export function workerEnv(vars: Record<string, string>): ServerEnv {
  const env = parseEnv({ S3_BUFFER_MEMORY: WORKER_BUFFER_MEMORY, ...vars });
  const missing: string[] = REQUIRED.filter((name) => !env[name]);
  if (env.S3_BUCKET && !(env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID)) missing.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY');
  if (missing.length) {
    throw new ConfigError(`a Worker stores bytes in S3 and records in Upstash: set ${missing.join(', ')}`);
  }
  return env;
}

const stringsOf = (bindings: Bindings) => Object.fromEntries(Object.entries(bindings).filter((e): e is [string, string] => typeof e[1] === 'string'));

function tusflowFor(bindings: Bindings): Tusflow {
  if (built?.bindings === bindings) return built.tusflow;
  const vars = stringsOf(bindings);
  const env = workerEnv(vars);
  const shared = upstashStateFromEnv(env)!;
  const registry = new MetricsRegistry();
  const store = s3StoreFromEnv(env, features, registry);
  const tusflow = createTusflow({ ...fromEnv(vars), store, ...shared, registry, log: false });
  built = { bindings, tusflow };
  return tusflow;
}

export default {
  async fetch(request: Request, bindings: Bindings, ctx: ExecutionContext): Promise<Response> {
    let tusflow: Tusflow;
    try {
      tusflow = tusflowFor(bindings);
    } catch (error) {
      // The deployment's fault, not the request's: unavailable until its bindings are fixed. Which
      // settings are wrong is for the Worker's log (wrangler tail), not for anyone who asks.
      console.error(`tusflow is misconfigured: ${errorText(error)}`);
      return new Response('the server is misconfigured\n', { status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
    }
    // Cloudflare sets CF-Connecting-IP to the client's address.
    const response = await tusflow.fetch(request, { remoteAddress: request.headers.get('CF-Connecting-IP') ?? undefined });
    // Hook deliveries run after the response: keep the isolate alive for them.
    ctx.waitUntil(tusflow.engine.backgroundSettled());
    return response;
  },
  scheduled(_event: unknown, bindings: Bindings, ctx: ExecutionContext): void {
    ctx.waitUntil(tusflowFor(bindings).engine.cleanup());
  },
};
