import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes, sha256, startServer, type TestServer, TUS } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

const MiB = 1024 * 1024;
let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

async function download(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

async function offsetOf(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: TUS });
  return Number(res.headers.get('Upload-Offset'));
}

describe('tus-js-client uploads land byte-identical', () => {
  const sizes = [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 64 * MiB];
  for (const size of sizes) {
    // Chunk sizes smaller than, equal to and larger than the file.
    const chunks = size === 0 ? [Number.POSITIVE_INFINITY] : [Math.max(1, Math.ceil(size / 3)), size, size + 1];
    for (const chunkSize of chunks) {
      test(`${size} B in chunks of ${chunkSize}`, async () => {
        const bytes = randomBytes(size);
        const { url } = await tusUpload(server.endpoint, bytes, { chunkSize, metadata: { filename: 'f.bin' } });
        expect(url.startsWith(server.endpoint)).toBe(true);
        expect(sha256(await download(url))).toBe(sha256(bytes));
      });
    }
  }
});

test('abort mid-way, resume from a new client with the stored URL', async () => {
  const bytes = randomBytes(12 * MiB + 3);
  const first = await tusUpload(server.endpoint, bytes, { chunkSize: MiB, abortWhen: (sent) => sent >= 4 * MiB });
  expect(first.aborted).toBe(true);
  const committed = await offsetOf(first.url);
  expect(committed).toBeGreaterThanOrEqual(3 * MiB);
  expect(committed).toBeLessThan(bytes.length);

  const second = await tusUpload(server.endpoint, bytes, { chunkSize: 5 * MiB, uploadUrl: first.url });
  expect(second.url).toBe(first.url);
  expect(await offsetOf(first.url)).toBe(bytes.length);
  expect(sha256(await download(first.url))).toBe(sha256(bytes));
});
