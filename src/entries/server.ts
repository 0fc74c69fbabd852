/**
 * `tusflow/server`: what `npm start` builds from its environment, in one call. Server-only (it may
 * choose the file stores or TCP Redis).
 */
export { tusflowFromEnv } from '../wiring/from-env.ts';
export { serverStores, serverConfig, type ServerStores, type RuntimeFeatures } from '../wiring/server.ts';
export type { S3Features } from '../wiring/env-stores.ts';
