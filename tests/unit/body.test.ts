import { expect, test } from 'bun:test';
import { meterBody } from '../../src/engine/body.ts';
import { TusError } from '../../src/model/errors.ts';

const streamOf = (...chunks: number[][]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(new Uint8Array(chunk));
      c.close();
    },
  });

async function drain(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of stream) out.push(...chunk);
  return out;
}

const never = new AbortController().signal;

test('passes bytes through up to the limit', async () => {
  const m = meterBody(streamOf([1, 2], [3]), { limit: 3, overflow: 'EXCEEDS_LENGTH', signal: never });
  expect(await drain(m.stream)).toEqual([1, 2, 3]);
  expect(m.interrupted).toBe(false);
});

test('a byte past the limit errors the stream with the overflow code', async () => {
  const m = meterBody(streamOf([1, 2], [3, 4]), { limit: 3, overflow: 'TOO_LARGE', signal: never });
  const error = await drain(m.stream).catch((e) => e);
  expect(error).toBeInstanceOf(TusError);
  expect((error as TusError).code).toBe('TOO_LARGE');
});

test('a failing source ends the stream normally (keep what arrived) without a checksum', async () => {
  let n = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (n++ === 0) c.enqueue(new Uint8Array([7, 8]));
      else c.error(new Error('connection reset'));
    },
  });
  const m = meterBody(source, { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never });
  expect(await drain(m.stream)).toEqual([7, 8]);
  expect(m.interrupted).toBe(true);
});

test('a failing source errors the stream when a checksum was sent (a partial body cannot match it)', async () => {
  const source = new ReadableStream<Uint8Array>({ pull: (c) => c.error(new Error('reset')) });
  const m = meterBody(source, { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never, checksum: { algorithm: 'sha1', digest: 'AAAA' } });
  const error = await drain(m.stream).catch((e) => e);
  expect((error as TusError).code).toBe('BODY_INTERRUPTED');
});

test('an abort ends a stalled read at once', async () => {
  const controller = new AbortController();
  const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
  const m = meterBody(stalled, { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  expect(await drain(m.stream)).toEqual([]);
  expect(m.interrupted).toBe(true);
});

test('verify compares the digest of everything read', async () => {
  const digest = new Bun.CryptoHasher('sha256').update(new Uint8Array([1, 2, 3])).digest('base64');
  const good = meterBody(streamOf([1], [2, 3]), { limit: 9, overflow: 'EXCEEDS_LENGTH', signal: never, checksum: { algorithm: 'sha256', digest } });
  await drain(good.stream);
  expect(() => good.verify()).not.toThrow();
  const bad = meterBody(streamOf([1], [2, 4]), { limit: 9, overflow: 'EXCEEDS_LENGTH', signal: never, checksum: { algorithm: 'sha256', digest } });
  await drain(bad.stream);
  expect(() => bad.verify()).toThrow(TusError);
});

/** A body that sends these chunks and then nothing, ever (a client that stalls). */
const stallingAfter = (...chunks: number[][]) =>
  new ReadableStream<Uint8Array>({
    pull: (c) => (chunks.length ? c.enqueue(new Uint8Array(chunks.shift()!)) : new Promise(() => {})),
  });

test('a read that brings nothing for the idle time cuts the body: it ends with what arrived', async () => {
  const m = meterBody(stallingAfter([1, 2]), { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never, idleTimeoutMs: 50 });
  const started = performance.now();
  expect(await drain(m.stream)).toEqual([1, 2]);
  expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  expect(m.interrupted).toBe(true);
});

test('an idle cut of a body with a checksum errors the stream with BODY_INTERRUPTED', async () => {
  const m = meterBody(stallingAfter([1]), { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never, idleTimeoutMs: 30, checksum: { algorithm: 'sha1', digest: 'AAAA' } });
  const error = await drain(m.stream).catch((e) => e);
  expect((error as TusError).code).toBe('BODY_INTERRUPTED');
});

test('idle time counts only while a read waits for the client, not while the reader is busy', async () => {
  const m = meterBody(streamOf([1], [2], [3]), { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never, idleTimeoutMs: 30 });
  const out: number[] = [];
  for await (const chunk of m.stream) {
    out.push(...chunk);
    await Bun.sleep(50); // a store waiting for S3 or for memory
  }
  expect(out).toEqual([1, 2, 3]);
  expect(m.interrupted).toBe(false);
});

test('verify throws BODY_INTERRUPTED for a cut body with a checksum, for a store that stopped reading before the end', async () => {
  const controller = new AbortController();
  const m = meterBody(stallingAfter([1]), { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: controller.signal, checksum: { algorithm: 'sha1', digest: 'AAAA' } });
  const reader = m.stream.getReader();
  await reader.read();
  controller.abort(new Error('another request took over the upload'));
  await reader.cancel();
  expect(() => m.verify()).toThrow('the body ended early');
});

test('a client that goes away while nothing reads cuts the body: its signal aborts (a store waiting for memory stops)', async () => {
  let source!: ReadableStreamDefaultController<Uint8Array>;
  const m = meterBody(new ReadableStream<Uint8Array>({ start: (c) => void (source = c) }), { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never });
  expect(m.signal.aborted).toBe(false);
  source.error(new Error('connection reset'));
  await Bun.sleep(0);
  expect([m.signal.aborted, m.interrupted]).toEqual([true, true]);
});

test('the signal of a body that ends normally, or goes past its limit, never aborts', async () => {
  const whole = meterBody(streamOf([1, 2]), { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never });
  await drain(whole.stream);
  const over = meterBody(streamOf([1, 2]), { limit: 1, overflow: 'EXCEEDS_LENGTH', signal: never });
  await drain(over.stream).catch(() => {});
  await Bun.sleep(0);
  expect([whole.signal.aborted, over.signal.aborted]).toEqual([false, false]);
});

test('with a client signal, the body is not asked for a byte before the store reads, and a client that goes away cancels it unread', async () => {
  let pulls = 0;
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({ pull: () => void pulls++, cancel: (reason) => void (cancelled = reason) }, { highWaterMark: 0 });
  const client = new AbortController();
  const m = meterBody(source, { limit: 100, overflow: 'EXCEEDS_LENGTH', signal: never, clientSignal: client.signal });
  await Bun.sleep(5);
  // Unlocked and never pulled: a runtime reads ahead into memory only a body that has a reader.
  expect([source.locked, pulls]).toEqual([false, 0]);
  client.abort(new Error('client gone'));
  await Bun.sleep(0);
  expect([m.signal.aborted, m.interrupted, String(cancelled)]).toEqual([true, true, 'Error: client gone']);
});
