import { resolve } from 'node:path';
import type { ServerEnv, TusflowOptions } from '../config.ts';
import { FileDataStore } from '../storage/file/store.ts';
import { s3StoreFromEnv } from '../storage/s3/from-env.ts';
import { FileStateStore } from '../state/file.ts';

export interface ServerStores {
  stores: Pick<TusflowOptions, 'store' | 'state'>;
  description: string;
}

/**
 * The stores a server process uses, from its environment: S3 when S3_BUCKET is set (checked before
 * the server starts, so bad credentials or a missing bucket fail at once), otherwise files under
 * DATA_DIR. Upload records live under DATA_DIR either way until a shared state store is configured.
 */
export async function serverStores(env: ServerEnv): Promise<ServerStores> {
  const dir = resolve(env.DATA_DIR);
  const state = new FileStateStore(dir);
  if (env.S3_BUCKET) {
    const store = s3StoreFromEnv(env);
    await store.check();
    return { stores: { store, state }, description: `S3 bucket ${env.S3_BUCKET}, records in ${dir}` };
  }
  return { stores: { store: new FileDataStore(dir), state }, description: `files in ${dir}` };
}
