/**
 * The stores the environment describes that any runtime can use (Workers and Deno Deploy too): S3
 * for bytes, Redis or Upstash for records, locks and the rate limit. The server-only ones (files,
 * TCP Redis) are chosen in server.ts.
 */
import type { Metrics } from '../model/metrics.ts';
import { contentHeaders } from '../protocol/download.ts';
import { digestMetadata } from '../model/digest.ts';
import type { ScriptRunner } from '../state/redis/client.ts';
import { RedisLocker } from '../state/redis/locker.ts';
import { RedisRateLimiter } from '../state/redis/rate-limit.ts';
import { RedisStateStore } from '../state/redis/store.ts';
import type { RateLimiter } from '../state/types.ts';
import { upstashClient, upstashRateLimiter, upstashRunner } from '../state/upstash.ts';
import { S3Client, type S3ClientConfig } from '../storage/s3/client.ts';
import { S3DataStore } from '../storage/s3/store.ts';
import { objectSettingsHeaders } from '../storage/s3/object-settings.ts';
import { S3Error } from '../storage/s3/errors.ts';
import { errorText, redact } from '../observability/redact.ts';
import { ConfigError, type ServerEnv, type TusflowOptions } from './config.ts';

/** What the runtime's fetch and HTTP server allow the S3 store to do (see S3StoreOptions). */
export interface S3Features {
  streamParts?: boolean;
  releaseChunks?: boolean;
  fixedLength?: S3ClientConfig['fixedLength'];
  /** The runtime's native streaming SHA-256 (S3_CHECKSUM=sha256); without one, @noble/hashes'. */
  sha256?: S3ClientConfig['sha256'];
  /** The fetch S3 requests go through, where the runtime's own copies bodies (Deno); default the global one. */
  fetch?: S3ClientConfig['fetch'];
}

/** The client, its refusal of the addressing style as one line naming the settings. */
function newClient(config: S3ClientConfig): S3Client {
  try {
    return new S3Client(config);
  } catch (error) {
    throw new ConfigError(`${errorText(error)} (check S3_FORCE_PATH_STYLE and S3_ENDPOINT)`);
  }
}

/** The S3 store the environment describes (S3_BUCKET set), recording into `metrics`. */
export function s3StoreFromEnv(env: ServerEnv, features: S3Features, metrics: Metrics): S3DataStore {
  const accessKeyId = env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
  if (!env.S3_BUCKET) throw new ConfigError('S3_BUCKET is not set');
  if (!accessKeyId || !secretAccessKey) {
    throw new ConfigError('invalid configuration: S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY (or AWS_*): required with S3_BUCKET');
  }
  const client = newClient({
    endpoint: env.S3_ENDPOINT,
    bucket: env.S3_BUCKET,
    region: env.S3_REGION,
    accessKeyId,
    secretAccessKey,
    sessionToken: env.S3_SESSION_TOKEN,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    streamBodies: features.streamParts,
    fixedLength: features.fixedLength,
    metrics,
    payloadCheck: env.S3_CHECKSUM,
    sha256: features.sha256,
    fetch: features.fetch,
  });
  const settings = objectSettingsHeaders({ cacheControl: env.S3_CACHE_CONTROL, storageClass: env.S3_STORAGE_CLASS, metadata: env.S3_METADATA });
  return new S3DataStore({
    client,
    prefix: env.S3_KEY_PREFIX,
    partSize: env.S3_PART_SIZE,
    parallelParts: env.S3_PARALLEL_PARTS,
    bufferMemory: env.S3_BUFFER_MEMORY,
    streamParts: features.streamParts,
    releaseChunks: features.releaseChunks,
    metrics,
    // The finished object is stored with the type and disposition a download is served with, and
    // the whole-upload digest the client sent (RFC 9530 Repr-Digest).
    objectHeaders: (upload) => ({ ...settings, ...contentHeaders(upload.metadata), ...digestMetadata(upload.digest) }),
    downloadRedirect: env.S3_DOWNLOAD_REDIRECT ? { expiresSeconds: env.S3_DOWNLOAD_REDIRECT_SECONDS } : undefined,
  });
}

/**
 * Reaches the bucket before the server starts; a failure is one line naming the settings to fix:
 * S3_BUCKET (no such bucket), S3_REGION (the bucket is elsewhere), the credentials (403), or
 * S3_ENDPOINT (no answer: DNS, a refused connection).
 */
export async function checkS3(store: S3DataStore, env: ServerEnv): Promise<void> {
  try {
    await store.check();
  } catch (error) {
    const s3 = error instanceof S3Error ? error : error instanceof Error && error.cause instanceof S3Error ? error.cause : undefined;
    const endpoint = env.S3_ENDPOINT ? `S3_ENDPOINT=${redact(env.S3_ENDPOINT)}` : `S3_ENDPOINT unset: AWS in S3_REGION=${env.S3_REGION}`;
    const reason = errorText(error);
    // Deno's fetch says only "fetch failed"; the cause names DNS or the refused connection.
    const cause = error instanceof TypeError && error.cause !== undefined ? `: ${errorText(error.cause)}` : '';
    if (!s3) throw new ConfigError(`S3 cannot be reached: ${reason}${cause} (check ${endpoint})`);
    if (s3.status === 404 || s3.code === 'NoSuchBucket') throw new ConfigError(`${reason} (check S3_BUCKET=${env.S3_BUCKET}, ${endpoint})`);
    if (s3.status === 403) throw new ConfigError(`${reason} (check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or AWS_*)`);
    if (reason.includes('not in region')) throw new ConfigError(`${reason} (check S3_REGION=${env.S3_REGION})`);
    throw new ConfigError(`S3 refused the start-up check: ${reason} (check ${endpoint} and S3_BUCKET=${env.S3_BUCKET})`);
  }
}

export type SharedState = Pick<TusflowOptions, 'state' | 'locker' | 'rateLimiter'>;

/** Records, locks and the rate limit in Redis, shared by every instance with the same Redis and prefix. */
export function sharedState(env: ServerEnv, runner: ScriptRunner, rateLimiter?: RateLimiter): SharedState {
  const prefix = env.STATE_KEY_PREFIX;
  const state = new RedisStateStore({
    runner,
    prefix,
    finishedTtlMs: env.FINISHED_TTL_SECONDS * 1000,
    graceMs: Math.max(3_600_000, env.CLEANUP_INTERVAL_SECONDS * 2000),
  });
  return {
    state,
    // Locks beside the records: a PATCH reads, marks and saves its record with the lock's own calls.
    locker: new RedisLocker({ runner, prefix, leaseMs: env.LOCK_LEASE_MS, timeoutMs: 10_000, records: state }),
    rateLimiter: env.RATE_LIMIT ? (rateLimiter ?? new RedisRateLimiter({ runner, prefix, limit: env.RATE_LIMIT })) : undefined,
  };
}

/** Upstash state when UPSTASH_REDIS_REST_URL is set (any runtime, Workers and Deno Deploy included). */
export function upstashStateFromEnv(env: ServerEnv): SharedState | undefined {
  if (!env.UPSTASH_REDIS_REST_URL || !env.UPSTASH_REDIS_REST_TOKEN) return undefined;
  const redis = upstashClient({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });
  const limiter = env.RATE_LIMIT ? upstashRateLimiter(redis, env.STATE_KEY_PREFIX, env.RATE_LIMIT) : undefined;
  return sharedState(env, upstashRunner(redis), limiter);
}
