import type { DataStore } from '../storage/types.ts';

/**
 * What the engine can offer with its data store, read from the optional methods the store has
 * (as tusd's composer does): the HTTP side advertises tus extensions from it, and the engine
 * refuses a request that needs what the store lacks instead of failing halfway through it.
 *
 * Everything else every store does: `create`, `write` (creation-with-upload, checksum: a store
 * honours `verify`), `remove` (termination, and expiration, whose cleanup frees the bytes).
 */
export interface Capabilities {
  /** Final uploads made of partial ones, also of unfinished partials: the store's `concat`. */
  concatenation: boolean;
  /**
   * Uploads whose length is declared after creation. The engine keeps the length in its record; a
   * store that can rebuild records from storage alone (`recover`) keeps it there too, so it must be
   * told a declared length (`declareLength`), or a rebuilt record would have lost it.
   */
  deferredLength: boolean;
}

export function capabilitiesOf(store: DataStore): Capabilities {
  return {
    concatenation: typeof store.concat === 'function',
    deferredLength: typeof store.declareLength === 'function' || typeof store.recover !== 'function',
  };
}
