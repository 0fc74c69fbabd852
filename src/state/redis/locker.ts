import { TusError } from '../../model/errors.ts';
import type { Lease, LockOptions, Locker, RecordFields } from '../types.ts';
import type { ScriptRunner } from './client.ts';
import { ACQUIRE, RELEASE, RENEW, SAVE_RELEASE } from './scripts.ts';
import { decode, type RedisStateStore } from './store.ts';

export interface RedisLockerOptions {
  runner: ScriptRunner;
  prefix: string;
  /** A holder that stops renewing (it crashed) blocks the upload at most this long. */
  leaseMs: number;
  /** How long a request waits for the current holder to let go. */
  timeoutMs: number;
  /**
   * The state store whose records live in the same Redis (same runner and prefix). Leases then read
   * the record with the lock, save it with a renewal, and save it with the release: one command
   * each where there would be two (Upstash bills each).
   */
  records?: RedisStateStore;
}

/**
 * One writer per upload across every instance sharing the Redis. The holder renews its lease while
 * it streams; a request that finds the upload busy leaves a stop request, which the holder sees at
 * its next renewal, and polls until the lock is free. Only the owner token can release.
 */
export class RedisLocker implements Locker {
  constructor(readonly options: RedisLockerOptions) {}

  /** With the records in the same Redis, the lock's script reads the owner before it takes the lock. */
  get checksOwner(): boolean {
    return this.options.records !== undefined;
  }

  async acquire(id: string, options: LockOptions = {}): Promise<Lease> {
    const { runner, prefix, leaseMs, timeoutMs, records } = this.options;
    const base = records ? records.key(id) : `${prefix}{${id}}`;
    const [lock, stop] = [`${base}:lock`, `${base}:stop`];
    const token = crypto.randomUUID();
    const read = records !== undefined && options.read === true;
    const started = records !== undefined ? options.transfer : undefined;
    // The transfer's JSON around the record's offset, which only the script knows.
    const mark = started === undefined ? ['', ''] : [`{"startedAt":${started},"startOffset":`, `,"received":0,"updatedAt":${started}}`];
    // An empty user is a user too ('' must not mean "anyone").
    const user = read && options.owner !== undefined ? ['1', options.owner] : ['0', ''];
    const deadline = Date.now() + timeoutMs;
    let reply: unknown[];
    for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
      reply = (await runner.run(ACQUIRE, [lock, stop, base], [token, leaseMs, read ? '1' : '0', ...mark, ...user, options.ifFree ? '1' : '0'])) as unknown[];
      if (reply[0] === -1) throw new TusError('FORBIDDEN');
      if (reply[0] === 1) break;
      if (options.ifFree || Date.now() + wait > deadline) throw new TusError('LOCKED');
      await new Promise((resolve) => setTimeout(resolve, wait));
    }

    const controller = new AbortController();
    // A third of the lease, and often enough that the progress saved with it stays fresh (see model/progress).
    const every = Math.max(50, Math.min(Math.floor(leaseMs / 3), 5_000));
    let timer: ReturnType<typeof setTimeout> | undefined;
    let released = false;
    // Fields that wait for the next renewal (progress): saved with it, or with an earlier save.
    let pending: RecordFields | undefined;
    // A save is a renewal too, so while a PATCH saves its progress no other renewal is sent.
    const renew = async (fields?: RecordFields): Promise<void> => {
      clearTimeout(timer);
      if (released) return;
      timer = setTimeout(() => void renew().catch(() => {}), every);
      const changed = pending || fields ? { ...pending, ...fields } : undefined;
      pending = undefined;
      const save = changed && records ? records.saveArgs(id, changed) : [];
      try {
        // The record and the expiry index only when there is something to save (two hash slots then).
        const keys = save.length > 0 && records ? [lock, stop, base, records.index] : [lock, stop];
        const state = await runner.run(RENEW, keys, [token, leaseMs, ...save]);
        if (state === 0) controller.abort(new Error('the lock lease was lost'));
        if (state === 2) controller.abort(new Error('another request took over the upload'));
      } catch (error) {
        controller.abort(error); // cannot prove the lease: stop writing
        throw error;
      }
    };
    timer = setTimeout(() => void renew().catch(() => {}), every);
    return {
      signal: controller.signal,
      ...(read ? { record: decode(id, reply.slice(1) as string[]) ?? null } : {}),
      ...(records
        ? {
            save: async (fields: RecordFields, { withRenewal = false } = {}) => {
              if (!withRenewal) return renew(fields);
              pending = { ...pending, ...fields };
            },
          }
        : {}),
      async release(fields?: RecordFields) {
        if (released) return;
        released = true;
        clearTimeout(timer);
        // Pending progress is superseded: the release ends the transfer.
        const save = { ...(started === undefined ? {} : { transfer: undefined }), ...fields };
        try {
          if (records && Object.keys(save).length > 0) await runner.run(SAVE_RELEASE, [lock, base, records.index], [token, ...records.saveArgs(id, save)]);
          else await runner.run(RELEASE, [lock], [token]);
        } catch (error) {
          // Nothing saved: at least free the lock now rather than when its lease runs out.
          await runner.run(RELEASE, [lock], [token]).catch(() => {});
          throw error;
        }
      },
    };
  }
}
