import { resolve } from 'node:path';
import type { ServerEnv, TusflowOptions } from '../config.ts';
import { FileDataStore } from '../storage/file/store.ts';
import { FileStateStore } from '../state/file.ts';

/**
 * The stores a server process uses, from its environment. With nothing configured, uploads live
 * under DATA_DIR and survive restarts.
 */
export function serverStores(env: ServerEnv): { stores: Pick<TusflowOptions, 'store' | 'state'>; description: string } {
  const dir = resolve(env.DATA_DIR);
  return {
    stores: { store: new FileDataStore(dir), state: new FileStateStore(dir) },
    description: `files in ${dir}`,
  };
}
