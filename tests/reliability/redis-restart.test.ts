/**
 * Losing Redis: a server process keeps its records and locks in a redis-server of the test's own,
 * which is killed mid-upload and started again empty. While it is down, requests must fail fast
 * with a reason; once it is back, HEAD must rebuild the record from S3 and the upload must resume
 * and finish byte-identical.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { AwsClient } from 'aws4fetch';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, type ServerProcess } from '../support/process.ts';
import { startRedisServer, type RedisProcess } from '../support/redis-server.ts';
import { seededBytes, seededRng } from '../support/rng.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { sha256, TUS, slowBody } from '../support/server.ts';

const MiB = 1024 * 1024;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const slowBodyHalf = (bytes: Uint8Array, delayMs: number) => slowBody(bytes, delayMs, MiB / 2);

/** A request's status, reason and time taken; a request that does not answer in 15 s is status 0. */
async function timed(url: string, init: RequestInit): Promise<{ status: number; reason: string; type: string | null; ms: number }> {
  const started = Date.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
    const reason = init.method === 'HEAD' ? '' : (await res.text()).trim();
    return { status: res.status, reason, type: res.headers.get('Content-Type'), ms: Date.now() - started };
  } catch (error) {
    return { status: 0, reason: String(error), type: null, ms: Date.now() - started };
  }
}

let s3: S3Env;
let redis: RedisProcess;
let server: ServerProcess | undefined;
let dataDir: string;
beforeAll(async () => {
  [s3, redis, dataDir] = await Promise.all([startS3(), startRedisServer(), mkdtemp(join(tmpdir(), 'tusflow-redis-restart-'))]);
}, 60_000);
afterAll(async () => {
  await server?.kill('SIGKILL');
  await redis?.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

test('Redis killed mid-upload and restarted empty: 503s with a reason while it is down, then HEAD rebuilds the offset from S3 and the upload finishes', async () => {
  const bucket = await s3.newBucket();
  server = await spawnServer({
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    REDIS_URL: redis.url,
    STATE_KEY_PREFIX: `redis-restart:${crypto.randomUUID().slice(0, 8)}:`,
    LOCK_LEASE_MS: '1000',
    DATA_DIR: dataDir,
  });
  const bytes = seededBytes(seededRng(99), 13 * MiB + 7);
  const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
  expect(created.status).toBe(201);
  const url = created.headers.get('Location')!;

  // Acknowledged: 3 MiB (a segment), 4 MiB (part 1 and a 2 MiB segment), 1 MiB + 3 (another segment).
  let acked = 0;
  for (const size of [3 * MiB, 4 * MiB, MiB + 3]) {
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(acked) }, body: bytes.subarray(acked, acked + size) });
    expect(res.status).toBe(204);
    acked = Number(res.headers.get('Upload-Offset'));
  }
  expect(acked).toBe(8 * MiB + 3);

  // Another upload, to PATCH while Redis is down.
  const other = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(MiB) } });
  const otherUrl = other.headers.get('Location')!;

  // A slow PATCH is streaming when Redis dies.
  const sent = 3 * MiB;
  const slow = timed(url, {
    method: 'PATCH',
    headers: { ...PATCH, 'Upload-Offset': String(acked), 'Content-Length': String(sent) },
    body: slowBodyHalf(bytes.slice(acked, acked + sent), 150),
    duplex: 'half',
  } as RequestInit);
  await Bun.sleep(500);
  await redis.kill('SIGKILL');

  // While Redis is down, every request that needs it fails with a 5xx and a reason, in bounded time
  // (the bound the S3 retries promise; each Redis call waits for ioredis's reconnection attempts).
  const [cut, head, patch, post] = await Promise.all([
    slow,
    timed(url, { method: 'HEAD', headers: TUS }),
    timed(otherUrl, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes.subarray(0, 1000) }),
    timed(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } }),
  ]);
  const down = { 'the PATCH streaming when Redis died': cut, HEAD: head, 'a new PATCH': patch, POST: post };
  console.log(
    `redis down: ${Object.entries(down)
      .map(([n, r]) => `${n}: ${r.status} in ${r.ms} ms`)
      .join('; ')}`,
  );
  const outcome = (r: typeof cut) => ({
    status: r.status,
    bounded: r.ms < 25_000,
    // (a HEAD answer has no body to carry the reason)
    reason: /state store failed/.test(r.reason) ? 'the state store failed' : r.reason,
  });
  const downOutcomes = Object.fromEntries(Object.entries(down).map(([n, r]) => [n, outcome(r)]));

  // Redis comes back empty; the client asks where to resume (ioredis reconnects within seconds).
  await redis.start();
  let offset = -1;
  let headLength: string | null = null;
  const waiting: number[] = [];
  for (const deadline = Date.now() + 20_000; offset < 0 && Date.now() < deadline; ) {
    const res = await fetch(url, { method: 'HEAD', headers: TUS, signal: AbortSignal.timeout(15_000) });
    if (res.status === 200) {
      offset = Number(res.headers.get('Upload-Offset'));
      headLength = res.headers.get('Upload-Length');
    } else {
      waiting.push(res.status); // 503 while ioredis reconnects
      await Bun.sleep(100);
    }
  }
  // Rebuilt from S3: at least what was acknowledged, at most what was sent.
  const rebuilt = { headLength, offsetAtLeastAcked: offset >= acked, offsetAtMostSent: offset <= acked + sent, waiting: [...new Set(waiting)] };

  const rest = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body: bytes.subarray(Math.max(0, offset)) });
  const resumed = { status: rest.status, reason: rest.status === 204 ? '' : await rest.text(), offset: rest.headers.get('Upload-Offset') };

  const raw = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: 's3', retries: 0 });
  const stored = new Uint8Array(await (await raw.fetch(`${s3.endpoint}/${bucket}/${url.split('/').pop()}`)).arrayBuffer());
  const download = await fetch(url);
  const downloaded = download.status === 200 ? sha256(await download.arrayBuffer()) : download.status;

  const expectedDown = { status: 503, bounded: true, reason: 'the state store failed' };
  expect({ downOutcomes, rebuilt, resumed, objectInS3: sha256(stored), downloaded }).toEqual({
    downOutcomes: {
      'the PATCH streaming when Redis died': expectedDown,
      HEAD: { ...expectedDown, reason: '' },
      'a new PATCH': expectedDown,
      POST: expectedDown,
    },
    rebuilt: { headLength: String(bytes.length), offsetAtLeastAcked: true, offsetAtMostSent: true, waiting: rebuilt.waiting },
    resumed: { status: 204, reason: '', offset: String(bytes.length) },
    objectInS3: sha256(bytes),
    downloaded: sha256(bytes),
  });
  expect(rebuilt.waiting.every((s) => s === 503)).toBe(true);
}, 60_000);
