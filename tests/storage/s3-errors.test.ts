import { expect, test } from 'bun:test';
import { AwsClient } from 'aws4fetch';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Error } from '../../src/storage/s3/errors.ts';
import { startS3 } from '../support/s3.ts';
import { spawnServer, freePort } from '../support/process.ts';
import { startS3Server } from '../support/s3-server.ts';
import { TUS } from '../support/server.ts';
import { refusal, runUntilExit, type Entry } from '../support/startup.ts';

/** A server on a new bucket of the test radosgw; no S3_FORCE_PATH_STYLE: an IP endpoint gets path style. */
async function s3Env(overrides: Record<string, string> = {}) {
  const s3 = await startS3();
  return {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: await s3.newBucket(),
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    DATA_DIR: await mkdtemp(join(tmpdir(), 'tusflow-s3-errors-')),
    ...overrides,
  };
}

test.each(['bun', 'deno'] as Entry[])(
  '%s: each wrong S3 setting stops the server at start with one line naming it',
  async (entry) => {
    const s3 = await startS3();
    const closed = `http://127.0.0.1:${await freePort()}`;
    const [credentials, bucket, refused, unresolved, virtualHost] = await Promise.all([
      runUntilExit(entry, await s3Env({ S3_SECRET_ACCESS_KEY: 'wrong' })),
      runUntilExit(entry, await s3Env({ S3_BUCKET: 'no-such-bucket-here' })),
      runUntilExit(entry, await s3Env({ S3_ENDPOINT: closed })),
      runUntilExit(entry, await s3Env({ S3_ENDPOINT: 'http://no-such-host.invalid:7480' })),
      // Path style turned off on an IP endpoint: there is no bucket.127.0.0.1.
      runUntilExit(entry, await s3Env({ S3_FORCE_PATH_STYLE: 'false' })),
    ]);
    expect(refusal(credentials)).toMatch(/^tusflow: S3 refused the credentials for bucket "[\w-]+" \(403 \w+\) \(check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY/);
    expect(refusal(bucket)).toMatch(
      new RegExp(
        `^tusflow: S3 bucket "no-such-bucket-here" does not exist \\(404 NoSuchBucket\\) \\(check S3_BUCKET=no-such-bucket-here, S3_ENDPOINT=${s3.endpoint}\\)$`,
      ),
    );
    expect(refusal(refused)).toMatch(new RegExp(`^tusflow: S3 cannot be reached: .+ \\(check S3_ENDPOINT=${closed}\\)$`));
    expect(refusal(unresolved)).toMatch(/^tusflow: S3 cannot be reached: .*(ENOTFOUND|dns error|lookup).* \(check S3_ENDPOINT=http:\/\/no-such-host\.invalid:7480\)$/);
    expect(refusal(virtualHost)).toMatch(/^tusflow: virtual-host addressing .* IP address \(127\.0\.0\.1\) .* \(check S3_FORCE_PATH_STYLE and S3_ENDPOINT\)$/);
  },
  60_000,
);

test('IP and localhost endpoints get path style without S3_FORCE_PATH_STYLE, and uploads land in the bucket', async () => {
  const s3 = await startS3();
  const ip = await s3Env();
  const localhost = await s3Env({ S3_ENDPOINT: s3.endpoint.replace('127.0.0.1', 'localhost') });
  for (const env of [ip, localhost]) {
    const server = await spawnServer(env);
    try {
      expect(server.output()).toContain(`"storage":"S3 bucket ${env.S3_BUCKET} at ${env.S3_ENDPOINT}"`);
      const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
      expect(res.status).toBe(201);
      const url = new URL(res.headers.get('Location')!, server.endpoint).href;
      const patch = await fetch(url, { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'hello' });
      expect(patch.status).toBe(204);
      expect(new TextDecoder().decode(await s3.object(env.S3_BUCKET, url.split('/').pop()!))).toBe('hello');
    } finally {
      await server.kill();
      await rm(env.DATA_DIR, { recursive: true, force: true });
    }
  }
}, 60_000);

/** The server's JSON log lines for responses with `status`. */
const loggedWith = (output: string, status: number) =>
  output
    .split('\n')
    .filter((line) => line.includes(`"status":${status}`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('a bucket gone while the server runs: 503 blaming the storage settings, not "try again"; S3\'s answer is logged, not sent', async () => {
  const s3 = await startS3();
  const env = await s3Env();
  const server = await spawnServer(env);
  try {
    const aws = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: 's3' });
    expect((await aws.fetch(`${s3.endpoint}/${env.S3_BUCKET}`, { method: 'DELETE' })).status).toBe(204);
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("the storage backend failed, and will until the server's storage settings are fixed\n");
    // The server's log line for it: an error, with S3's answer and the client.
    await Bun.sleep(100);
    expect(loggedWith(server.output(), 503)).toEqual([
      expect.objectContaining({ level: 'error', method: 'POST', client: '127.0.0.1', reason: expect.stringContaining('NoSuchBucket') }),
    ]);
  } finally {
    await server.kill();
    await rm(env.DATA_DIR, { recursive: true, force: true });
  }
}, 60_000);

test("an upload's multipart upload aborted behind the server's back (a lifecycle rule): 503 with the generic reason, not the settings one", async () => {
  const s3 = await startS3();
  const env = await s3Env();
  const server = await spawnServer(env);
  try {
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('Location')!, server.endpoint).href;
    const key = url.split('/').pop()!;
    const aws = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: 's3' });
    const listed = await (await aws.fetch(`${s3.endpoint}/${env.S3_BUCKET}?uploads`)).text();
    const uploadIds = [...listed.matchAll(/<UploadId>([^<]+)<\/UploadId>/g)].map((m) => m[1]!);
    expect(uploadIds.length).toBe(1);
    const aborted = await aws.fetch(`${s3.endpoint}/${env.S3_BUCKET}/${key}?uploadId=${encodeURIComponent(uploadIds[0]!)}`, { method: 'DELETE' });
    expect(aborted.status).toBe(204);

    const patch = await fetch(url, { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'helloworld' });
    expect(patch.status).toBe(503);
    expect(await patch.text()).toBe('the storage backend failed; try again\n');
    // No object was made of it.
    expect((await aws.fetch(`${s3.endpoint}/${env.S3_BUCKET}/${key}`, { method: 'HEAD' })).status).toBe(404);
    await Bun.sleep(100);
    expect(loggedWith(server.output(), 503)).toEqual([expect.objectContaining({ level: 'error', method: 'PATCH', reason: expect.stringContaining('NoSuchUpload') })]);
  } finally {
    await server.kill();
    await rm(env.DATA_DIR, { recursive: true, force: true });
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
    // Trying again can help here (S3 is down, not misconfigured), and the reason says so.
    expect(await patch.text()).toMatch(/storage backend failed; try again/);
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

test('only errors that blame the storage settings count as misconfigured, not those about one upload', () => {
  const settings: [number, string][] = [
    [403, 'AccessDenied'],
    [403, 'InvalidAccessKeyId'],
    [403, 'SignatureDoesNotMatch'],
    [404, 'NoSuchBucket'],
    [400, 'AuthorizationHeaderMalformed'],
    [301, 'PermanentRedirect'],
    [400, 'IllegalLocationConstraintException'],
  ];
  const perUpload: [number, string][] = [
    [404, 'NoSuchUpload'],
    [400, 'InvalidPart'],
    [400, 'InvalidPartOrder'],
    [400, 'EntityTooSmall'],
    [412, 'PreconditionFailed'],
    [404, 'NoSuchKey'],
    [503, 'SlowDown'],
  ];
  for (const [status, code] of settings) expect([code, new S3Error('PutObject', status, code, '').misconfigured]).toEqual([code, true]);
  for (const [status, code] of perUpload) expect([code, new S3Error('PutObject', status, code, '').misconfigured]).toEqual([code, false]);
});
