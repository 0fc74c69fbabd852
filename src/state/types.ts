import type { Upload } from '../model/upload.ts';

/** Upload records. The data store can prove what the bytes are; this is where the lifecycle lives. */
export interface StateStore {
  get(id: string): Promise<Upload | undefined>;
  /** Creates or replaces the whole record. */
  put(upload: Upload): Promise<void>;
  /** Changes some fields of an existing record (the hot path); a field given as undefined is removed. */
  update(id: string, fields: Partial<Omit<Upload, 'id'>>): Promise<void>;
  delete(id: string): Promise<void>;
  /** Unfinished uploads whose expiry is at or before `now`. */
  expired(now: number): AsyncIterable<Upload>;
  /**
   * Reserves an object key (one a hook chose) for upload `id`, atomically: true when it was free
   * or is already `id`'s, false when another upload holds it. A reservation lasts until released.
   */
  claimKey(key: string, id: string): Promise<boolean>;
  /** Ends `id`'s reservation of `key`; another upload's reservation of it stays. */
  releaseKey(key: string, id: string): Promise<void>;
}

/** Held by the one request allowed to write an upload. */
export interface Lease {
  /** Aborted when another request asks for the upload (or the server stops): finish up and release. */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

export interface Locker {
  /**
   * Takes the upload's lock. A current holder is asked to stop (its lease's signal aborts) and is
   * waited for up to the locker's timeout; then the call fails with LOCKED.
   */
  acquire(id: string): Promise<Lease>;
}

/** Requests per client per minute. `hit` counts one request and says whether it may proceed. */
export interface RateLimiter {
  hit(client: string): Promise<{ allowed: boolean; retryAfterSeconds: number }>;
}
