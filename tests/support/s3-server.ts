import { AwsClient } from 'aws4fetch';
import { S3Client, type Fetch } from '../../src/storage/s3/client.ts';
import { S3DataStore } from '../../src/storage/s3/store.ts';
import { contentHeaders } from '../../src/protocol/download.ts';
import { MetricsRegistry } from '../../src/observability/metrics.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import type { StateStore, TusflowOptions } from '../../src/index.ts';
import { startS3, type S3Env } from './s3.ts';
import { startServer, type TestServer } from './server.ts';

export interface S3TestServer extends TestServer {
  s3: S3Env;
  bucket: string;
  store: S3DataStore;
  client: S3Client;
  /** The stored object's bytes, read straight from S3 (not through the server), or undefined. */
  object(key: string): Promise<Uint8Array | undefined>;
  /** Every key in the bucket. */
  keys(): Promise<string[]>;
}

export interface S3ServerOptions extends TusflowOptions {
  partSize?: number;
  parallelParts?: number;
  /**
   * What the Bun entry does (default true): stream parts while they arrive, send buffered parts
   * as streams, free request chunks once copied. False: what Deno and Workers do.
   */
  streamParts?: boolean;
  prefix?: string;
  /** Part buffers of all uploads together (the store's default when unset). */
  bufferMemory?: number;
  bufferWaitMs?: number;
  bucket?: string;
  state?: StateStore;
  fetch?: Fetch;
  /** Where the server's S3 client sends its requests (e.g. a proxy in front of radosgw); default radosgw itself. */
  endpoint?: string;
}

/** The options that shape the S3 client and store, as the server entries wire them. */
export type S3StoreTestOptions = Pick<
  S3ServerOptions,
  'partSize' | 'parallelParts' | 'streamParts' | 'prefix' | 'bufferMemory' | 'bufferWaitMs' | 'fetch' | 'endpoint'
> & {
  registry?: MetricsRegistry;
};

/** An S3 client and data store on a bucket of the test radosgw (a fresh bucket unless one is named). */
export async function makeS3Store(options: S3StoreTestOptions & { bucket?: string } = {}): Promise<{ s3: S3Env; bucket: string; client: S3Client; store: S3DataStore }> {
  const s3 = await startS3();
  const bucket = options.bucket ?? (await s3.newBucket());
  const registry = options.registry;
  const client = new S3Client({
    endpoint: options.endpoint ?? s3.endpoint,
    bucket,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    fetch: options.fetch,
    streamBodies: options.streamParts ?? true,
    metrics: registry,
  });
  const store = new S3DataStore({
    client,
    prefix: options.prefix ?? '',
    partSize: options.partSize ?? 5 * 1024 * 1024,
    parallelParts: options.parallelParts ?? 4,
    streamParts: options.streamParts ?? true,
    releaseChunks: options.streamParts ?? true,
    bufferMemory: options.bufferMemory,
    bufferWaitMs: options.bufferWaitMs,
    metrics: registry,
    objectHeaders: (upload) => contentHeaders(upload.metadata),
  });
  return { s3, bucket, client, store };
}

/** A Tusflow server on a loopback socket storing into a fresh bucket of the test radosgw. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  // One registry for the store and the server, as the server entries wire it.
  const registry = options.registry ?? new MetricsRegistry();
  const { s3, bucket, client, store } = await makeS3Store({ ...options, registry });
  const { partSize: _p, parallelParts: _n, prefix: _x, bucket: _b, fetch: _f, streamParts: _s, endpoint: _e, bufferMemory: _m, bufferWaitMs: _w, ...rest } = options;
  const server = await startServer({ state: new MemoryStateStore(), ...rest, store, registry });
  const raw = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: 's3', retries: 0 });
  return {
    ...server,
    s3,
    bucket,
    store,
    client,
    async object(key) {
      const res = await raw.fetch(`${s3.endpoint}/${bucket}/${key}`);
      if (res.status === 404) return undefined;
      if (!res.ok) throw new Error(`GET ${key}: ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    async keys() {
      const res = await raw.fetch(`${s3.endpoint}/${bucket}?list-type=2`);
      return [...(await res.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!);
    },
  };
}
