import { TusError } from '../model/errors.ts';
import { withTimeout } from '../model/async.ts';
import type { Lease, LockOptions, Locker } from './types.ts';

interface Holder {
  controller: AbortController;
  released: Promise<void>;
}

/**
 * One writer per upload within one process. A request that finds the upload busy asks the holder
 * to stop — usually the holder is a PATCH whose client already went away and reconnected — and
 * takes over once the holder has committed what it received.
 */
export class MemoryLocker implements Locker {
  readonly #held = new Map<string, Holder>();

  constructor(readonly timeoutMs = 10_000) {}

  async acquire(id: string, options: LockOptions = {}): Promise<Lease> {
    const deadline = Date.now() + this.timeoutMs;
    for (let holder = this.#held.get(id); holder; holder = this.#held.get(id)) {
      if (options.ifFree) throw new TusError('LOCKED');
      holder.controller.abort(new Error('another request took over the upload'));
      const released = holder.released;
      await withTimeout(
        Math.max(0, deadline - Date.now()),
        () => released,
        () => new TusError('LOCKED'),
      );
    }
    const controller = new AbortController();
    let release!: () => void;
    const holder: Holder = { controller, released: new Promise((resolve) => (release = resolve)) };
    this.#held.set(id, holder);
    return {
      signal: controller.signal,
      release: async () => {
        if (this.#held.get(id) === holder) this.#held.delete(id);
        release();
      },
    };
  }
}
