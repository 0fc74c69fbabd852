import { expect, test } from 'bun:test';
import { startS3 } from '../support/s3.ts';
import { spawnServer, freePort } from '../support/process.ts';
import { startS3Server } from '../support/s3-server.ts';
import { TUS } from '../support/server.ts';

async function s3Env(overrides: Record<string, string>) {
  const s3 = await startS3();
  return {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: await s3.newBucket(),
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    ...overrides,
  };
}

test('bad S3 credentials stop the server at start with a clear reason', async () => {
  const env = await s3Env({ S3_SECRET_ACCESS_KEY: 'wrong' });
  await expect(spawnServer(env)).rejects.toThrow(/S3 refused the credentials for bucket/);
}, 60_000);

test('a missing bucket stops the server at start with a clear reason', async () => {
  const env = await s3Env({ S3_BUCKET: 'no-such-bucket-here' });
  await expect(spawnServer(env)).rejects.toThrow(/S3 bucket "no-such-bucket-here" does not exist/);
}, 60_000);

test('a good configuration starts and serves uploads into the bucket', async () => {
  const server = await spawnServer(await s3Env({}));
  try {
    expect(server.output()).toContain('storage: S3 bucket');
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '3' } });
    expect(res.status).toBe(201);
  } finally {
    await server.kill();
  }
}, 60_000);

test('S3 unreachable: a 503 with a reason in bounded time, and the upload resumes once S3 is back', async () => {
  await startS3();
  let down = false;
  const port = await freePort();
  // Requests go to the real radosgw unless `down`, then to a closed port: a refused connection.
  const switchable = (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    if (!down) return fetch(request);
    const url = new URL(request.url);
    url.port = String(port);
    return fetch(new Request(url, request));
  };
  const server = await startS3Server({ fetch: switchable });
  try {
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } });
    const url = res.headers.get('Location')!;
    down = true;
    const started = Date.now();
    const patch = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: 'hello',
    });
    expect(patch.status).toBe(503);
    expect(await patch.text()).toContain('storage backend failed');
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(server.client.retries).toBeGreaterThan(0);
    down = false;
    const retry = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: 'helloworld',
    });
    expect(retry.status).toBe(204);
    expect(new TextDecoder().decode(await server.object(url.split('/').pop()!))).toBe('helloworld');
  } finally {
    await server.stop();
  }
}, 60_000);
