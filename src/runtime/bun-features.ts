import { bunRedisRunner } from '../state/redis-bun.ts';
import type { RuntimeFeatures } from '../wiring/server.ts';

/**
 * What Bun offers the stores: its fetch sends a streamed body with a fixed Content-Length, the
 * chunks of a Bun.serve request body are fresh buffers nobody else holds, it has a Redis client,
 * and a native streaming SHA-256.
 */
export const bunFeatures: RuntimeFeatures = {
  streamParts: true,
  releaseChunks: true,
  redis: bunRedisRunner,
  sha256: () => new Bun.CryptoHasher('sha256'),
};
