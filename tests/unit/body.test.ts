import { expect, test } from 'bun:test';
import { meterBody } from '../../src/engine/body.ts';
import { TusError } from '../../src/protocol/errors.ts';

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
