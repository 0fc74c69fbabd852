import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes, sha256, TUS, slowBody } from '../support/server.ts';
import { spawnServer, type ServerProcess } from '../support/process.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { STATE_KINDS } from '../support/state-stores.ts';
import { tusUpload } from '../support/tus-client.ts';

const MiB = 1024 * 1024;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const LEASE_MS = 2000;

const on = (server: ServerProcess, url: string) => `${server.endpoint}${url.split('/').pop()}`;

async function head(url: string) {
  const res = await fetch(url, { method: 'HEAD', headers: TUS });
  return { status: res.status, offset: Number(res.headers.get('Upload-Offset')) };
}

let s3: S3Env;
beforeAll(async () => {
  s3 = await startS3();
}, 120_000);

for (const kind of STATE_KINDS.filter((k) => k.name !== 'embedded')) {
  describe(`several instances sharing ${kind.name} and one bucket`, () => {
    const servers: ServerProcess[] = [];
    let bucket: string;
    let env: Record<string, string>;

    const start = async () => {
      const server = await spawnServer(env);
      servers.push(server);
      return server;
    };
    const stored = (url: string) => s3.object(bucket, url.split('/').pop()!);

    beforeAll(async () => {
      bucket = await s3.newBucket();
      env = {
        ...(await kind.env()),
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: bucket,
        S3_ACCESS_KEY_ID: s3.accessKeyId,
        S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
        S3_FORCE_PATH_STYLE: 'true',
        LOCK_LEASE_MS: String(LEASE_MS),
        DATA_DIR: `/tmp/tusflow-multi-${process.pid}`,
      };
      await Promise.all([start(), start(), start()]);
    }, 60_000);
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.kill()));
    });

    test('started on A, continued on B, finished on C: byte-identical', async () => {
      const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
      const bytes = randomBytes(17 * MiB + 3);
      const first = await tusUpload(a.endpoint, bytes, { chunkSize: 3 * MiB, abortWhen: (n) => n >= 6 * MiB });
      const second = await tusUpload(b.endpoint, bytes, { chunkSize: 2 * MiB, uploadUrl: on(b, first.url), abortWhen: (n) => n >= 11 * MiB });
      expect(second.aborted).toBe(true);
      expect((await head(on(c, first.url))).offset).toBeGreaterThanOrEqual(9 * MiB);
      await tusUpload(c.endpoint, bytes, { chunkSize: 4 * MiB, uploadUrl: on(c, first.url) });
      expect(sha256(await stored(first.url))).toBe(sha256(bytes));
      expect(await head(on(a, first.url))).toEqual({ status: 200, offset: bytes.length });
    });

    test('two PATCHes at the same offset on two instances: the first writer is cut cleanly, the second gets 409', async () => {
      const [a, b] = servers as [ServerProcess, ServerProcess];
      const bytes = randomBytes(12 * MiB);
      const created = await fetch(a.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
      const url = created.headers.get('Location')!;
      const slow = fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: slowBody(bytes, 150), duplex: 'half' } as RequestInit);
      await Bun.sleep(400);
      const fast = await fetch(on(b, url), { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes });
      const first = await slow;
      // A was asked to stop, committed what it had received, and answered with that offset;
      // B then found the offset moved and was refused with 409, storing nothing.
      expect(first.status).toBe(204);
      const committed = Number(first.headers.get('Upload-Offset'));
      expect(committed).toBeGreaterThan(0);
      expect(committed).toBeLessThan(bytes.length);
      expect(fast.status).toBe(409);
      expect((await head(url)).offset).toBe(committed);
      await tusUpload(b.endpoint, bytes, { uploadUrl: on(b, url) });
      expect(sha256(await stored(url))).toBe(sha256(bytes));
    }, 30_000);

    test('kill -9 of the instance holding the lock: another resumes within the lease, nothing acknowledged is lost', async () => {
      const victim = await start();
      const [, b] = servers as [ServerProcess, ServerProcess];
      const bytes = randomBytes(14 * MiB);
      const created = await fetch(victim.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
      const url = created.headers.get('Location')!;
      const acked = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes.subarray(0, 6 * MiB) });
      expect(acked.headers.get('Upload-Offset')).toBe(String(6 * MiB));
      const hanging = fetch(url, {
        method: 'PATCH',
        headers: { ...PATCH, 'Upload-Offset': String(6 * MiB) },
        body: slowBody(bytes.slice(6 * MiB), 1000),
        duplex: 'half',
      } as RequestInit).catch((e: Error) => e);
      await Bun.sleep(300);
      await victim.kill('SIGKILL');
      await hanging;

      const started = Date.now();
      const resumed = await fetch(on(b, url), { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(6 * MiB) }, body: bytes.subarray(6 * MiB) });
      expect(resumed.status).toBe(204);
      expect(Date.now() - started).toBeLessThan(LEASE_MS + 1500);
      expect(sha256(await stored(url))).toBe(sha256(bytes));
    }, 30_000);

    test('progress, as JSON and as an event stream, seen from B while A receives the bytes', async () => {
      const [a, b] = servers as [ServerProcess, ServerProcess];
      const bytes = randomBytes(24 * MiB);
      const created = await fetch(a.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
      const url = created.headers.get('Location')!;
      const events = fetch(`${on(b, url)}/progress`, { headers: { Accept: 'text/event-stream' }, signal: AbortSignal.timeout(20_000) });
      const upload = fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: slowBody(bytes, 60), duplex: 'half' } as RequestInit);

      let live: { state: string; received: number; offset: number; bytesPerSecond: number } | undefined;
      for (let i = 0; i < 60 && live?.state !== 'uploading'; i++) {
        await Bun.sleep(100);
        const candidate = await (await fetch(`${on(b, url)}/progress`)).json();
        if (candidate.state === 'uploading' && candidate.received > 0) live = candidate;
      }
      expect(live?.offset).toBe(0);
      expect(live!.received).toBeGreaterThan(0);
      expect(live!.bytesPerSecond).toBeGreaterThan(0);
      expect((await upload).status).toBe(204);

      const text = await (await events).text(); // ends when the upload is finished
      const seen = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!));
      expect(seen.length).toBeGreaterThanOrEqual(3);
      expect(seen.at(-1)).toMatchObject({ state: 'finished', offset: bytes.length, received: bytes.length });
      const received = seen.map((e) => e.received);
      expect(received).toEqual([...received].sort((x, y) => x - y));
      expect(seen.some((e) => e.state === 'uploading' && e.received > 0 && e.received < bytes.length)).toBe(true);
    }, 30_000);
  });
}
