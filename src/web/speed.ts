/** Speed is measured over this window. */
const SPEED_WINDOW_MS = 3000;
/** Less than this since the oldest sample is too little to tell a speed. */
const SETTLING_MS = 500;

/** An upload's speed over the last few seconds, and the time left at that speed. */
export class SpeedMeter {
  #samples: Array<[time: number, bytes: number]> = [];

  /** Forgets the samples: a paused or restarted upload starts measuring anew. */
  reset(): void {
    this.#samples = [];
  }

  /** Records that `sent` bytes are sent at `now` (ms); the estimate, once there is one. */
  sample(now: number, sent: number, total: number): { bytesPerSecond: number; secondsLeft: number } | undefined {
    this.#samples.push([now, sent]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > SPEED_WINDOW_MS) this.#samples.shift();
    const [t0, b0] = this.#samples[0]!;
    const bytesPerSecond = now > t0 ? ((sent - b0) / (now - t0)) * 1000 : 0;
    if (!(bytesPerSecond > 0 && now - t0 > SETTLING_MS)) return undefined;
    return { bytesPerSecond, secondsLeft: (total - sent) / bytesPerSecond };
  }
}
