import type { TusflowOptions } from './config.ts';
import { createTusflow, type Tusflow } from './create.ts';
import { nodeS3Features } from './node-http-fetch.ts';
import { nodeSha256 } from './node-sha256.ts';
import { type RuntimeFeatures, scheduleCleanup, serverConfig } from './server.ts';

/**
 * The server `npm start` runs, for an app that embeds it: the options and stores the environment
 * describes (S3 or DATA_DIR for bytes; Upstash, Redis or DATA_DIR for records and locks), `options`
 * on top of them, and expired uploads removed every CLEANUP_INTERVAL_SECONDS until `shutdown`.
 * Rejects with a ConfigError naming the variable when the environment is wrong. Server-only.
 */
export async function tusflowFromEnv(vars: Record<string, string | undefined>, options: TusflowOptions = {}, features: RuntimeFeatures = {}): Promise<Tusflow> {
  // node:crypto's native SHA-256 for the parts' payload hash (Bun, Node and Deno all have it), and
  // outside Bun (whose fetch sends parts from their slabs already) S3 requests through node:http,
  // unless the caller brings its own fetch.
  const defaults = 'Bun' in globalThis || features.fetch ? { sha256: nodeSha256 } : nodeS3Features(vars);
  const { env, options: fromVars } = await serverConfig(vars, { ...defaults, ...features });
  // Mounted in an app it adds only its tus routes: the page, /health and /metrics are opt-in here too.
  const tusflow = createTusflow({ ...fromVars, webPage: false, health: false, metrics: false, ...options });
  const stopCleanup = scheduleCleanup(tusflow.engine, env.CLEANUP_INTERVAL_SECONDS);
  return {
    ...tusflow,
    shutdown: async (timeoutMs) => {
      stopCleanup();
      await tusflow.shutdown(timeoutMs);
    },
  };
}
