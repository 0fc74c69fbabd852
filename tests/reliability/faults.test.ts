/**
 * S3 faults: the server's S3 client talks to radosgw through a fault-injecting proxy
 * (tests/support/fault-proxy.ts). With faults on, uploads must still complete byte-identical and
 * the server's retries must stay bounded; with S3 down, a request must fail in bounded time with a
 * reason, and the upload must resume once S3 is back.
 *
 * Replay a run with FAULT_SEED=<n> (printed with the stats).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import * as tus from 'tus-js-client';
import { startFaultProxy, type FaultKind, type FaultProxy } from '../support/fault-proxy.ts';
import { resumableUpload } from '../support/resumable-client.ts';
import { seedFromEnv, seededBytes, seededRng } from '../support/rng.ts';
import { startS3 } from '../support/s3.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { sha256, TUS } from '../support/server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SEED = seedFromEnv('FAULT_SEED', 7_331);
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

/** tus-js-client with enough retries to ride out faults (each retry resumes from HEAD). */
function tusJsUpload(endpoint: string, bytes: Uint8Array, chunkSize: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      endpoint,
      chunkSize,
      retryDelays: Array.from({ length: 30 }, (_, i) => Math.min(50 * (i + 1), 500)),
      storeFingerprintForResuming: false,
      onError: reject,
      onSuccess: () => resolve(upload.url!),
    });
    upload.start();
  });
}

const idOf = (url: string) => url.split('/').pop()!;

async function headOffset(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: TUS, signal: AbortSignal.timeout(25_000) });
  expect(res.status).toBe(200);
  return Number(res.headers.get('Upload-Offset'));
}

// Each test has its own proxy and server, so the tests run concurrently (most of their time is
// spent waiting: on the retries' backoff, or on a hung S3).
const running: { proxy: FaultProxy; server?: S3TestServer }[] = [];
beforeAll(async () => {
  await startS3();
}, 60_000);
afterAll(async () => {
  await Promise.all(running.map(async ({ proxy, server }) => (await server?.stop(), await proxy.stop())));
});

async function setup(options: { seed: number; spare?: string[]; faults: boolean }): Promise<{ proxy: FaultProxy; server: S3TestServer }> {
  const s3 = await startS3();
  // ~10% of calls fail before reaching S3 (500, 503, SlowDown, reset mid-body); ~4% more lose or cut
  // S3's answer after it acted; 10% are delayed.
  const proxy = await startFaultProxy(s3.endpoint, {
    seed: options.seed,
    spare: options.spare,
    errorRate: 0.08,
    resetRate: 0.02,
    lostResponseRate: 0.02,
    truncateRate: 0.02,
    delayRate: 0.1,
    maxDelayMs: 250,
  });
  const entry: (typeof running)[number] = { proxy };
  running.push(entry);
  proxy.setFaults(options.faults);
  const server = await startS3Server({ endpoint: proxy.endpoint, partSize: 5 * MiB });
  entry.server = server;
  return { proxy, server };
}

/**
 * Calls whose answer, lost or cut after S3 acted, strands an upload (a server bug: see 'a fault while
 * the last PATCH finishes the upload' below, which injects each on purpose). The random faults spare
 * these calls' answers, so that this test checks everything else; they still get errors and resets
 * before reaching S3.
 */
const SPARE = ['CompleteMultipartUpload', 'ListParts', 'ListObjectsV2', 'DeleteObjects'];

describe('random S3 faults', () => {
  test.concurrent('uploads through tus-js-client and a raw client complete byte-identical; retries stay bounded', async () => {
    const { proxy, server } = await setup({ seed: SEED, spare: SPARE, faults: true });
    const rng = seededRng(SEED);
    const started = Date.now();
    const jobs = [
      { client: 'tus-js-client', bytes: seededBytes(rng, 11 * MiB + 3), chunk: Number.POSITIVE_INFINITY },
      { client: 'tus-js-client', bytes: seededBytes(rng, 6 * MiB), chunk: 2 * MiB },
      { client: 'tus-js-client', bytes: seededBytes(rng, 3 * MiB + 7), chunk: 256 * KiB },
      { client: 'tus-js-client', bytes: seededBytes(rng, 300 * KiB), chunk: 100 * KiB },
      { client: 'raw', bytes: seededBytes(rng, 5 * MiB), chunk: 5 * MiB },
      { client: 'raw', bytes: seededBytes(rng, 5 * MiB + 1), chunk: MiB },
      { client: 'raw', bytes: seededBytes(rng, 9 * MiB), chunk: 3 * MiB },
      { client: 'raw', bytes: seededBytes(rng, 10 * MiB - 1), chunk: 700 * KiB },
      { client: 'raw', bytes: seededBytes(rng, 2 * MiB), chunk: 256 * KiB },
    ];
    const violations: string[] = [];
    const failures: string[] = [];
    const urls = await Promise.all(
      jobs.map(async (job, i) => {
        try {
          if (job.client === 'tus-js-client') return await tusJsUpload(server.endpoint, job.bytes, job.chunk);
          const result = await resumableUpload(server.endpoint, job.bytes, {
            chunkSize: job.chunk,
            maxRequests: 200,
            deadlineMs: 30_000,
            requestTimeoutMs: 25_000,
            retryDelayMs: 50,
            maxStalls: 25,
          });
          violations.push(...result.violations);
          return result.url;
        } catch (error) {
          const message = String((error as Error).message ?? error).slice(0, 600);
          const id = message.match(/[0-9a-f]{32}/)?.[0];
          const faults = id ? proxy.log.filter((f) => f.request.includes(id)).map((f) => `${f.op} ${f.fault}`) : [];
          failures.push(`upload ${i} (${job.client}, ${job.bytes.length} bytes): ${message}; faults on its keys: ${faults.join(', ')}`);
          return '';
        }
      }),
    );
    const stats = { seed: SEED, ms: Date.now() - started, ...proxy.stats, clientRetries: server.client.retries };
    console.log(`faults: ${JSON.stringify(stats)}`);

    expect(failures).toEqual([]);
    expect(violations).toEqual([]);
    for (const [i, url] of urls.entries()) {
      const stored = await server.object(idOf(url));
      expect({ i, sha: stored && sha256(stored) }).toEqual({ i, sha: sha256(jobs[i]!.bytes) });
    }
    const faults = Object.values(proxy.stats.faults).reduce((a, b) => a + b, 0);
    expect(faults).toBeGreaterThan(5); // the faults did happen
    // Only the server's S3 client talks to the proxy: the proxy saw its attempts (give or take a
    // request the runtime's fetch re-sent by itself on a reset connection, or a streamed part whose
    // body failed before it was sent), and each retry followed a fault.
    const attempts = [...server.client.requests.values()].reduce((a, b) => a + b, 0);
    console.log(`S3 client attempts ${attempts}, proxy requests ${proxy.stats.requests}, faults ${faults}`);
    expect(Math.abs(proxy.stats.requests - attempts)).toBeLessThanOrEqual(faults);
    // A retry follows a fault; after a dropped connection the runtime's fetch may also re-send once.
    const resets = (proxy.stats.faults.resetRequest ?? 0) + (proxy.stats.faults.lostResponse ?? 0);
    expect(server.client.retries).toBeLessThanOrEqual(faults);
    expect(proxy.stats.retries).toBeLessThanOrEqual(faults + resets);
    // At most 5 attempts per call: never more than 5 faulted attempts of one request in a row.
    expect(proxy.stats.longestFaultRun).toBeLessThanOrEqual(5);
    expect(proxy.stats.retries / proxy.stats.requests).toBeLessThan(0.3);
  }, 60_000);
});

describe('S3 down', () => {
  test.concurrent('refused connections: a PATCH gets a 503 with a reason within 25 s; after S3 is back the client resumes', async () => {
    const { proxy, server } = await setup({ seed: SEED, faults: false });
    const bytes = seededBytes(seededRng(SEED + 1), 7 * MiB + 11);
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
    expect(created.status).toBe(201);
    const url = created.headers.get('Location')!;
    const first = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes.subarray(0, 2 * MiB) });
    expect(first.status).toBe(204);

    await proxy.setDown('refuse');
    let started = Date.now();
    const patch = await fetch(url, {
      method: 'PATCH',
      headers: { ...PATCH, 'Upload-Offset': String(2 * MiB) },
      body: bytes.subarray(2 * MiB, 6 * MiB),
      signal: AbortSignal.timeout(30_000),
    });
    const elapsed = Date.now() - started;
    const reason = await patch.text();
    expect({ status: patch.status, type: patch.headers.get('Content-Type') }).toEqual({ status: 503, type: 'text/plain; charset=utf-8' });
    expect(reason).toMatch(/storage backend failed/);
    expect(elapsed).toBeLessThan(25_000);

    // A new upload cannot be created either, and says why.
    started = Date.now();
    const refused = await fetch(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '10' },
      signal: AbortSignal.timeout(30_000),
    });
    expect(refused.status).toBe(503);
    expect(await refused.text()).toMatch(/storage backend failed/);
    expect(Date.now() - started).toBeLessThan(25_000);

    await proxy.setDown(false);
    const offset = await headOffset(url);
    expect(offset).toBeGreaterThanOrEqual(2 * MiB);
    const rest = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body: bytes.subarray(offset) });
    expect(rest.status).toBe(204);
    expect(rest.headers.get('Upload-Offset')).toBe(String(bytes.length));
    const stored = await server.object(idOf(url));
    expect(stored && sha256(stored)).toBe(sha256(bytes));
  }, 60_000);

  test.concurrent('S3 accepts connections but never answers: a PATCH still gets a 5xx with a reason within 25 s', async () => {
    const { proxy, server } = await setup({ seed: SEED, faults: false });
    const bytes = seededBytes(seededRng(SEED + 2), 3 * MiB);
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
    const url = created.headers.get('Location')!;

    await proxy.setDown('hang');
    const started = Date.now();
    const outcome = await fetch(url, {
      method: 'PATCH',
      headers: { ...PATCH, 'Upload-Offset': '0' },
      body: bytes.subarray(0, MiB),
      signal: AbortSignal.timeout(25_000),
    }).then(
      async (res) => ({ status: res.status, reason: (await res.text()).trim() }),
      (error: Error) => ({ status: 0, reason: `no answer within 25 s (${error.name})` }),
    );
    const elapsed = Date.now() - started;
    await proxy.setDown(false);
    expect({ status: outcome.status >= 500 ? '5xx' : outcome.status, elapsedUnder25s: elapsed < 25_000, reason: outcome.reason }).toMatchObject({
      status: '5xx',
      elapsedUnder25s: true,
    });
    // And the upload can go on.
    const offset = await headOffset(url);
    const rest = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body: bytes.subarray(offset) });
    expect(rest.status).toBe(204);
  }, 60_000);
});

describe('a fault while the last PATCH finishes the upload', () => {
  // The last PATCH sends the last part, then finishes: ListParts, CompleteMultipartUpload, then a
  // listing of the leftover segments (ListObjectsV2) to delete them. One fault is injected into one
  // of these calls; the PATCH may fail with a 503, and the client's resume must finish the upload.
  const cases: [string, FaultKind][] = [
    ['CompleteMultipartUpload', 'lostResponse'], // S3 completed it; the answer was lost (retried)
    ['CompleteMultipartUpload', 'truncateResponse'], // S3 completed it; the answer was cut (not retried)
    ['ListObjectsV2', 'truncateResponse'], // after the completion: the segment listing is cut
    ['ListParts', 'truncateResponse'], // before the completion: the part listing is cut
    ['DeleteObjects', 'truncateResponse'], // the segments joined into part 1 are deleted; the answer is cut
  ];
  for (const [operation, fault] of cases) {
    test.concurrent(`${fault} on ${operation}: the client's resume finishes the upload`, async () => {
      const { proxy, server } = await setup({ seed: SEED, faults: false });
      const bytes = seededBytes(seededRng(SEED + 3), 6 * MiB + 5);
      const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
      const url = created.headers.get('Location')!;
      // 4 MiB: less than a part, kept as a segment; the last PATCH joins it to the next 1 MiB as part 1.
      const first = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes.subarray(0, 4 * MiB) });
      expect(first.status).toBe(204);

      proxy.inject(operation, fault);
      const answers: string[] = [];
      let offset = 4 * MiB;
      // What a client does: PATCH, and after a failure resume from HEAD (a few times).
      for (let i = 0; i < 4 && offset < bytes.length; i++) {
        const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body: bytes.subarray(offset) });
        answers.push(`PATCH at ${offset}: ${res.status} ${(await res.text()).trim()}`);
        offset = res.status === 204 ? Number(res.headers.get('Upload-Offset')) : await headOffset(url);
      }
      expect(proxy.stats.faults[fault]).toBe(1);
      const stored = await server.object(idOf(url));
      const download = await fetch(url);
      await download.body?.cancel();
      expect({
        headOffset: await headOffset(url),
        download: download.status,
        objectInS3Identical: stored !== undefined && sha256(stored) === sha256(bytes),
        answers,
      }).toEqual({ headOffset: bytes.length, download: 200, objectInS3Identical: true, answers: expect.anything() });
    }, 30_000);
  }
});
