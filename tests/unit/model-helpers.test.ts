import { expect, test } from 'bun:test';
import { exponential, retry, TimeoutError, withTimeout } from '../../src/model/async.ts';
import { toBase64, toHex } from '../../src/model/encoding.ts';

test("withTimeout: the work's result or failure when it is in time", async () => {
  expect(await withTimeout(1_000, async () => 7)).toBe(7);
  await expect(withTimeout(1_000, async () => Promise.reject(new Error('own')))).rejects.toThrow('own');
});

test("withTimeout: past the deadline, the reason, and the work's signal aborts with it", async () => {
  let seen: AbortSignal | undefined;
  const started = performance.now();
  const outcome = withTimeout(30, (signal) => {
    seen = signal;
    return new Promise<never>(() => {}); // heeds nothing
  });
  await expect(outcome).rejects.toBeInstanceOf(TimeoutError);
  expect(performance.now() - started).toBeLessThan(1_000);
  expect(seen?.aborted).toBe(true);
  expect(seen?.reason).toBeInstanceOf(TimeoutError);
});

test('withTimeout: a work that fails because it was aborted still ends with the given reason', async () => {
  const reason = new Error('S3 PutObject did not answer within 1 s');
  const outcome = withTimeout(
    20,
    (signal) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))),
    () => reason,
  );
  await expect(outcome).rejects.toBe(reason);
});

test('retry: until success, the work told its attempt; the waits are jittered below the exponential cap', async () => {
  const delays: number[] = [];
  const seen: number[] = [];
  const result = await retry(
    async (attempt) => {
      seen.push(attempt);
      if (attempt < 4) throw new Error(`fail ${attempt}`);
      return 'done';
    },
    { attempts: 5, budgetMs: 10_000, maxDelayMs: exponential(2, 5), onRetry: (_, __, delay) => void delays.push(delay) },
  );
  expect(result).toBe('done');
  expect(seen).toEqual([1, 2, 3, 4]);
  expect(delays.length).toBe(3);
  for (const [i, delay] of delays.entries()) expect(delay).toBeLessThanOrEqual([2, 4, 5][i]!);
  expect(exponential(100, 2_000)(1)).toBe(100);
  expect(exponential(100, 2_000)(5)).toBe(1_600);
  expect(exponential(100, 2_000)(6)).toBe(2_000);
  expect(exponential(400)(10)).toBe(400 * 512);
});

test('retry: the last failure once the attempts are spent, at once for one that is not retryable', async () => {
  let calls = 0;
  const failing = async () => {
    calls++;
    throw new Error(`failure ${calls}`);
  };
  await expect(retry(failing, { attempts: 3, budgetMs: 10_000, maxDelayMs: () => 1 })).rejects.toThrow('failure 3');
  calls = 0;
  await expect(retry(failing, { attempts: 3, budgetMs: 10_000, maxDelayMs: () => 1, retryable: () => false })).rejects.toThrow('failure 1');
});

test('retry: no retry whose wait would end past the budget', async () => {
  let calls = 0;
  const started = performance.now();
  const failing = async () => {
    calls++;
    throw new Error('down');
  };
  // Every wait is up to 1 s and the budget is 0: the first failure is the last.
  await expect(retry(failing, { attempts: 10, budgetMs: 0, maxDelayMs: () => 1_000 })).rejects.toThrow('down');
  expect(calls).toBe(1);
  expect(performance.now() - started).toBeLessThan(500);
});

test('encoding: hex, two lowercase digits a byte; base64 padded, of any size', () => {
  expect(toHex(new Uint8Array([0, 1, 15, 16, 171, 255]))).toBe('00010f10abff');
  expect(toHex(new Uint8Array())).toBe('');
  expect(toBase64(new TextEncoder().encode('hello'))).toBe('aGVsbG8=');
  const large = Uint8Array.from({ length: 300_000 }, (_, i) => i & 0xff);
  expect(toBase64(large)).toBe(Buffer.from(large).toString('base64'));
});
