import { resolve } from 'node:path';
import { setInterval } from 'node:timers';
import type { UploadEngine } from '../engine/engine.ts';
import { fromEnv, parseEnv, type ServerEnv, type TusflowOptions } from './config.ts';
import { FileDataStore } from '../storage/file/store.ts';
import { FileStateStore } from '../state/file.ts';
import { s3StoreFromEnv, sharedState, upstashStateFromEnv, type S3Features } from './env-stores.ts';
import { MetricsRegistry } from '../observability/metrics.ts';
import type { ScriptRunner } from '../state/redis/client.ts';
import { errorText } from '../observability/redact.ts';

export interface ServerStores {
  stores: Pick<TusflowOptions, 'store' | 'state' | 'locker' | 'rateLimiter' | 'registry'>;
  description: string;
}

/** What the runtime can do that the stores may use. */
export interface RuntimeFeatures extends S3Features {
  /** The runtime's own Redis client (Bun's), instead of ioredis. */
  redis?: (url: string) => ScriptRunner;
}

/**
 * The stores a server process uses, from its environment. Bytes: S3 when S3_BUCKET is set (checked
 * before the server starts, so bad credentials or a missing bucket fail at once), else files under
 * DATA_DIR. Records and locks: Upstash or Redis when configured (shared by every instance), else
 * files under DATA_DIR with in-process locks (one instance).
 */
export async function serverStores(env: ServerEnv, features: RuntimeFeatures = {}): Promise<ServerStores> {
  const registry = new MetricsRegistry();
  const dir = resolve(env.DATA_DIR);
  const upstash = upstashStateFromEnv(env);
  // ioredis is loaded only when it is used: it costs ~20 MiB of memory.
  const connect = features.redis ?? (async (url: string) => (await import('../state/redis-tcp.ts')).tcpRedisRunner(url));
  const redis = !upstash && env.REDIS_URL ? sharedState(env, await connect(env.REDIS_URL)) : undefined;
  const shared = upstash ?? redis;
  // Fail at start, not at the first upload, when the Redis cannot be reached.
  await shared?.state?.get('0'.repeat(32));
  // Without a shared store the rate limit is per process: createTusflow makes one from RATE_LIMIT.
  const state = shared ?? { state: new FileStateStore(dir) };
  const stateName = upstash ? 'Upstash' : redis ? 'Redis' : `files in ${dir}`;

  if (env.S3_BUCKET) {
    const store = s3StoreFromEnv(env, features, registry);
    await store.check();
    return { stores: { store, ...state, registry }, description: `S3 bucket ${env.S3_BUCKET}, records: ${stateName}` };
  }
  return { stores: { store: new FileDataStore(dir), ...state, registry }, description: `files in ${dir}, records: ${stateName}` };
}

/** Everything a server entry needs from its environment; throws a readable error when it is wrong. */
export async function serverConfig(
  vars: Record<string, string | undefined>,
  features: RuntimeFeatures = {},
): Promise<{ env: ServerEnv; options: TusflowOptions; description: string }> {
  const env = parseEnv(vars);
  const { stores, description } = await serverStores(env, features);
  return { env, options: { ...fromEnv(vars), ...stores }, description };
}

export function exitOnConfigError(exit: (code: number) => never) {
  return (error: unknown): never => {
    console.error(`tusflow: ${errorText(error)}`);
    return exit(1);
  };
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\]|::ffff:127(\.\d{1,3}){3})$/i;

/**
 * The warning a server should print at start, if any: it listens beyond this machine and anyone who
 * reaches it may store anything, as much as they like.
 */
export function exposureWarning(env: ServerEnv): string | undefined {
  if (LOOPBACK.test(env.HOST) || env.AUTH_TOKEN || env.JWT_SECRET || env.MAX_SIZE) return undefined;
  return (
    `tusflow: warning: listening on ${env.HOST} with no authentication and no MAX_SIZE: anyone who can reach ` +
    'this server can store files of any size. Set AUTH_TOKEN or JWT_SECRET, and MAX_SIZE (or HOST=127.0.0.1 for this machine only).'
  );
}

/** What every server entry prints once it listens at `origin` (e.g. http://0.0.0.0:1080). */
export function announce(env: ServerEnv, origin: string, description: string): void {
  console.log(`tusflow listening on ${origin.replace(/\/$/, '')}${env.TUS_PATH}/ (storage: ${description})`);
  const warning = exposureWarning(env);
  if (warning) console.warn(warning);
}

/** Removes expired uploads every `seconds`, without keeping the process alive; returns the stopper. */
export function scheduleCleanup(engine: UploadEngine, seconds: number): () => void {
  const timer = setInterval(() => {
    engine.cleanup().catch((error: unknown) => console.error(`tusflow: cleanup failed: ${errorText(error)}`));
  }, seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
