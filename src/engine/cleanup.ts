import { TusError } from '../model/errors.ts';
import { isFinished, type Upload } from '../model/upload.ts';
import type { StateStore } from '../state/types.ts';
import type { DataStore } from '../storage/types.ts';

/** What the sweep needs of the engine: its stores and clock, and its rules for locking and removing. */
export interface CleanupContext {
  state: StateStore;
  store: DataStore;
  /** How long an unfinished upload lives after its last write. */
  ttlMs: number;
  now(): number;
  /** Runs `work` holding the upload's lock; LOCKED when another request holds it. */
  withLock<T>(id: string, work: () => Promise<T>): Promise<T>;
  /**
   * Removes an upload the state store knows: its bytes, its record, then its key. Resolves with
   * false when it was kept instead (a direct upload found stored whole, and finished).
   */
  remove(upload: Upload): Promise<boolean>;
  /** Gives back the object key an upload reserved, if it has one. */
  releaseKey(upload: Upload): Promise<void>;
  /** Runs a storage call, its failure a STORAGE_FAILED. */
  storage<T>(call: () => Promise<T>): Promise<T>;
}

/**
 * Removes unfinished uploads whose expiry has passed, and storage no record knows any more;
 * resolves with how many went. An upload whose lock is held is busy, so not expired: it is left
 * for the next sweep.
 */
export async function removeExpired(ctx: CleanupContext): Promise<number> {
  let removed = 0;
  const attempt = async (id: string, work: () => Promise<boolean>) => {
    try {
      if (await ctx.withLock(id, work)) removed++;
    } catch (error) {
      if (!(error instanceof TusError && error.code === 'LOCKED')) throw error;
    }
  };
  for await (const upload of ctx.state.expired(ctx.now())) {
    await attempt(upload.id, async () => {
      const current = await ctx.state.get(upload.id);
      if (current?.expiresAt === undefined || current.expiresAt > ctx.now()) return false;
      return ctx.remove(current);
    });
  }
  // Orphans: storage the state store no longer knows (its records were lost or expired
  // unnoticed), started longer ago than an upload may live, and never finished.
  const stale = ctx.store.stale?.(ctx.now() - ctx.ttlMs) ?? [];
  for await (const found of stale) {
    const id = found.id;
    await attempt(id, async () => {
      if (await ctx.state.get(id)) return false;
      const orphan = (await ctx.store.recover?.(id)) ?? { offset: 0, metadata: {}, createdAt: 0, ...found };
      if (isFinished(orphan) && orphan.finishedAt !== undefined) return false;
      await ctx.storage(() => ctx.store.remove(orphan));
      await ctx.releaseKey(orphan);
      return true;
    });
  }
  return removed;
}
