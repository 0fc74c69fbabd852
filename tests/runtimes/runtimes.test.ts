/**
 * The same protocol checks and tus-js-client uploads against a live server on each runtime —
 * Bun.serve, Deno.serve, Node (node:http through @hono/node-server, from dist/) and workerd
 * (Miniflare) — all in the serverless configuration: bytes in S3 (radosgw), records and locks in
 * Upstash (the REST bridge over the local Redis).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { spawnServer, terminate, type ServerProcess } from '../support/process.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { upstashBridge } from '../support/state-stores.ts';
import { framingOf, operationOf, watchingProxy } from '../support/fault-proxy.ts';
import { tusUpload } from '../support/tus-client.ts';
import { ensureBuilt } from '../support/build.ts';

const MiB = 1024 * 1024;
const ROOT = new URL('../..', import.meta.url).pathname;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

const RUNTIMES: Record<string, string[]> = {
  bun: [process.execPath, 'src/runtime/bun.ts'],
  deno: [`${ROOT}node_modules/.bin/deno`, 'run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--allow-sys', 'src/runtime/deno.ts'],
  node: [Bun.which('node') ?? 'node', 'dist/runtime/node.js'],
  workerd: [process.execPath, 'scripts/worker.ts'],
};

let s3: S3Env;
beforeAll(async () => {
  s3 = await startS3();
}, 120_000);

for (const [runtime, command] of Object.entries(RUNTIMES)) {
  describe(`runtime ${runtime}`, () => {
    let server: ServerProcess;
    let bucket: string;
    const object = async (url: string) => s3.object(bucket, url.split('/').pop()!);
    const create = async (headers: Record<string, string>) => {
      const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, ...headers } });
      expect(res.status).toBe(201);
      return res.headers.get('Location')!;
    };

    // What the runtime's fetch sends to S3, seen by a proxy in front of radosgw: AWS S3 refuses a
    // chunked body, so every body must come with its Content-Length.
    const framing = new Map<string, number>();
    let proxy: ReturnType<typeof Bun.serve>;

    beforeAll(async () => {
      if (runtime === 'node') await ensureBuilt();
      bucket = await s3.newBucket();
      const bridge = await upstashBridge();
      proxy = watchingProxy(s3.endpoint, (request, url) => {
        const key = `${operationOf(request.method, url, request.headers)} ${framingOf(request.headers)}`;
        framing.set(key, (framing.get(key) ?? 0) + 1);
      });
      server = await spawnServer(
        {
          S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
          S3_BUCKET: bucket,
          S3_ACCESS_KEY_ID: s3.accessKeyId,
          S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          S3_FORCE_PATH_STYLE: 'true',
          UPSTASH_REDIS_REST_URL: bridge.url,
          UPSTASH_REDIS_REST_TOKEN: bridge.token,
          STATE_KEY_PREFIX: `test:${runtime}:${crypto.randomUUID().slice(0, 8)}:`,
          MAX_SIZE: String(1024 * MiB),
          S3_DIRECT: 'true',
          DATA_DIR: `/tmp/tusflow-runtime-${process.pid}`,
        },
        command,
      );
    }, 60_000);
    afterAll(async () => {
      // The workerd runner disposes Miniflare on SIGTERM: its workerd outlives a SIGKILLed parent.
      if (server) await terminate(server.proc);
      proxy?.stop(true);
    });

    test(`[${runtime}] OPTIONS advertises the protocol`, async () => {
      const res = await fetch(server.endpoint, { method: 'OPTIONS' });
      expect(res.status).toBe(204);
      expect(res.headers.get('Tus-Version')).toBe('1.0.0');
      expect(res.headers.get('Tus-Extension')).toContain('creation-with-upload');
      expect(res.headers.get('Tus-Max-Size')).toBe(String(1024 * MiB));
      expect(res.headers.get('Tus-Checksum-Algorithm')).toContain('sha1');
    });

    test(`[${runtime}] status codes for bad requests`, async () => {
      const url = await create({ 'Upload-Length': '10' });
      const cases: [RequestInit, number][] = [
        [{ method: 'HEAD' }, 412],
        [{ method: 'HEAD', headers: { 'Tus-Resumable': '0.2.2' } }, 412],
        [{ method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0' }, body: 'x' }, 415],
        [{ method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '-1' }, body: 'x' }, 400],
        [{ method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '3' }, body: 'x' }, 409],
        [{ method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: '0123456789X' }, 413],
        [{ method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0', 'Upload-Checksum': 'sha1 AAAA' }, body: 'abc' }, 460],
        [{ method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0', 'Upload-Checksum': 'whirlpool AAAA' }, body: 'abc' }, 400],
      ];
      for (const [init, status] of cases) {
        const res = await fetch(url, init);
        expect([runtime, init.method, JSON.stringify(init.headers), res.status]).toEqual([runtime, init.method, JSON.stringify(init.headers), status]);
        if (status === 412) expect(res.headers.get('Tus-Version')).toBe('1.0.0');
      }
      expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(2048 * MiB) } })).status).toBe(413);
      expect((await fetch(server.endpoint, { method: 'POST', headers: { ...TUS } })).status).toBe(400);
      expect((await fetch(`${server.endpoint}../../etc/passwd`, { method: 'HEAD', headers: TUS })).status).toBe(404);
      const head = await fetch(url, { method: 'HEAD', headers: TUS });
      expect(head.headers.get('Upload-Offset')).toBe('0');
    });

    test(`[${runtime}] create with upload, PATCH with checksum, HEAD, method override, GET, DELETE`, async () => {
      const bytes = new TextEncoder().encode('hello, tus world');
      const res = await fetch(server.endpoint, {
        method: 'POST',
        headers: { ...PATCH, 'Upload-Length': String(bytes.length), 'Upload-Metadata': `filename ${btoa('hello.txt')},filetype ${btoa('text/plain')}` },
        body: bytes.subarray(0, 5),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('Upload-Offset')).toBe('5');
      const url = res.headers.get('Location')!;
      const sha1 = new Bun.CryptoHasher('sha1').update(bytes.subarray(5)).digest('base64');
      const patch = await fetch(url, {
        method: 'POST',
        headers: { ...PATCH, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '5', 'Upload-Checksum': `sha1 ${sha1}` },
        body: bytes.subarray(5),
      });
      expect(patch.status).toBe(204);
      const head = await fetch(url, { method: 'HEAD', headers: TUS });
      expect([head.status, head.headers.get('Upload-Offset'), head.headers.get('Upload-Length')]).toEqual([200, '16', '16']);
      expect(head.headers.get('Upload-Metadata')).toContain('filename');
      expect(head.headers.get('Cache-Control')).toBe('no-store');
      const get = await fetch(url);
      expect(get.headers.get('Content-Type')).toBe('text/plain');
      expect(await get.text()).toBe('hello, tus world');
      const range = await fetch(url, { headers: { Range: 'bytes=7-9' } });
      expect([range.status, await range.text()]).toEqual([206, 'tus']);
      expect(new TextDecoder().decode(await object(url))).toBe('hello, tus world');
      expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(204);
      expect((await fetch(url, { method: 'HEAD', headers: TUS })).status).toBe(404);
    });

    test(`[${runtime}] tus-js-client: 12 MiB in 1 MiB chunks, abort, resume, byte-identical in S3`, async () => {
      const bytes = randomBytes(12 * MiB + 5);
      const first = await tusUpload(server.endpoint, bytes, { chunkSize: MiB, abortWhen: (n) => n >= 4 * MiB });
      expect(first.aborted).toBe(true);
      await tusUpload(server.endpoint, bytes, { chunkSize: 3 * MiB, uploadUrl: first.url });
      expect(sha256(await object(first.url))).toBe(sha256(bytes));
    }, 60_000);

    test(`[${runtime}] tus-js-client: 24 MiB in one PATCH`, async () => {
      const bytes = randomBytes(24 * MiB);
      const { url } = await tusUpload(server.endpoint, bytes);
      expect(sha256(await object(url))).toBe(sha256(bytes));
      const download = await fetch(url);
      // Bun.serve drops Content-Length from a streamed response (oven-sh/bun#10507); the Worker keeps
      // it through FixedLengthStream.
      expect(download.headers.get('Content-Length')).toBe(runtime === 'bun' ? null : String(bytes.length));
      expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(bytes));
    }, 60_000);

    test(`[${runtime}] direct upload: create, sign parts, PUT them to S3, list, complete, download`, async () => {
      const api = `${server.endpoint.replace(/\/files\/$/, '')}/s3/multipart`;
      const created = await fetch(api, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ filename: 'd.bin', type: 'application/octet-stream' }),
      });
      expect(created.status).toBe(200);
      const { uploadId, key } = (await created.json()) as { uploadId: string; key: string };
      const q = `key=${encodeURIComponent(key)}`;
      const bytes = randomBytes(5 * MiB + 777);
      const { presignedUrls } = (await (await fetch(`${api}/${uploadId}/batch?${q}&partNumbers=1,2`)).json()) as { presignedUrls: Record<string, string> };
      const parts = [];
      for (const [n, slice] of [
        [1, bytes.subarray(0, 5 * MiB)],
        [2, bytes.subarray(5 * MiB)],
      ] as const) {
        const put = await fetch(presignedUrls[String(n)]!, { method: 'PUT', body: slice });
        expect(put.status).toBe(200);
        parts.push({ PartNumber: n, ETag: put.headers.get('ETag')! });
      }
      const listed = (await (await fetch(`${api}/${uploadId}?${q}`)).json()) as { Size: number }[];
      expect(listed.map((p) => p.Size)).toEqual([5 * MiB, 777]);
      expect((await fetch(`${server.endpoint}${uploadId}`, { method: 'HEAD', headers: TUS })).headers.get('Upload-Offset')).toBe(String(bytes.length));
      const done = await fetch(`${api}/${uploadId}/complete?${q}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ parts }) });
      expect(done.status).toBe(200);
      const { location } = (await done.json()) as { location: string };
      expect(sha256(new Uint8Array(await (await fetch(location)).arrayBuffer()))).toBe(sha256(bytes));
      expect(sha256(await s3.object(bucket, key))).toBe(sha256(bytes));
    }, 60_000);

    test(`[${runtime}] every body sent to S3 came with its Content-Length, none chunked`, () => {
      const seen = [...framing.keys()];
      expect(seen.filter((k) => !k.endsWith(' content-length'))).toEqual([]);
      expect(seen).toContain('UploadPart content-length');
    });
  });
}
