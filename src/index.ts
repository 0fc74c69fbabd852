import type { Hono } from 'hono';
import { buildApp } from './app.ts';
import { optionsSchema, type TusflowOptions } from './config.ts';
import { UploadEngine } from './engine/engine.ts';
import { MemoryLocker } from './state/memory-locker.ts';
import { MemoryStateStore } from './state/memory.ts';
import { MemoryDataStore } from './storage/memory.ts';

export interface Tusflow {
  /** The whole server as a Hono app: mount it, or call `app.fetch(request)`. */
  app: Hono;
  fetch: (request: Request) => Promise<Response>;
  engine: UploadEngine;
  /** Cuts in-flight uploads (each keeps what arrived) and waits for them. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/**
 * Builds a tus server. With no stores given it keeps everything in memory; the server entries pass
 * the file system, S3 or Redis stores.
 */
export function createTusflow(input: TusflowOptions = {}): Tusflow {
  const options = optionsSchema.parse(input);
  const engine = new UploadEngine({
    store: options.store ?? new MemoryDataStore(),
    state: options.state ?? new MemoryStateStore(),
    locker: options.locker ?? new MemoryLocker(options.lockTimeoutMs),
    maxSize: options.maxSize,
    ttlMs: options.uploadTtlSeconds * 1000,
  });
  const app = buildApp(engine, options);
  return {
    app,
    fetch: async (request) => app.fetch(request),
    engine,
    shutdown: (timeoutMs) => engine.shutdown(timeoutMs),
  };
}

export { fromEnv, parseEnv, optionsSchema, envSchema, ConfigError } from './config.ts';
export type { TusflowOptions, ResolvedOptions, ServerEnv } from './config.ts';
export { UploadEngine } from './engine/engine.ts';
export type { Upload } from './engine/types.ts';
export type { Metadata } from './protocol/metadata.ts';
export { TusError, type ErrorCode } from './protocol/errors.ts';
export type { DataStore, WriteOptions, ByteRange } from './storage/types.ts';
export type { StateStore, Locker, Lease } from './state/types.ts';
export { MemoryStateStore } from './state/memory.ts';
export { MemoryLocker } from './state/memory-locker.ts';
export { MemoryDataStore } from './storage/memory.ts';
