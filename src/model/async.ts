/**
 * Deadlines and retries, one of each for every layer: the S3 client, webhooks and Redis use the
 * same two, so their semantics are stated (and tested) once.
 */

/** What a deadline rejects with unless told otherwise: named as AbortSignal.timeout's reason is. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Runs `work` with a signal that aborts `ms` after the start, and rejects with `reason()` then,
 * whether or not the work heeds the signal: a call that hangs (an answer that never comes, or
 * whose body stops) counts as a failure instead of holding its caller. The work's own outcome, if
 * it comes later, is ignored.
 */
export async function withTimeout<T>(
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
  reason: () => Error = () => new TimeoutError(`no answer within ${ms} ms`),
): Promise<T> {
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = reason();
      // Rejected before the abort, so the race ends with this reason and not with whatever the
      // aborted work throws.
      reject(error);
      abort.abort(error);
    }, ms);
  });
  try {
    return await Promise.race([work(abort.signal), late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RetryOptions {
  /** Attempts in all, the first included (1: no retry). */
  attempts: number;
  /** No retry starts later than this after the first attempt did (its wait included). */
  budgetMs: number;
  /**
   * The longest wait after failed attempt `attempt` (1 for the first); the wait is a random time
   * up to it ("full jitter"), so clients that failed together do not retry together.
   */
  maxDelayMs(attempt: number): number;
  /** Whether an error is worth another attempt (default: every error is). */
  retryable?(error: unknown): boolean;
  /** Told of each retry before its wait (for counting retries). */
  onRetry?(error: unknown, attempt: number, delayMs: number): void;
}

/** Waits that double from `baseMs` with each attempt, up to `capMs`. */
export const exponential =
  (baseMs: number, capMs = Number.POSITIVE_INFINITY) =>
  (attempt: number): number =>
    Math.min(capMs, baseMs * 2 ** (attempt - 1));

/**
 * Runs `work` until it succeeds, retrying failures that are `retryable` after a jittered wait,
 * bounded in attempts and time; the last failure is thrown. `work` is told its attempt (from 1).
 */
export async function retry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      const delay = Math.random() * options.maxDelayMs(attempt);
      const retryable = options.retryable?.(error) ?? true;
      if (!retryable || attempt >= options.attempts || Date.now() - started + delay > options.budgetMs) throw error;
      options.onRetry?.(error, attempt, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
