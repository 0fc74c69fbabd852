import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUpload, randomBytes, sha256, startServer, type TestServer, TUS } from '../support/server.ts';
import { spawnServer } from '../support/process.ts';
import { sendPartialThenDrop } from '../support/raw.ts';
import { tusUpload } from '../support/tus-client.ts';

const MiB = 1024 * 1024;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

async function head(url: string) {
  const res = await fetch(url, { method: 'HEAD', headers: TUS });
  return { status: res.status, offset: Number(res.headers.get('Upload-Offset')) };
}

/** Polls HEAD until the offset stops changing (the server may still be writing what arrived). */
async function settledOffset(url: string): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const { offset } = await head(url);
    if (offset === last) return offset;
    last = offset;
    await Bun.sleep(50);
  }
  return last;
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tusflow-restart-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

test('a dropped connection keeps every byte that arrived', async () => {
  const server: TestServer = await startServer();
  try {
    const bytes = randomBytes(2 * MiB);
    const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
    const sent = 700 * 1024 + 13;
    await sendPartialThenDrop(url, { ...PATCH, 'Upload-Offset': '0', 'Content-Length': String(bytes.length) }, bytes.subarray(0, sent));
    expect(await settledOffset(url)).toBe(sent);

    const { url: resumed } = await tusUpload(server.endpoint, bytes, { uploadUrl: url });
    const res = await fetch(resumed);
    expect(sha256(await res.arrayBuffer())).toBe(sha256(bytes));
  } finally {
    await server.stop();
  }
});

test('a dropped connection with a checksum discards the partial chunk', async () => {
  const server = await startServer();
  try {
    const bytes = randomBytes(MiB);
    const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
    const digest = new Bun.CryptoHasher('sha1').update(bytes).digest('base64');
    await sendPartialThenDrop(
      url,
      { ...PATCH, 'Upload-Offset': '0', 'Content-Length': String(bytes.length), 'Upload-Checksum': `sha1 ${digest}` },
      bytes.subarray(0, 300 * 1024),
    );
    await Bun.sleep(200);
    expect(await settledOffset(url)).toBe(0);
  } finally {
    await server.stop();
  }
});

test('SIGKILL mid-upload, restart: HEAD gives the committed offset and the resume is byte-identical', async () => {
  const bytes = randomBytes(9 * MiB + 5);
  let server = await spawnServer({ DATA_DIR: dataDir });
  const first = await tusUpload(server.endpoint, bytes, { chunkSize: MiB, abortWhen: (sent) => sent >= 3 * MiB });
  const before = await head(first.url);
  expect(before.offset).toBeGreaterThanOrEqual(2 * MiB);
  await server.kill('SIGKILL');

  server = await spawnServer({ DATA_DIR: dataDir, PORT: new URL(first.url).port });
  try {
    expect(await head(first.url)).toEqual({ status: 200, offset: before.offset });
    await tusUpload(server.endpoint, bytes, { chunkSize: 2 * MiB, uploadUrl: first.url });
    const res = await fetch(first.url);
    expect(sha256(await res.arrayBuffer())).toBe(sha256(bytes));
  } finally {
    await server.kill('SIGKILL');
  }
});

test('SIGTERM during a PATCH: the PATCH is cut cleanly, what arrived is kept, the server exits 0', async () => {
  const server = await spawnServer({ DATA_DIR: dataDir });
  const size = 4 * MiB;
  const url = await createUpload(server.endpoint, { 'Upload-Length': String(size) });
  const part = randomBytes(MiB);
  // A slow client: one MiB, then silence with the connection open.
  let release!: () => void;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(part);
      await new Promise<void>((resolve) => (release = resolve));
      controller.close();
    },
  });
  const patch = fetch(url, {
    method: 'PATCH',
    headers: { ...PATCH, 'Upload-Offset': '0', 'Content-Length': String(size) },
    body,
    duplex: 'half',
  } as RequestInit).catch((error: Error) => error);
  // Offsets only move when a PATCH ends, so HEAD cannot show the MiB yet: give it time to arrive.
  await Bun.sleep(300);
  expect((await head(url)).offset).toBe(0);
  const exit = server.kill('SIGTERM');
  expect(await exit).toBe(0);
  release();
  await patch;

  const again = await spawnServer({ DATA_DIR: dataDir, PORT: new URL(url).port });
  try {
    expect((await head(url)).offset).toBe(MiB);
  } finally {
    await again.kill('SIGKILL');
  }
});
