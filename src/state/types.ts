import type { Upload } from '../model/upload.ts';

/** Upload records. The data store can prove what the bytes are; this is where the lifecycle lives. */
export interface StateStore {
  get(id: string): Promise<Upload | undefined>;
  /** Creates or replaces the whole record. */
  put(upload: Upload): Promise<void>;
  /** Changes some fields of an existing record (the hot path); a field given as undefined is removed. */
  update(id: string, fields: RecordFields): Promise<void>;
  delete(id: string): Promise<void>;
  /** Unfinished uploads whose expiry is at or before `now`. */
  expired(now: number): AsyncIterable<Upload>;
  /**
   * Reserves an object key (one a hook chose) for upload `id`, atomically: true when it was free,
   * its term had passed, or it is already `id`'s; false when another upload holds it. With `termMs`
   * the reservation ends by itself that long from now (a creation under way: should the server stop
   * before the record is saved, the key is not held forever); claimed again without it, it lasts
   * until released (and claimed again with one, it lasts that term again).
   */
  claimKey(key: string, id: string, termMs?: number): Promise<boolean>;
  /** Ends `id`'s reservation of `key`; another upload's reservation of it stays. */
  releaseKey(key: string, id: string): Promise<void>;
}

/** Fields of an upload's record, as a state store changes them. */
export type RecordFields = Partial<Omit<Upload, 'id'>>;

export interface LockOptions {
  /** Read the upload's record with the lock (`Lease.record`), where the locker can do so in the same call. */
  read?: boolean;
  /**
   * Marks a transfer (a PATCH) started at this time (ms) as running on the record, from the record's
   * offset, for as long as the lock is held; where the locker saves records (`Lease.save`).
   */
  transfer?: number;
  /**
   * With `read`, where the locker `checksOwner`: refuse with FORBIDDEN, before touching the lock
   * (so a current holder is not asked to stop), when the record names another owner; when there is
   * no record to check, take the lock only if it is free (the caller checks the record it rebuilds).
   */
  owner?: string;
  /**
   * Take the lock only if no one holds it: LOCKED at once otherwise, and the holder is neither
   * asked to stop nor waited for (the expiry sweep: an upload being written is in use, not expired).
   */
  ifFree?: boolean;
}

/** Held by the one request allowed to write an upload. */
export interface Lease {
  /** Aborted when another request asks for the upload (or the server stops): finish up and release. */
  readonly signal: AbortSignal;
  /**
   * With `read`: the record as it was when the lock was taken (null: there is none). Undefined when
   * this locker does not read records: the caller asks the state store.
   */
  readonly record?: Upload | null;
  /**
   * Saves fields of the record in the same call as a renewal of the lease (nothing is saved once
   * the lease is lost). Only lockers that keep their locks with the records (one call where there
   * would be two); without it, the caller updates the state store itself. `withRenewal`: the
   * fields wait for the lease's next renewal (which is due anyway) instead of a call of their own.
   */
  save?(fields: RecordFields, options?: { withRenewal?: boolean }): Promise<void>;
  /**
   * Releases the lock. `fields` are saved with it in the same call, where the lease has `save`
   * (and must only be given then) — even if the lease was lost meanwhile, as a writer records what
   * it stored (the offset never moves back), except the running-transfer mark, which is the current
   * holder's; a transfer marked at `acquire` ends.
   */
  release(fields?: RecordFields): Promise<void>;
}

export interface Locker {
  /** Whether `acquire` with `read` checks `owner` on the record it reads (one state call, not two). */
  readonly checksOwner?: boolean;
  /**
   * Takes the upload's lock. A current holder is asked to stop (its lease's signal aborts) and is
   * waited for up to the locker's timeout; then the call fails with LOCKED.
   */
  acquire(id: string, options?: LockOptions): Promise<Lease>;
}

/** Requests per client per minute. `hit` counts one request and says whether it may proceed. */
export interface RateLimiter {
  hit(client: string): Promise<{ allowed: boolean; retryAfterSeconds: number }>;
}
