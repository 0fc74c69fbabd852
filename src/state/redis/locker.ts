import { TusError } from '../../model/errors.ts';
import type { Lease, Locker } from '../types.ts';
import type { ScriptRunner } from './client.ts';
import { ACQUIRE, RELEASE, RENEW } from './scripts.ts';

export interface RedisLockerOptions {
  runner: ScriptRunner;
  prefix: string;
  /** A holder that stops renewing (it crashed) blocks the upload at most this long. */
  leaseMs: number;
  /** How long a request waits for the current holder to let go. */
  timeoutMs: number;
}

/**
 * One writer per upload across every instance sharing the Redis. The holder renews its lease while
 * it streams; a request that finds the upload busy leaves a stop request, which the holder sees at
 * its next renewal, and polls until the lock is free. Only the owner token can release.
 */
export class RedisLocker implements Locker {
  constructor(readonly options: RedisLockerOptions) {}

  async acquire(id: string): Promise<Lease> {
    const { runner, prefix, leaseMs, timeoutMs } = this.options;
    const lock = `${prefix}{${id}}:lock`;
    const keys = [lock, `${lock.slice(0, -':lock'.length)}:stop`];
    const token = crypto.randomUUID();
    const deadline = Date.now() + timeoutMs;
    for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
      if ((await runner.run(ACQUIRE, keys, [token, leaseMs])) === 1) break;
      if (Date.now() + wait > deadline) throw new TusError('LOCKED');
      await new Promise((resolve) => setTimeout(resolve, wait));
    }

    const controller = new AbortController();
    const renew = async () => {
      try {
        const state = await runner.run(RENEW, keys, [token, leaseMs]);
        if (state === 0) controller.abort(new Error('the lock lease was lost'));
        if (state === 2) controller.abort(new Error('another request took over the upload'));
      } catch (error) {
        controller.abort(error); // cannot prove the lease: stop writing
      }
    };
    const timer = setInterval(() => void renew(), Math.max(50, Math.floor(leaseMs / 3)));
    return {
      signal: controller.signal,
      async release() {
        clearInterval(timer);
        await runner.run(RELEASE, keys, [token]);
      },
    };
  }
}
