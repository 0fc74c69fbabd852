import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { memoryUsage, stderr } from 'node:process';
import { setInterval, setTimeout } from 'node:timers';
import type { UploadEngine } from '../engine/engine.ts';
import { withTimeout } from '../model/async.ts';
import { ConfigError, configWarnings, fromEnv, parseEnv, type ServerEnv, type TusflowOptions } from './config.ts';
import { FileDataStore } from '../storage/file/store.ts';
import { FileStateStore } from '../state/file.ts';
import { checkS3, s3StoreFromEnv, sharedState, upstashStateFromEnv, type S3Features } from './env-stores.ts';
import { MetricsRegistry } from '../observability/metrics.ts';
import type { ScriptRunner } from '../state/redis/client.ts';
import { errorText, redact } from '../observability/redact.ts';

export interface ServerStores {
  stores: Pick<TusflowOptions, 'store' | 'state' | 'locker' | 'rateLimiter' | 'registry'>;
  /** Where bytes go, e.g. `S3 bucket uploads at http://127.0.0.1:9000` or `files in /srv/data`. */
  storage: string;
  /** Where records and locks go: `Redis`, `Upstash` or `files in /srv/data`. */
  state: string;
  /** Both in one phrase, for one-line messages. */
  description: string;
}

/** What the runtime can do that the stores may use. */
export interface RuntimeFeatures extends S3Features {
  /** The runtime's own Redis client (Bun's), instead of ioredis. */
  redis?: (url: string) => ScriptRunner;
}

/** How long a backend may take to answer the start-up check before the server gives up on it. */
const CHECK_MS = 10_000;

/**
 * Runs a start-up check; its failure becomes a one-line ConfigError that names the settings to
 * look at (`check REDIS_URL=…`), within CHECK_MS. `what` leads a reason that does not say which
 * backend failed ("Unauthorized").
 */
async function startupCheck<T>(what: string, settings: string, check: () => Promise<T>): Promise<T> {
  try {
    return await withTimeout(CHECK_MS, check, () => new Error(`no answer within ${CHECK_MS / 1000} s`));
  } catch (error) {
    // Upstash's errors quote the command sent; Deno's fetch says only "fetch failed", its cause why.
    const reason = errorText(error).replace(/, command was: .*/, '');
    const cause = error instanceof TypeError && error.cause !== undefined ? `: ${errorText(error.cause)}` : '';
    throw new ConfigError(`${reason.startsWith(what) ? '' : `${what}: `}${reason}${cause} (check ${settings})`);
  }
}

/** DATA_DIR exists (it is made) and takes a file, before the server says it listens. */
async function checkWritable(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, `.tusflow-write-check-${crypto.randomUUID()}`);
    await writeFile(probe, '');
    await rm(probe, { force: true });
  } catch (error) {
    throw new ConfigError(`DATA_DIR=${dir} is not a writable directory: ${errorText(error)}`);
  }
}

/**
 * The stores a server process uses, from its environment, each checked before the server starts so
 * that a wrong setting fails at once with its name rather than at the first upload. Bytes: S3 when
 * S3_BUCKET is set, else files under DATA_DIR. Records and locks: Upstash or Redis when configured
 * (shared by every instance), else files under DATA_DIR with in-process locks (one instance).
 */
export async function serverStores(env: ServerEnv, features: RuntimeFeatures = {}): Promise<ServerStores> {
  const registry = new MetricsRegistry();
  // Only where the runtime can tell: a server process (a Worker has no such number).
  registry.collect('process_resident_memory_bytes', () => memoryUsage.rss());
  const dir = resolve(env.DATA_DIR);
  if (!env.S3_BUCKET || !(env.UPSTASH_REDIS_REST_URL || env.REDIS_URL)) await checkWritable(dir);
  const upstash = upstashStateFromEnv(env);
  if (upstash) {
    const url = redact(env.UPSTASH_REDIS_REST_URL ?? '');
    await startupCheck('Upstash', `UPSTASH_REDIS_REST_URL=${url} and UPSTASH_REDIS_REST_TOKEN`, () => upstash.state!.get('0'.repeat(32)));
  }
  let redis: ReturnType<typeof sharedState> | undefined;
  if (!upstash && env.REDIS_URL) {
    // ioredis is loaded only when it is used: it costs ~20 MiB of memory.
    const connect = features.redis ?? (async (url: string) => (await import('../state/redis-tcp.ts')).tcpRedisRunner(url));
    // Connecting is inside the check: Bun's client throws on a URL it cannot parse, which must
    // name REDIS_URL like any other failure to reach Redis.
    const url = env.REDIS_URL;
    redis = await startupCheck('Redis', `REDIS_URL=${redact(url)}`, async () => {
      const shared = sharedState(env, await connect(url));
      await shared.state!.get('0'.repeat(32));
      return shared;
    });
  }
  // Without a shared store the rate limit is per process: createTusflow makes one from RATE_LIMIT.
  const state = upstash ?? redis ?? { state: new FileStateStore(dir) };
  const stateName = upstash ? 'Upstash' : redis ? 'Redis' : `files in ${dir}`;

  if (env.S3_BUCKET) {
    const store = s3StoreFromEnv(env, features, registry);
    await checkS3(store, env);
    const storage = `S3 bucket ${env.S3_BUCKET}${env.S3_ENDPOINT ? ` at ${redact(env.S3_ENDPOINT)}` : ''}`;
    return { stores: { store, ...state, registry }, storage, state: stateName, description: `S3 bucket ${env.S3_BUCKET}, records: ${stateName}` };
  }
  const storage = `files in ${dir}`;
  return { stores: { store: new FileDataStore(dir), ...state, registry }, storage, state: stateName, description: `${storage}, records: ${stateName}` };
}

/** Everything a server entry needs from its environment; throws a readable error when it is wrong. */
export async function serverConfig(
  vars: Record<string, string | undefined>,
  features: RuntimeFeatures = {},
): Promise<{ env: ServerEnv; options: TusflowOptions; description: string; stores: ServerStores }> {
  const env = parseEnv(vars);
  await checkHost(env.HOST);
  const stores = await serverStores(env, features);
  return { env, options: { ...fromEnv(vars), ...stores.stores }, description: stores.description, stores };
}

/**
 * HOST is an address or a name that resolves: checked before listening, as Bun reports a name that
 * does not resolve as a port in use.
 */
async function checkHost(host: string): Promise<void> {
  if (isIP(host.replace(/^\[|\]$/g, ''))) return;
  try {
    await lookup(host);
  } catch (error) {
    throw new ConfigError(`HOST=${host} is not an address of this machine nor a name that resolves: ${errorText(error)}`);
  }
}

/** A listen failure as one line naming the setting: PORT in use, HOST not on this machine. */
export function listenError(error: unknown, env: Pick<ServerEnv, 'HOST' | 'PORT'>): ConfigError {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  if (code === 'EADDRINUSE' || name === 'AddrInUse') return new ConfigError(`PORT ${env.PORT} is in use on ${env.HOST}: another process listens there (set PORT)`);
  if (code === 'EADDRNOTAVAIL' || name === 'AddrNotAvailable') return new ConfigError(`HOST=${env.HOST} is not an address of this machine`);
  if (code === 'EACCES' || name === 'PermissionDenied') return new ConfigError(`PORT ${env.PORT} needs privileges this process lacks (set PORT above 1023)`);
  return new ConfigError(`cannot listen on HOST=${env.HOST} PORT=${env.PORT}: ${errorText(error)}`);
}

/**
 * Prints `tusflow: <reason>` as one line on stderr and exits 1 once it is written: process.exit
 * does not wait for a pipe (systemd, a container's log) to take buffered output, so the line could
 * be lost. A stderr that never drains still lets the process end, after 2 s.
 */
export function failAtStart(error: unknown, exit: (code: number) => never): Promise<never> {
  const line = `tusflow: ${errorText(error).replace(/\s*\n\s*/g, ' ')}\n`;
  return new Promise<never>(() => {
    setTimeout(() => exit(1), 2_000);
    stderr.write(line, () => exit(1));
  });
}

export function exitOnConfigError(exit: (code: number) => never) {
  return (error: unknown): Promise<never> => failAtStart(error, exit);
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

/** What a starting server says about itself, for its start-up line. */
export interface Announcement {
  /** Where it listens, e.g. http://0.0.0.0:1080 */
  origin: string;
  storage: string;
  state: string;
}

/**
 * What every server entry prints once it listens: one line naming the endpoint, the upload page,
 * storage, state, auth mode and size limit, as JSON when LOG (JSON request lines) is on so that a
 * log collector can parse every line; then any warnings, on stderr.
 */
export function announce(env: ServerEnv, { origin, storage, state }: Announcement, options: Pick<TusflowOptions, 'webPage'> = {}): void {
  const base = origin.replace(/\/$/, '');
  const endpoint = `${base}${env.TUS_PATH}/`;
  const page = options.webPage === false ? undefined : `${base}/`;
  const auth = env.JWT_SECRET ? 'jwt' : env.AUTH_TOKEN ? 'token' : 'none';
  const maxSize = env.MAX_SIZE ?? 'unlimited';
  const warnings = [...configWarnings(env), exposureWarning(env)?.replace(/^tusflow: warning: /, '')].filter((w): w is string => w !== undefined);
  if (env.LOG) {
    const time = new Date().toISOString();
    console.log(JSON.stringify({ time, level: 'info', message: `tusflow listening on ${endpoint}`, endpoint, page, storage, state, auth, maxSize }));
    for (const warning of warnings) console.warn(JSON.stringify({ time, level: 'warn', message: warning }));
    return;
  }
  const limit = typeof maxSize === 'number' ? `max size ${maxSize} bytes` : 'no size limit';
  console.log(`tusflow listening on ${endpoint} (${page ? `page: ${page}, ` : ''}storage: ${storage}, records: ${state}, auth: ${auth}, ${limit})`);
  for (const warning of warnings) console.warn(`tusflow: warning: ${warning}`);
}

/** Removes expired uploads every `seconds`, without keeping the process alive; returns the stopper. */
export function scheduleCleanup(engine: UploadEngine, seconds: number): () => void {
  const timer = setInterval(() => {
    engine.cleanup().catch((error: unknown) => console.error(`tusflow: cleanup failed: ${errorText(error)}`));
  }, seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
