/**
 * Integrity on the way into S3, safe completion, object headers and downloads redirected to
 * presigned URLs, on the test radosgw behind the fault proxy (which can flip one byte of a request
 * body on its way to S3).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { AwsClient } from 'aws4fetch';
import { S3Client } from '../../src/storage/s3/client.ts';
import { S3DataStore } from '../../src/storage/s3/store.ts';
import { contentHeaders } from '../../src/protocol/download.ts';
import { multipartEtag, type PayloadCheck } from '../../src/storage/s3/integrity.ts';
import { objectSettingsHeaders, type ObjectSettings } from '../../src/storage/s3/object-settings.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import { digestMetadata } from '../../src/model/digest.ts';
import { createHash } from 'node:crypto';
import type { HookDecision, Hooks } from '../../src/hooks/types.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { randomBytes, sha256, startServer, TUS, type TestServer } from '../support/server.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

let s3: S3Env;
let proxy: FaultProxy;
let raw: AwsClient;
const servers: TestServer[] = [];

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint, { seed: 7 });
  proxy.setFaults(false); // only the faults a test injects
  raw = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: 's3', retries: 0 });
}, 120_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await proxy?.stop();
});

interface Setup {
  check: PayloadCheck;
  settings?: ObjectSettings;
  /** Bun's path: parts streamed while they arrive when no check needs their digest first. */
  streamParts?: boolean;
  downloadRedirect?: { expiresSeconds: number };
  authToken?: string;
  hooks?: Hooks;
  hooksUrl?: string;
}

/** A server storing into a fresh bucket through the fault proxy. */
async function serve({ check, settings = {}, streamParts = true, downloadRedirect, authToken, hooks, hooksUrl }: Setup) {
  const bucket = await s3.newBucket();
  const client = new S3Client({
    endpoint: proxy.endpoint,
    bucket,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    streamBodies: streamParts,
    payloadCheck: check,
  });
  const fixed = objectSettingsHeaders(settings);
  const store = new S3DataStore({
    client,
    prefix: '',
    partSize: PART,
    parallelParts: 4,
    streamParts,
    releaseChunks: streamParts,
    // As the server entries wire it: the whole-upload digest the client sent is stored with the object.
    objectHeaders: (upload) => ({ ...fixed, ...contentHeaders(upload.metadata), ...digestMetadata(upload.digest) }),
    downloadRedirect,
  });
  const state = new MemoryStateStore();
  const server = await startServer({ store, state, authToken, hooks, hooksUrl });
  servers.push(server);
  const object = async (key: string) => {
    const res = await raw.fetch(`${s3.endpoint}/${bucket}/${encodeURIComponent(key)}`);
    return res.status === 404 ? undefined : new Uint8Array(await res.arrayBuffer());
  };
  const head = (key: string) => raw.fetch(`${s3.endpoint}/${bucket}/${encodeURIComponent(key)}`, { method: 'HEAD' });
  const put = (key: string, body: string) => raw.fetch(`${s3.endpoint}/${bucket}/${encodeURIComponent(key)}`, { method: 'PUT', body });
  return { server, client, bucket, object, head, put, state };
}

async function create(endpoint: string, length: number, metadata = ''): Promise<string> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), ...(metadata ? { 'Upload-Metadata': metadata } : {}) } });
  expect(res.status).toBe(201);
  return new URL(res.headers.get('Location')!, endpoint).href;
}

const patch = (url: string, offset: number, body: Uint8Array<ArrayBuffer>) =>
  fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': String(offset) }, body });
const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** Where two byte arrays of one length differ. */
function differences(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

test('control, S3_CHECKSUM=off: a byte flipped between the server and S3 is stored, and nobody notices', async () => {
  // This run shows the fault is real and reaches the stored object: without it, the runs below
  // with checks could pass because the proxy changed nothing.
  const { server, object, client } = await serve({ check: 'off' });
  const bytes = randomBytes(2 * PART + 1000);
  const url = await create(server.endpoint, bytes.byteLength);
  proxy.inject('UploadPart', 'corruptBody');
  const before = proxy.corrupted.length;
  expect((await patch(url, 0, bytes)).status).toBe(204);
  expect(proxy.corrupted.slice(before)).toEqual([{ op: 'UploadPart', status: 200, code: '' }]);
  const stored = (await object(idOf(url)))!;
  expect(stored.byteLength).toBe(bytes.byteLength);
  const changed = differences(stored, bytes);
  expect(changed).toHaveLength(1);
  // The flipped byte is the middle of one of the two full parts.
  expect([PART / 2, PART + PART / 2]).toContain(changed[0]!);
  expect(client.digestRefusals).toBe(0);
}, 60_000);

for (const [check, code] of [
  ['sha256', 'XAmzContentSHA256Mismatch'],
  ['md5', 'BadDigest'],
] as const) {
  test(`S3_CHECKSUM=${check}: radosgw refuses the corrupted part (${code}), it is resent from its buffer, the object is byte-identical`, async () => {
    const { server, object, client } = await serve({ check });
    const bytes = randomBytes(2 * PART + 1000);
    const url = await create(server.endpoint, bytes.byteLength);
    proxy.inject('UploadPart', 'corruptBody');
    const before = proxy.corrupted.length;
    const sent = proxy.stats.byOperation.UploadPart ?? 0;
    expect((await patch(url, 0, bytes)).status).toBe(204);
    expect(proxy.corrupted.slice(before)).toEqual([{ op: 'UploadPart', status: 400, code }]);
    expect(client.digestRefusals).toBe(1);
    // Three parts, and the refused one once more.
    expect((proxy.stats.byOperation.UploadPart ?? 0) - sent).toBe(4);
    expect(sha256((await object(idOf(url)))!)).toBe(sha256(bytes));
  }, 60_000);
}

test('S3_CHECKSUM=md5: a corrupted segment (PutObject of a PATCH that fills no part) is refused and resent too', async () => {
  const { server, object, client } = await serve({ check: 'md5' });
  const bytes = randomBytes(PART + 3000);
  const url = await create(server.endpoint, bytes.byteLength);
  proxy.inject('PutObject', 'corruptBody');
  const before = proxy.corrupted.length;
  expect((await patch(url, 0, bytes.subarray(0, 3000))).status).toBe(204);
  expect(proxy.corrupted.slice(before)).toEqual([{ op: 'PutObject', status: 400, code: 'BadDigest' }]);
  expect(client.digestRefusals).toBe(1);
  expect((await patch(url, 3000, bytes.subarray(3000))).status).toBe(204);
  expect(sha256((await object(idOf(url)))!)).toBe(sha256(bytes));
}, 60_000);

test('a part refused every time fails the PATCH after the bounded attempts, and the upload resumes from the offset it had', async () => {
  const { server, object, client } = await serve({ check: 'sha256' });
  const bytes = randomBytes(PART + 10);
  const url = await create(server.endpoint, bytes.byteLength);
  for (let i = 0; i < 5; i++) proxy.inject('UploadPart', 'corruptBody');
  const res = await patch(url, 0, bytes);
  expect(res.status).toBe(503);
  await res.text();
  expect(client.digestRefusals).toBe(4); // 5 attempts: 4 retries
  const head = await fetch(url, { method: 'HEAD', headers: TUS });
  const offset = Number(head.headers.get('Upload-Offset'));
  expect(offset).toBe(0);
  expect((await patch(url, offset, bytes.subarray(offset))).status).toBe(204);
  expect(sha256((await object(idOf(url)))!)).toBe(sha256(bytes));
}, 60_000);

test('completion sends x-amz-mp-object-size and If-None-Match, and never overwrites an object that appeared at the key: 409', async () => {
  const { server, object, put } = await serve({ check: 'sha256' });
  const bytes = randomBytes(PART + 10);
  // Completed normally: both headers are on the CompleteMultipartUpload.
  const url = await create(server.endpoint, bytes.byteLength);
  expect((await patch(url, 0, bytes)).status).toBe(204);
  const complete = proxy.lastHeaders.CompleteMultipartUpload!;
  expect(complete.get('x-amz-mp-object-size')).toBe(String(bytes.byteLength));
  expect(complete.get('if-none-match')).toBe('*');
  expect(sha256((await object(idOf(url)))!)).toBe(sha256(bytes));

  // Another writer puts an object at the key while the upload is under way (radosgw 16 ignores
  // If-None-Match on completion: the HeadObject before it is what keeps the object).
  const other = await create(server.endpoint, bytes.byteLength);
  expect((await patch(other, 0, bytes.subarray(0, PART))).status).toBe(204);
  expect((await put(idOf(other), 'not yours')).status).toBe(200);
  const last = await patch(other, PART, bytes.subarray(PART));
  expect(last.status).toBe(409);
  expect(await last.text()).toMatch(/object key is taken.*appeared at .* before the upload completed; it was kept/);
  expect(new TextDecoder().decode(await object(idOf(other)))).toBe('not yours');
  // The upload is not finished: the last PATCH did not count, and its retry is refused alike.
  const head = await fetch(other, { method: 'HEAD', headers: TUS });
  expect(head.headers.get('Upload-Offset')).toBe(String(PART));
  const again = await patch(other, PART, bytes.subarray(PART));
  expect(again.status).toBe(409);
  await again.text();
  expect((await fetch(other)).status).toBe(404); // not finished
  expect(new TextDecoder().decode(await object(idOf(other)))).toBe('not yours');
}, 60_000);

test("a completed object's ETag is the MD5 of its parts' MD5s, as the check after a 412 expects (on radosgw)", async () => {
  const { client, head } = await serve({ check: 'sha256' });
  const uploadId = await client.createMultipartUpload('etag-check');
  const sent = [await client.uploadPart('etag-check', uploadId, 1, randomBytes(PART)), await client.uploadPart('etag-check', uploadId, 2, randomBytes(10))];
  const etags = sent.map((part) => part.etag);
  await client.completeMultipartUpload(
    'etag-check',
    uploadId,
    etags.map((etag, i) => ({ partNumber: i + 1, etag })),
    PART + 10,
  );
  expect((await head('etag-check')).headers.get('etag')).toBe(multipartEtag(etags));
}, 60_000);

test('object headers: Cache-Control, storage class, user metadata and an RFC 8187 filename, read back with HeadObject', async () => {
  const settings: ObjectSettings = { cacheControl: 'public, max-age=600', storageClass: 'STANDARD', metadata: { team: 'media', note: 'café' } };
  const { server, head } = await serve({ check: 'sha256', settings });
  const bytes = randomBytes(1000);
  const url = await create(server.endpoint, bytes.byteLength, `filename ${b64('résumé «final».pdf')},filetype ${b64('application/pdf')}`);
  expect((await patch(url, 0, bytes)).status).toBe(204);
  const res = await head(idOf(url));
  expect(res.status).toBe(200);
  expect(res.headers.get('cache-control')).toBe('public, max-age=600');
  expect(res.headers.get('x-amz-meta-team')).toBe('media');
  // Non-ASCII metadata travels as an RFC 2047 encoded word, as S3 returns it.
  expect(res.headers.get('x-amz-meta-note')).toBe(`=?UTF-8?B?${b64('café')}?=`);
  expect(res.headers.get('content-type')).toBe('application/pdf');
  const disposition = res.headers.get('content-disposition')!;
  expect(disposition).toBe(`attachment; filename="r_sum_ _final_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%C2%ABfinal%C2%BB.pdf`);
  expect(decodeURIComponent(disposition.split("UTF-8''")[1]!)).toBe('résumé «final».pdf');
}, 60_000);

test("a pre-create hook's object settings are stored over the server's; settings that cannot be stored fail the creation", async () => {
  const settings: ObjectSettings = { cacheControl: 'no-cache', metadata: { team: 'media', source: 'server' } };
  const { server, head, object } = await serve({
    check: 'sha256',
    settings,
    hooks: {
      'pre-create': ({ upload }): HookDecision => {
        if (upload.metadata.bad) return { object: { metadata: { 'Bad Name': 'x' } } };
        return { object: { cacheControl: 'public, max-age=31536000, immutable', storageClass: 'STANDARD', metadata: { source: 'hook', user: 'ana' } } };
      },
    },
  });
  const bytes = randomBytes(PART + 1);
  const url = await create(server.endpoint, bytes.byteLength);
  expect((await patch(url, 0, bytes)).status).toBe(204);
  const res = await head(idOf(url));
  expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(res.headers.get('x-amz-meta-team')).toBe('media'); // the server's, kept
  expect(res.headers.get('x-amz-meta-source')).toBe('hook'); // the hook's, over the server's
  expect(res.headers.get('x-amz-meta-user')).toBe('ana');
  expect(sha256((await object(idOf(url)))!)).toBe(sha256(bytes));

  const refused = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'Upload-Metadata': `bad ${b64('1')}` } });
  expect(refused.status).toBe(500);
  expect(await refused.text()).toContain('object settings that cannot be stored: metadata name "Bad Name" is not a lower-case token');
}, 60_000);

test("a hook cannot replace the digest the upload was checked against (sha256, sha512 are reserved), and only the settings' known fields are saved", async () => {
  const { server, head, state } = await serve({
    check: 'sha256',
    hooks: {
      'pre-create': ({ upload }): HookDecision => {
        if (upload.metadata.take) return { object: { metadata: { [upload.metadata.take]: 'f'.repeat(64) } } };
        return { object: { cacheControl: 'no-store', metadata: { team: 'x' }, extra: 'kept?' } as ObjectSettings };
      },
    },
  });
  for (const name of ['sha256', 'sha512']) {
    const refused = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'Upload-Metadata': `take ${b64(name)}` } });
    expect(refused.status).toBe(500);
    expect(await refused.text()).toContain(`metadata name "${name}" is reserved for the upload's digest`);
  }
  const bytes = randomBytes(1000);
  const digest = createHash('sha256').update(bytes).digest();
  const res = await fetch(server.endpoint, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': String(bytes.length), 'Repr-Digest': `sha-256=:${digest.toString('base64')}:` },
  });
  const url = new URL(res.headers.get('Location')!, server.endpoint).href;
  expect((await state.get(idOf(url)))?.object).toEqual({ cacheControl: 'no-store', metadata: { team: 'x' } });
  expect((await patch(url, 0, bytes)).status).toBe(204);
  const stored = await head(idOf(url));
  expect([stored.headers.get('x-amz-meta-sha256'), stored.headers.get('cache-control')]).toEqual([digest.toString('hex'), 'no-store']);
}, 60_000);

test("a webhook's answer to pre-create may carry the object settings too", async () => {
  const receiver = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req) => {
      const event = (await req.json()) as { type: string };
      return event.type === 'pre-create' ? Response.json({ object: { cacheControl: 'max-age=60', metadata: { via: 'webhook' } } }) : new Response(null, { status: 204 });
    },
  });
  try {
    const { server, head } = await serve({ check: 'sha256', hooksUrl: `http://127.0.0.1:${receiver.port}/` });
    const url = await create(server.endpoint, 3);
    expect((await patch(url, 0, randomBytes(3))).status).toBe(204);
    const res = await head(idOf(url));
    expect(res.headers.get('cache-control')).toBe('max-age=60');
    expect(res.headers.get('x-amz-meta-via')).toBe('webhook');
  } finally {
    await receiver.stop(true);
  }
}, 60_000);

test('S3_DOWNLOAD_REDIRECT: GET answers 307 to a presigned URL; fetch follows it and gets the bytes, type and name from S3, ranges too', async () => {
  const token = 'download-secret';
  const auth = { Authorization: `Bearer ${token}` };
  const { server } = await serve({ check: 'sha256', downloadRedirect: { expiresSeconds: 60 }, authToken: token });
  const bytes = randomBytes(PART + 5000);
  const created = await fetch(server.endpoint, {
    method: 'POST',
    headers: { ...TUS, ...auth, 'Upload-Length': String(bytes.byteLength), 'Upload-Metadata': `filename ${b64('naïve.txt')},filetype ${b64('text/plain')}` },
  });
  const url = new URL(created.headers.get('Location')!, server.endpoint).href;
  // Not finished: no URL, the usual refusal.
  const early = await fetch(url, { headers: auth, redirect: 'manual' });
  expect(early.status).toBe(404); // NOT_FINISHED
  expect(early.headers.get('Location')).toBeNull();
  expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, ...auth, 'Upload-Offset': '0' }, body: bytes })).status).toBe(204);

  const redirect = await fetch(url, { headers: auth, redirect: 'manual' });
  expect(redirect.status).toBe(307);
  expect(redirect.headers.get('Cache-Control')).toBe('no-store');
  const location = new URL(redirect.headers.get('Location')!);
  // Straight to S3 (the real endpoint here is behind the proxy, which only forwards), signed for 60 s.
  expect(location.origin).toBe(proxy.endpoint);
  expect(location.searchParams.get('X-Amz-Expires')).toBe('60');
  expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  expect(location.searchParams.get('response-content-disposition')).toBe(`inline; filename="na_ve.txt"; filename*=UTF-8''na%C3%AFve.txt`);

  const gets = proxy.stats.byOperation.GetObject ?? 0;
  const whole = await fetch(url, { headers: auth });
  expect(whole.status).toBe(200);
  expect(whole.redirected).toBe(true);
  expect(whole.headers.get('content-type')).toBe('text/plain');
  expect(whole.headers.get('content-disposition')).toBe(`inline; filename="na_ve.txt"; filename*=UTF-8''na%C3%AFve.txt`);
  expect(sha256(new Uint8Array(await whole.arrayBuffer()))).toBe(sha256(bytes));
  expect((proxy.stats.byOperation.GetObject ?? 0) - gets).toBe(1); // the client's own, with no credentials of the server's

  const ranged = await fetch(url, { headers: { ...auth, Range: 'bytes=100-199' } });
  expect(ranged.status).toBe(206);
  expect(ranged.headers.get('content-range')).toBe(`bytes 100-199/${bytes.byteLength}`);
  expect(sha256(new Uint8Array(await ranged.arrayBuffer()))).toBe(sha256(bytes.subarray(100, 200)));

  // Without credentials: refused before any URL is made.
  const anonymous = await fetch(url, { redirect: 'manual' });
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('Location')).toBeNull();
  expect(await anonymous.text()).not.toContain('X-Amz');

  // An expired URL is refused by S3.
  const stale = new URL(location);
  stale.searchParams.set('X-Amz-Expires', '1');
  stale.searchParams.set('X-Amz-Date', '20200101T000000Z');
  expect((await fetch(stale)).status).toBe(403);
}, 60_000);
