/**
 * Crash safety: a server process is SIGKILLed at random moments while 20 uploads stream into it,
 * and restarted on the same port; every client resumes from HEAD. Nothing acknowledged may be lost
 * (no HEAD ever reports less than an acknowledged offset) and every object ends byte-identical.
 *
 * Replay a run with CRASH_SEED=<n> (the seed is printed on failure).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { s3RedisVars, serverFleet, type ServerProcess } from '../support/process.ts';
import { resumableUpload, UploadFailed, type ResumableResult } from '../support/resumable-client.ts';
import { seedFromEnv, seededBytes, seededRng, type Rng } from '../support/rng.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { sha256 } from '../support/server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SEED = seedFromEnv('CRASH_SEED', 20_240_611);

/** Sizes around the part size (5 MiB) and its multiples, and small ones. */
const SIZES = [
  100 * KiB,
  256 * KiB + 7,
  1 * MiB,
  3 * MiB + 1,
  5 * MiB - 1,
  5 * MiB,
  5 * MiB + 1,
  10 * MiB,
  10 * MiB - 1,
  10 * MiB + 1,
  12 * MiB,
  7 * MiB + 333,
  2 * MiB,
  4 * MiB + 5,
  6 * MiB,
  8 * MiB + 3,
  11 * MiB,
  9 * MiB,
  512 * KiB,
  150 * KiB,
];
const CHUNKS = [256 * KiB, 1 * MiB, 2 * MiB + 13, 3 * MiB, 5 * MiB, Number.POSITIVE_INFINITY];

interface Job {
  bytes: Uint8Array<ArrayBuffer>;
  chunkSize: number;
}

function jobs(rng: Rng, sizes: number[]): Job[] {
  return sizes.map((size) => ({ bytes: seededBytes(rng, size), chunkSize: Math.min(size, rng.pick(CHUNKS)) }));
}

type Outcome = ResumableResult & { failure?: string };

/** Runs the jobs `parallel` at a time; resolves with every outcome (a client that gave up has `failure`). */
async function runAll(endpoint: string, list: Job[], parallel: number): Promise<Outcome[]> {
  const results: Outcome[] = new Array(list.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < list.length; i = next++) {
        const job = list[i]!;
        try {
          results[i] = await resumableUpload(endpoint, job.bytes, {
            chunkSize: job.chunkSize,
            maxRequests: 250,
            deadlineMs: 30_000,
            requestTimeoutMs: 20_000,
            retryDelayMs: 60,
            maxStalls: 20, // ~4 s without progress: stuck, not a restart
          });
        } catch (error) {
          if (!(error instanceof UploadFailed)) throw error;
          results[i] = { ...(error.result as ResumableResult), failure: error.message.split('\n')[0] };
        }
      }
    }),
  );
  return results;
}

/**
 * Kills and restarts the server `kills` times, `minMs`..`maxMs` apart (seeded), while `until` is
 * pending; resolves with the number of kills done and the server then running.
 */
async function chaos(
  start: () => Promise<ServerProcess>,
  first: ServerProcess,
  rng: Rng,
  o: { kills: number; minMs: number; maxMs: number; done: () => boolean },
): Promise<{ kills: number; server: ServerProcess }> {
  let server = first;
  let kills = 0;
  while (kills < o.kills && !o.done()) {
    await Bun.sleep(rng.int(o.minMs, o.maxMs));
    if (o.done()) break;
    await server.kill('SIGKILL');
    kills++;
    server = await start();
  }
  return { kills, server };
}

function report(results: Outcome[], kills: number, started: number): string {
  const seen: Record<string, number> = {};
  for (const r of results) for (const [k, n] of Object.entries(r.seen)) seen[k] = (seen[k] ?? 0) + n;
  return `seed ${SEED}, ${kills} kills, ${Date.now() - started} ms, ${results.reduce((n, r) => n + r.requests, 0)} requests: ${JSON.stringify(seen)}`;
}

let s3: S3Env;
beforeAll(async () => {
  s3 = await startS3();
}, 60_000);

describe('SIGKILL at random moments', () => {
  const fleet = serverFleet();
  afterAll(() => fleet.cleanup());

  test('S3 + Redis: 20 uploads, every acknowledged byte kept, every object byte-identical', async () => {
    const rng = seededRng(SEED);
    const bucket = await s3.newBucket();
    const { start } = await fleet.server('crash', s3RedisVars(s3, bucket, 'crash'));
    const list = jobs(rng, SIZES);
    const first = await start();
    const started = Date.now();
    let finished = false;
    const uploads = runAll(first.endpoint, list, 6).finally(() => (finished = true));
    const { kills } = await chaos(start, first, rng, { kills: 8, minMs: 200, maxMs: 800, done: () => finished });
    const results = await uploads;
    const summary = report(results, kills, started);
    console.log(`crash (S3 + Redis): ${summary}`);

    // What S3 holds for every upload, compared with what was sent.
    const objects = await Promise.all(
      results.map(async (r, i) => {
        const stored = await s3.object(bucket, r.id);
        return { i, identical: sha256(stored) === sha256(list[i]!.bytes) };
      }),
    );
    const failed = results.flatMap((r, i) =>
      r.failure
        ? [
            `upload ${i} (${list[i]!.bytes.byteLength} bytes, chunks of ${list[i]!.chunkSize}) ${r.id}: ${r.failure}; ` +
              `last HEAD offset ${r.heads.at(-1)}, acknowledged ${r.acked.at(-1) ?? 0}; S3 object complete and identical: ` +
              `${objects[i]!.identical}; last reasons: ${r.reasons.slice(-2).join(' | ')}`,
          ]
        : [],
    );
    expect({ summary, failed, violations: results.flatMap((r) => r.violations) }).toEqual({ summary, failed: [], violations: [] });
    expect(kills).toBeGreaterThan(0);
    expect(objects.filter((o) => !o.identical)).toEqual([]);
  }, 90_000);

  test('embedded file store: 8 uploads, every acknowledged byte kept, every file byte-identical', async () => {
    const rng = seededRng(SEED + 1);
    const { dataDir, start } = await fleet.server('crash-files');
    const list = jobs(rng, [100 * KiB, 5 * MiB - 1, 5 * MiB + 1, 12 * MiB, 3 * MiB, 8 * MiB + 3, 12 * MiB - 1, 9 * MiB]).map((job) => ({
      ...job,
      // fsync per PATCH: small chunks keep the uploads running while the kills happen, even where
      // the disk is fast.
      chunkSize: Math.min(job.chunkSize, 128 * KiB),
    }));
    const first = await start();
    const started = Date.now();
    let finished = false;
    const uploads = runAll(first.endpoint, list, 3).finally(() => (finished = true));
    const { kills } = await chaos(start, first, rng, { kills: 5, minMs: 40, maxMs: 150, done: () => finished });
    const results = await uploads;
    const summary = report(results, kills, started);
    console.log(`crash (files): ${summary}`);

    const failed = results.flatMap((r, i) => (r.failure ? [`upload ${i} ${r.id}: ${r.failure}; ${r.reasons.slice(-2).join(' | ')}`] : []));
    expect({ summary, failed, violations: results.flatMap((r) => r.violations) }).toEqual({ summary, failed: [], violations: [] });
    expect(kills).toBeGreaterThan(1);
    for (const [i, r] of results.entries()) {
      const stored = new Uint8Array(await readFile(join(dataDir, r.id)));
      expect({ i, size: stored.byteLength, sha: sha256(stored) }).toEqual({ i, size: list[i]!.bytes.byteLength, sha: sha256(list[i]!.bytes) });
    }
  }, 60_000);
});
