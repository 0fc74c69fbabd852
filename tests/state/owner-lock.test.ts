/**
 * The lock's owner check (Locker.checksOwner: Redis and Upstash), at the locker itself: another user
 * is refused before the lock is touched, so a PATCH running for the upload's owner goes on; a user
 * named '' is a user like any other; and where there is no record to check (one being rebuilt from
 * storage), the lock is taken only when free, never by asking its holder to stop.
 */
import { describe, expect, test } from 'bun:test';
import type { Upload } from '../../src/index.ts';
import { newUploadId } from '../../src/model/id.ts';
import { STATE_KINDS } from '../support/state-stores.ts';

const record = (owner: string): Upload => ({ id: newUploadId(), offset: 0, length: 10, metadata: {}, createdAt: Date.now(), expiresAt: Date.now() + 60_000, owner });

for (const kind of STATE_KINDS.filter((k) => k.name !== 'embedded')) {
  describe(`lock owner check: ${kind.name}`, () => {
    test("another user (named '' too) is refused, and the holder's lease is not asked to stop", async () => {
      const { state, locker } = await kind.make({ leaseMs: 600, lockTimeoutMs: 700 });
      expect(locker.checksOwner).toBe(true);
      const upload = record('alice');
      await state.put(upload);
      const held = await locker.acquire(upload.id, { read: true, owner: 'alice' });
      for (const user of ['bob', '']) {
        await expect(locker.acquire(upload.id, { read: true, owner: user })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      }
      // Past a renewal (every third of the lease): a stop request would have aborted the holder by now.
      await Bun.sleep(500);
      expect(held.signal.aborted).toBe(false);
      await held.release();
      const mine = await locker.acquire(upload.id, { read: true, owner: 'alice' });
      expect(mine.record?.owner).toBe('alice');
      await mine.release();
    });

    test('without a record the lock is taken only when free: a user it cannot check waits, and does not stop the holder', async () => {
      const { locker } = await kind.make({ leaseMs: 600, lockTimeoutMs: 700 });
      const id = newUploadId();
      const held = await locker.acquire(id, { read: true, owner: 'alice' });
      expect(held.record).toBeNull();
      await expect(locker.acquire(id, { read: true, owner: 'bob' })).rejects.toMatchObject({ code: 'LOCKED' });
      expect(held.signal.aborted).toBe(false);
      await held.release();
      // Free, it is taken (the caller checks the owner on the record it rebuilds).
      const next = await locker.acquire(id, { read: true, owner: 'bob' });
      await next.release();
      // Without a user to check, a request still asks the holder to stop, as a PATCH taking over does.
      const first = await locker.acquire(id, { read: true });
      const second = locker.acquire(id, { read: true });
      await Bun.sleep(500);
      expect(first.signal.aborted).toBe(true);
      await first.release();
      await (await second).release();
    });
  });
}
