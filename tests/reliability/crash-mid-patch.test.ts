/**
 * A crash in the middle of one large PATCH (what tus-js-client, Uppy and the upload page send by
 * default): the server is SIGKILLed at 60 % of the body and restarted. HEAD must then count what
 * storage already held durably (whole S3 parts, bytes fsync'd on disk) — at least 40 % — and never
 * more than storage holds; the client resumes from there and the object ends byte-identical. A
 * PATCH with `Upload-Checksum` commits all or nothing: after the kill HEAD is where it started.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { request } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { s3RedisVars, serverFleet, type ServerProcess } from '../support/process.ts';
import { seededBytes, seededRng } from '../support/rng.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { sha256, TUS } from '../support/server.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const PIECE = MiB / 2;

/**
 * Sends `bytes` from `offset` as one PATCH with its Content-Length, about `rate` bytes a second;
 * calls `at` (once) when `fraction` of the whole upload has been sent. Resolves when the request
 * ends either way (a killed server cuts it).
 */
function patch(
  url: string,
  bytes: Uint8Array,
  offset: number,
  o: { rate: number; fraction?: number; at?: () => void; headers?: Record<string, string> },
): Promise<number | undefined> {
  return new Promise((resolve) => {
    const body = bytes.subarray(offset);
    const req = request(url, {
      method: 'PATCH',
      headers: {
        ...TUS,
        'Content-Type': 'application/offset+octet-stream',
        'Upload-Offset': String(offset),
        'Content-Length': String(body.byteLength),
        ...o.headers,
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(undefined));
    void (async () => {
      const started = performance.now();
      let fired = false;
      for (let sent = 0; sent < body.byteLength && !req.destroyed; ) {
        const piece = body.subarray(sent, sent + PIECE);
        if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
        sent += piece.byteLength;
        if (!fired && o.fraction !== undefined && offset + sent >= o.fraction * bytes.byteLength) {
          fired = true;
          o.at?.();
        }
        const ahead = (sent / o.rate) * 1000 - (performance.now() - started);
        if (ahead > 0) await Bun.sleep(ahead);
      }
      if (!req.destroyed) req.end();
    })();
  });
}

async function head(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: TUS });
  expect(res.status).toBe(200);
  return Number(res.headers.get('Upload-Offset'));
}

async function create(endpoint: string, length: number): Promise<string> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } });
  expect(res.status).toBe(201);
  return new URL(res.headers.get('Location')!, endpoint).href;
}

/**
 * Creates an upload, kills the server at 60 % of one PATCH, restarts it; resolves with HEAD's
 * offset after the restart and the server then running.
 */
async function killMidPatch(
  start: () => Promise<ServerProcess>,
  bytes: Uint8Array,
  headers?: Record<string, string>,
): Promise<{ url: string; offset: number; server: ServerProcess }> {
  const first = await start();
  const url = await create(first.endpoint, bytes.byteLength);
  let killed: Promise<unknown> | undefined;
  // 64 MiB in about 2 s: the kill lands while the body streams.
  await patch(url, bytes, 0, { rate: 32 * MiB, fraction: 0.6, at: () => void (killed = first.kill('SIGKILL')), headers });
  await killed;
  const server = await start();
  return { url: url.replace(first.endpoint, server.endpoint), offset: await head(url.replace(first.endpoint, server.endpoint)), server };
}

/** Resumes from HEAD until the upload is complete. */
async function finish(url: string, bytes: Uint8Array): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const offset = await head(url);
    if (offset === bytes.byteLength) return;
    await patch(url, bytes, offset, { rate: 1024 * MiB });
  }
  expect(await head(url)).toBe(bytes.byteLength);
}

let s3: S3Env;
beforeAll(async () => {
  s3 = await startS3();
}, 60_000);

describe('SIGKILL at 60 % of one large PATCH', () => {
  const fleet = serverFleet();
  afterAll(() => fleet.cleanup());
  const bytes = seededBytes(seededRng(60), SIZE);

  const s3Env = async () => {
    const bucket = await s3.newBucket();
    const { start } = await fleet.server('midpatch', { ...s3RedisVars(s3, bucket, 'midpatch'), LOG: 'false' });
    return { bucket, start };
  };
  const fileEnv = () => fleet.server('midpatch-files', { LOG: 'false' });

  test('S3 + Redis: HEAD keeps the whole parts S3 held, the upload resumes and ends byte-identical', async () => {
    const { bucket, start } = await s3Env();
    const { url, offset } = await killMidPatch(start, bytes);
    console.log(`mid-PATCH kill (S3 + Redis): HEAD ${offset} of ${SIZE} (${((offset / SIZE) * 100).toFixed(1)} %)`);
    expect(offset).toBeGreaterThanOrEqual(0.4 * SIZE);
    expect(offset).toBeLessThanOrEqual(0.6 * SIZE);
    expect(offset % (5 * MiB)).toBe(0); // whole parts
    await finish(url, bytes);
    const id = new URL(url).pathname.split('/').pop()!;
    expect(sha256(await s3.object(bucket, id))).toBe(sha256(bytes));
  }, 60_000);

  test("file store: HEAD keeps the bytes fsync'd, no more than the file holds; resumes byte-identical", async () => {
    const { dataDir, start } = await fileEnv();
    const { url, offset } = await killMidPatch(start, bytes);
    const id = new URL(url).pathname.split('/').pop()!;
    console.log(`mid-PATCH kill (files): HEAD ${offset} of ${SIZE} (${((offset / SIZE) * 100).toFixed(1)} %)`);
    expect(offset).toBeGreaterThanOrEqual(0.4 * SIZE);
    expect(offset).toBeLessThanOrEqual((await stat(join(dataDir, id))).size);
    // What the file holds up to the offset is what was sent.
    expect(sha256((await readFile(join(dataDir, id))).subarray(0, offset))).toBe(sha256(bytes.subarray(0, offset)));
    await finish(url, bytes);
    expect(sha256(await readFile(join(dataDir, id)))).toBe(sha256(bytes));
  }, 60_000);

  test('with Upload-Checksum nothing counts before the body is verified: HEAD stays at the start (S3 and files)', async () => {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', bytes));
    const headers = { 'Upload-Checksum': `sha1 ${Buffer.from(digest).toString('base64')}` };
    for (const setup of [s3Env, fileEnv]) {
      const { start } = await setup();
      const { url, offset } = await killMidPatch(start, bytes, headers);
      expect(offset).toBe(0);
      await finish(url, bytes);
    }
  }, 60_000);
});
