import { describe, expect, test } from 'bun:test';
import type { Upload } from '../../src/index.ts';
import { restoreHash, startHash } from '../../src/model/digest.ts';
import { newUploadId } from '../../src/model/id.ts';
import type { TusError } from '../../src/model/errors.ts';
import type { ScriptRunner } from '../../src/state/redis/client.ts';
import { RELEASE } from '../../src/state/redis/scripts.ts';
import type { StateStore } from '../../src/state/types.ts';
import { IOREDIS_KIND, STATE_KINDS } from '../support/state-stores.ts';

const upload = (fields: Partial<Upload> = {}): Upload => ({
  id: newUploadId(),
  offset: 0,
  length: 100,
  metadata: { filename: 'ä.txt', empty: null, binary: '\udcff\udc80x' }, // bytes that are not UTF-8 (see metadata.ts)
  createdAt: 1_700_000_000_000,
  expiresAt: Date.now() + 60_000,
  store: { uploadId: 'x/y+z', partSize: '5242880' },
  ...fields,
});

/** Ends the lease of the lock an upload's holder has, as when it runs out (a stalled instance). */
async function expireLease(state: StateStore, runner: ScriptRunner, id: string): Promise<void> {
  const lock = `${(state as unknown as { key(id: string): string }).key(id)}:lock`;
  const token = (await runner.run({ name: 'peek', source: "return redis.call('GET', KEYS[1])" }, [lock], [])) as string;
  expect(await runner.run(RELEASE, [lock], [token])).toBe(1);
}

for (const kind of [...STATE_KINDS, IOREDIS_KIND]) {
  describe(`state store: ${kind.name}`, () => {
    test('put then get gives the same record; unknown ids give undefined', async () => {
      const { state } = await kind.make();
      const u = upload();
      await state.put(u);
      expect(await state.get(u.id)).toEqual(u);
      expect(await state.get(newUploadId())).toBeUndefined();
      const deferred = upload({ length: undefined });
      await state.put(deferred);
      expect((await state.get(deferred.id))?.length).toBeUndefined();
    });

    test('update changes fields, removes fields given as undefined, ignores unknown ids', async () => {
      const { state } = await kind.make();
      const u = upload({ length: undefined });
      await state.put(u);
      const finishedAt = Date.now();
      await state.update(u.id, { offset: 40, length: 90, expiresAt: undefined, finishedAt });
      const { expiresAt: _, length: __, ...rest } = u;
      expect(await state.get(u.id)).toEqual({ ...rest, offset: 40, length: 90, finishedAt });
      await state.update(newUploadId(), { offset: 1 });
    });

    test('the whole-upload digest and its running state go with the offset: put, update, a release; read back with the lock too', async () => {
      const { state, locker } = await kind.make();
      const running = startHash('sha-512');
      const u = upload({ digest: { algorithm: 'sha-512', expected: 'AAAA', state: running.save() } });
      await state.put(u);
      expect(await state.get(u.id)).toEqual(u);
      running.update(new Uint8Array(150).fill(7));
      await state.update(u.id, { offset: 150, digest: { algorithm: 'sha-512', expected: 'AAAA', state: running.save() } });
      const saved = (await state.get(u.id))!;
      expect([saved.offset, restoreHash('sha-512', saved.digest!.state!)?.hashed]).toEqual([150, 150]);
      if (kind.name === 'embedded') return;
      const lease = await locker.acquire(u.id, { read: true, transfer: 1 });
      expect(lease.record?.digest).toEqual(saved.digest);
      running.update(new Uint8Array(50).fill(8));
      await lease.release({ offset: 200, digest: { algorithm: 'sha-512', expected: 'AAAA', state: running.save() } });
      const next = await locker.acquire(u.id, { read: true });
      expect([next.record?.offset, restoreHash('sha-512', next.record!.digest!.state!)?.hashed]).toEqual([200, 200]);
      await next.release();
    });

    test('a save whose offset is behind the record leaves the running digest that covers the record offset', async () => {
      const { state, locker, runner } = await kind.make();
      const running = startHash('sha-256');
      const u = upload({ digest: { algorithm: 'sha-256', state: running.save() } });
      await state.put(u);
      running.update(new Uint8Array(30).fill(1));
      const at30 = { algorithm: 'sha-256' as const, state: running.save() };
      running.update(new Uint8Array(20).fill(2));
      const at50 = { algorithm: 'sha-256' as const, state: running.save() };
      await state.update(u.id, { offset: 50, digest: at50 });
      await state.update(u.id, { offset: 30, digest: at30 });
      let saved = (await state.get(u.id))!;
      expect([saved.offset, restoreHash('sha-256', saved.digest!.state!)?.hashed]).toEqual([50, 50]);
      if (kind.name === 'embedded') return;
      // A writer whose lease ran out releases with a lower offset and its state: both are refused.
      const late = await locker.acquire(u.id, { read: true, transfer: 1 });
      await expireLease(state, runner!, u.id);
      const holder = await locker.acquire(u.id, { read: true, transfer: 2 });
      running.update(new Uint8Array(10).fill(3));
      await holder.release({ offset: 60, digest: { algorithm: 'sha-256', state: running.save() } });
      await late.release({ offset: 30, digest: at30 });
      saved = (await state.get(u.id))!;
      expect([saved.offset, restoreHash('sha-256', saved.digest!.state!)?.hashed]).toEqual([60, 60]);
    });

    test('the offset never moves back', async () => {
      const { state } = await kind.make();
      const u = upload();
      await state.put(u);
      await state.update(u.id, { offset: 50 });
      await state.update(u.id, { offset: 30 });
      expect((await state.get(u.id))?.offset).toBe(50);
    });

    test('delete removes the record', async () => {
      const { state } = await kind.make();
      const u = upload();
      await state.put(u);
      await state.delete(u.id);
      expect(await state.get(u.id)).toBeUndefined();
    });

    test('expired lists unfinished uploads whose expiry passed, and only those', async () => {
      const { state } = await kind.make();
      const now = Date.now();
      const due = upload({ expiresAt: now - 1000 });
      const later = upload({ expiresAt: now + 60_000 });
      const finished = upload({ expiresAt: now - 1000 });
      const extended = upload({ expiresAt: now - 1000 });
      for (const u of [due, later, finished, extended]) await state.put(u);
      await state.update(finished.id, { offset: 100, finishedAt: now, expiresAt: undefined });
      await state.update(extended.id, { offset: 10, expiresAt: now + 60_000 });
      const ids: string[] = [];
      for await (const u of state.expired(now)) ids.push(u.id);
      expect(ids).toEqual([due.id]);
    });

    test('claimKey: one upload holds a key until it releases it; claims race, one wins', async () => {
      const { state } = await kind.make();
      const key = `users/42/a b{c}é.bin ${crypto.randomUUID()}`;
      const [a, b] = [newUploadId(), newUploadId()];
      expect(await state.claimKey(key, a)).toBe(true);
      expect(await state.claimKey(key, a)).toBe(true); // the holder again: still its own
      expect(await state.claimKey(key, b)).toBe(false);
      expect(await state.claimKey(`${key}x`, b)).toBe(true); // another key
      await state.releaseKey(key, b); // not b's to release
      expect(await state.claimKey(key, b)).toBe(false);
      await state.releaseKey(key, a);
      expect(await state.claimKey(key, b)).toBe(true);

      const contested = `race/${crypto.randomUUID()}`;
      const ids = Array.from({ length: 8 }, () => newUploadId());
      const won = await Promise.all(ids.map((id) => state.claimKey(contested, id)));
      expect(won.filter(Boolean)).toHaveLength(1);
      // Reservations without a term never expire: leave none behind in the shared Redis.
      await Promise.all([state.releaseKey(key, b), state.releaseKey(`${key}x`, b), ...ids.map((id) => state.releaseKey(contested, id))]);
    });

    test('claimKey with a term: the reservation ends by itself after it, unless its holder claims it again for good', async () => {
      const { state } = await kind.make();
      const [lapsing, kept] = [`term/${crypto.randomUUID()}`, `term/${crypto.randomUUID()}`];
      const [a, b] = [newUploadId(), newUploadId()];
      expect(await state.claimKey(lapsing, a, 1000)).toBe(true);
      expect(await state.claimKey(kept, a, 1000)).toBe(true);
      expect(await state.claimKey(kept, a)).toBe(true); // the holder again, for good
      expect(await state.claimKey(lapsing, b, 1000)).toBe(false); // within the term
      await Bun.sleep(1200);
      expect(await state.claimKey(kept, b, 1000)).toBe(false);
      expect(await state.claimKey(lapsing, b)).toBe(true); // the term passed: the key is free
      expect(await state.claimKey(lapsing, a, 1000)).toBe(false);
      await state.releaseKey(lapsing, a); // a's reservation ended: not a's to release any more
      expect(await state.claimKey(lapsing, a, 1000)).toBe(false);
      await Promise.all([state.releaseKey(lapsing, b), state.releaseKey(kept, a)]);
    });
  });

  describe(`locker: ${kind.name}`, () => {
    test('one holder at a time; a second request asks the holder to stop and gets the lock after release', async () => {
      const { locker } = await kind.make();
      const id = newUploadId();
      const first = await locker.acquire(id);
      const second = locker.acquire(id);
      // The holder is told (at once in-process, at its next renewal across instances).
      if (!first.signal.aborted) await new Promise((resolve) => first.signal.addEventListener('abort', resolve, { once: true }));
      await first.release();
      const lease = await second;
      expect(lease.signal.aborted).toBe(false);
      await lease.release();
    });

    test('a holder that does not let go: the waiter gets LOCKED after the timeout', async () => {
      const { locker } = await kind.make({ lockTimeoutMs: 400, leaseMs: 5000 });
      const id = newUploadId();
      const held = await locker.acquire(id);
      const started = Date.now();
      const error = await locker.acquire(id).catch((e) => e);
      expect((error as TusError).code).toBe('LOCKED');
      expect(Date.now() - started).toBeLessThan(2000);
      await held.release();
      await (await locker.acquire(id)).release();
    });

    test('ifFree: LOCKED at once while the lock is held, and the holder is not asked to stop', async () => {
      // A short lease: a stop request would reach a shared locker's holder at its next renewal (200 ms).
      const { locker } = await kind.make({ leaseMs: 600, lockTimeoutMs: 3000 });
      const id = newUploadId();
      const held = await locker.acquire(id);
      const started = Date.now();
      const error = await locker.acquire(id, { ifFree: true }).catch((e) => e);
      expect((error as TusError).code).toBe('LOCKED');
      expect(Date.now() - started).toBeLessThan(1000); // not the lock timeout
      await Bun.sleep(700);
      expect(held.signal.aborted).toBe(false);
      await held.release();
      await (await locker.acquire(id, { ifFree: true })).release();
    });

    test('locks of different uploads are independent', async () => {
      const { locker } = await kind.make();
      const a = await locker.acquire(newUploadId());
      const b = await locker.acquire(newUploadId());
      expect(a.signal.aborted || b.signal.aborted).toBe(false);
      await a.release();
      await b.release();
    });

    if (kind.name !== 'embedded') {
      test('a lease beside the records reads the record with the lock, marks and saves the transfer, and saves with the release', async () => {
        const { state, locker } = await kind.make();
        const u = upload({ offset: 10 });
        await state.put(u);
        const lease = await locker.acquire(u.id, { read: true, transfer: 1234 });
        // The mark starts at the record's offset, and is part of the record read.
        const transfer = { startedAt: 1234, startOffset: 10, received: 0, updatedAt: 1234 };
        expect(lease.record).toEqual({ ...u, transfer });
        expect((await state.get(u.id))?.transfer).toEqual(transfer);
        await lease.save!({ offset: 20, transfer: { startedAt: 1234, startOffset: 10, received: 10, updatedAt: 1300 } });
        expect((await state.get(u.id))?.offset).toBe(20);
        // Progress that waits for a renewal is not saved at once; the release ends the transfer.
        await lease.save!({ transfer: { startedAt: 1234, startOffset: 10, received: 15, updatedAt: 1400 } }, { withRenewal: true });
        expect((await state.get(u.id))?.transfer?.received).toBe(10);
        const finishedAt = Date.now();
        await lease.release({ offset: 30, finishedAt, expiresAt: undefined, length: 30 });
        const after = await state.get(u.id);
        expect([after?.offset, after?.transfer, after?.finishedAt, after?.expiresAt]).toEqual([30, undefined, finishedAt, undefined]);
        // Released: the next request gets the lock at once, and a finished upload left the expiry index.
        const next = await locker.acquire(u.id, { read: true });
        expect(next.record?.offset).toBe(30);
        await next.release();
        for await (const due of state.expired(Date.now() + 3_600_000)) expect(due.id).not.toBe(u.id);
        // No record: null, and nothing is created by the mark.
        const none = await locker.acquire(newUploadId(), { read: true, transfer: 1 });
        expect(none.record).toBeNull();
        await none.release();
      });

      test('a writer whose lease ran out records its offset with its release, but leaves the new holder its lock and transfer mark', async () => {
        const { state, locker, runner } = await kind.make();
        const u = upload({ offset: 0 });
        await state.put(u);
        const late = await locker.acquire(u.id, { read: true, transfer: 1 });
        // Its lease runs out (a stalled instance): the lock key goes, and another request takes the upload.
        await expireLease(state, runner!, u.id);
        const holder = await locker.acquire(u.id, { read: true, transfer: 2 });
        await late.release({ offset: 7 });
        const record = await state.get(u.id);
        expect([record?.offset, record?.transfer?.startedAt]).toEqual([7, 2]);
        // The holder still holds the lock: a third request must wait for it.
        await expect(locker.acquire(u.id)).rejects.toMatchObject({ code: 'LOCKED' });
        await holder.release();
        expect((await state.get(u.id))?.transfer).toBeUndefined();
      });

      test('a renewal by a token that does not hold the lock saves nothing; a released lease saves nothing more', async () => {
        const { state, locker, runner } = await kind.make();
        const u = upload({ offset: 0 });
        await state.put(u);
        const first = await locker.acquire(u.id, { read: true, transfer: 1 });
        const second = locker.acquire(u.id, { read: true }); // asks the first to stop
        await Bun.sleep(900); // the first's renewal sees the stop request
        expect(first.signal.aborted).toBe(true);
        await first.release({ offset: 5 });
        const taken = await second;
        expect(taken.record?.offset).toBe(5);
        await first.save!({ offset: 50 });
        const { RENEW } = await import('../../src/state/redis/scripts.ts');
        const store = state as unknown as { key(id: string): string; index: string; saveArgs(id: string, f: object): (string | number)[] };
        const base = store.key(u.id);
        const keys = [`${base}:lock`, `${base}:stop`, base, store.index];
        expect(await runner!.run(RENEW, keys, ['dead-owner', 600, ...store.saveArgs(u.id, { offset: 60 })])).toBe(0);
        expect((await state.get(u.id))?.offset).toBe(5);
        await taken.release();
      });

      test('a holder that died blocks the upload no longer than its lease; only the owner releases', async () => {
        const { locker, runner } = await kind.make({ leaseMs: 600, lockTimeoutMs: 3000 });
        const id = newUploadId();
        // A crashed instance: its lock is in Redis, and nobody renews it.
        const { LOCK_KEY } = { LOCK_KEY: `${(locker as unknown as { options: { prefix: string } }).options.prefix}{${id}}:lock` };
        const { ACQUIRE, RELEASE } = await import('../../src/state/redis/scripts.ts');
        expect(await runner!.run(ACQUIRE, [LOCK_KEY, LOCK_KEY.replace(/:lock$/, ':stop'), LOCK_KEY.replace(/:lock$/, '')], ['dead-owner', 600, '0', '', ''])).toEqual([
          1,
        ]);
        const started = Date.now();
        const lease = await locker.acquire(id);
        expect(Date.now() - started).toBeGreaterThanOrEqual(300);
        expect(Date.now() - started).toBeLessThan(1500);
        // The dead owner's token cannot release the new holder's lock.
        expect(await runner!.run(RELEASE, [LOCK_KEY], ['dead-owner'])).toBe(0);
        await lease.release();
      });
    }
  });
}
