import { bunRedisRunner } from '../state/redis-bun.ts';
import type { RuntimeFeatures } from '../wiring/server.ts';

/**
 * What Bun offers the stores: its fetch sends a streamed body with a fixed Content-Length, the
 * chunks of a Bun.serve request body are fresh buffers nobody else holds, and it has a Redis client.
 */
export const bunFeatures: RuntimeFeatures = { streamParts: true, releaseChunks: true, redis: bunRedisRunner };
