/**
 * tusflowFromEnv embedded in an app on Node and on Deno, storing into radosgw: outside Bun its S3
 * requests go through node:http (src/wiring/node-http-fetch.ts), so parts leave from their slabs with
 * their Content-Length. A proxy in front of radosgw sees how each body came; S3 checks each part's
 * signed SHA-256 (the default check) and the stored object is compared byte for byte.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ensureBuilt } from '../support/build.ts';
import { framingOf, watchingProxy } from '../support/fault-proxy.ts';
import { spawnServer, type ServerProcess } from '../support/process.ts';
import { startS3 } from '../support/s3.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { REDIS_URL } from '../support/state-stores.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const APP = 'tests/runtimes/fixtures/from-env-app.mjs';

for (const [runtime, command] of [
  ['node', ['node', APP]],
  ['deno', [`${ROOT}node_modules/.bin/deno`, 'run', '-A', APP]],
] as const) {
  describe(`tusflowFromEnv on ${runtime}`, () => {
    let server: ServerProcess;
    let proxy: ReturnType<typeof Bun.serve>;
    let bucket: string;
    const framing: string[] = [];

    beforeAll(async () => {
      await ensureBuilt();
      const s3 = await startS3();
      bucket = await s3.newBucket();
      // node:http sends no User-Agent; Node's and Deno's fetch do.
      proxy = watchingProxy(s3.endpoint, (request) =>
        framing.push(`${request.method} ${request.headers.has('user-agent') ? 'fetch' : 'node:http'} ${framingOf(request.headers)}`),
      );
      server = await spawnServer(
        {
          S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
          S3_BUCKET: bucket,
          S3_ACCESS_KEY_ID: s3.accessKeyId,
          S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          REDIS_URL,
          STATE_KEY_PREFIX: `test:from-env:${crypto.randomUUID().slice(0, 8)}:`,
        },
        [...command],
      );
    }, 60_000);
    afterAll(async () => {
      await server?.kill();
      proxy?.stop(true);
    });

    test('an upload of 12 MiB + 5 B in two PATCHes is stored byte for byte; every body went to S3 through node:http, with its Content-Length', async () => {
      const bytes = randomBytes(12 * MiB + 5);
      const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.byteLength) } });
      expect(created.status).toBe(201);
      const url = new URL(created.headers.get('Location')!, server.endpoint).href;
      for (const [from, to] of [
        [0, 7 * MiB + 3],
        [7 * MiB + 3, bytes.byteLength],
      ]) {
        const res = await fetch(url, {
          method: 'PATCH',
          headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(from) },
          body: bytes.slice(from, to),
        });
        expect([res.status, res.headers.get('Upload-Offset')]).toEqual([204, String(to)]);
      }
      const stored = await (await startS3()).object(bucket, url.split('/').pop()!);
      expect(sha256(stored)).toBe(sha256(bytes));
      expect(framing.length).toBeGreaterThan(3);
      expect(framing.filter((f) => !f.endsWith('node:http content-length'))).toEqual([]);
    });
  });
}
