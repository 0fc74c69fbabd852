import type { ServerEnv } from '../../config.ts';
import { ConfigError } from '../../config.ts';
import { S3Client, type S3ClientConfig } from './client.ts';
import { S3DataStore } from './store.ts';

/** What the runtime's fetch and HTTP server allow the store to do (see S3StoreOptions). */
export interface S3Features {
  streamParts?: boolean;
  releaseChunks?: boolean;
  fixedLength?: S3ClientConfig['fixedLength'];
}

/** The S3 store the environment describes (S3_BUCKET set). Runtime-neutral: Workers use it too. */
export function s3StoreFromEnv(env: ServerEnv, features: S3Features = {}): S3DataStore {
  const accessKeyId = env.S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
  if (!env.S3_BUCKET) throw new ConfigError('S3_BUCKET is not set');
  if (!accessKeyId || !secretAccessKey) {
    throw new ConfigError('invalid configuration:\n  S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY (or AWS_*): required with S3_BUCKET');
  }
  const client = new S3Client({
    endpoint: env.S3_ENDPOINT,
    bucket: env.S3_BUCKET,
    region: env.S3_REGION,
    accessKeyId,
    secretAccessKey,
    sessionToken: env.S3_SESSION_TOKEN,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    streamBodies: features.streamParts,
    fixedLength: features.fixedLength,
  });
  return new S3DataStore({
    client,
    prefix: env.S3_KEY_PREFIX,
    partSize: env.S3_PART_SIZE,
    parallelParts: env.S3_PARALLEL_PARTS,
    bufferMemory: env.S3_BUFFER_MEMORY,
    streamParts: features.streamParts,
    releaseChunks: features.releaseChunks,
  });
}
