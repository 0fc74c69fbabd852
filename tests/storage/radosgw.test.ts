// Proves tests/support/s3.ts gives a real S3 server: objects, multipart, SigV4 checks.
import { test, expect } from 'bun:test';
import { AwsClient } from 'aws4fetch';
import { startS3, type S3Env } from '../support/s3.ts';

// The first startS3() in a process starts a Ceph cluster (~2-3 s here; bounded at 60 s by the script).
const START_TIMEOUT = 120_000;

function clientFor(s3: S3Env, secretAccessKey = s3.secretAccessKey): AwsClient {
  return new AwsClient({
    accessKeyId: s3.accessKeyId,
    secretAccessKey,
    region: s3.region,
    service: 's3',
    retries: 0,
  });
}

async function ok(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res;
}

function xmlValue(xml: string, tag: string): string {
  const m = xml.match(new RegExp(`<${tag}>([^<]*)</${tag}>`));
  if (!m?.[1]) throw new Error(`no <${tag}> in ${xml}`);
  return m[1];
}

test(
  'startS3 gives a bucket that stores and returns an object',
  async () => {
    const s3 = await startS3();
    expect(s3.endpoint).toMatch(/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?$/);
    const aws = clientFor(s3);
    const bucket = await s3.newBucket();
    expect(bucket.length).toBeGreaterThanOrEqual(3);
    expect(await s3.newBucket()).not.toBe(bucket);

    const url = `${s3.endpoint}/${bucket}/hello.txt`;
    await ok(await aws.fetch(url, { method: 'PUT', body: 'hello, radosgw' }), 'PUT object');
    const got = await ok(await aws.fetch(url), 'GET object');
    expect(await got.text()).toBe('hello, radosgw');

    await ok(await aws.fetch(url, { method: 'DELETE' }), 'DELETE object');
    expect((await aws.fetch(url)).status).toBe(404);
    await ok(await aws.fetch(`${s3.endpoint}/${bucket}`, { method: 'DELETE' }), 'DELETE bucket');
  },
  START_TIMEOUT,
);

test(
  'multipart upload: 5 MiB + 1 byte parts, completed, read back byte for byte',
  async () => {
    const s3 = await startS3();
    const aws = clientFor(s3);
    const bucket = await s3.newBucket();
    const url = `${s3.endpoint}/${bucket}/multi.bin`;

    const part1 = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < part1.length; i += 65536) crypto.getRandomValues(part1.subarray(i, i + 65536));
    const part2 = new Uint8Array([0x7a]);

    const created = await ok(await aws.fetch(`${url}?uploads`, { method: 'POST' }), 'CreateMultipartUpload');
    const uploadId = xmlValue(await created.text(), 'UploadId');
    const qs = (n: number) => `partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`;

    const etags: string[] = [];
    for (const [i, body] of [part1, part2].entries()) {
      const res = await ok(await aws.fetch(`${url}?${qs(i + 1)}`, { method: 'PUT', body }), `UploadPart ${i + 1}`);
      const etag = res.headers.get('etag');
      expect(etag).toBeTruthy();
      etags.push(etag!);
    }

    const completeXml =
      '<CompleteMultipartUpload>' + etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('') + '</CompleteMultipartUpload>';
    const completed = await ok(await aws.fetch(`${url}?uploadId=${encodeURIComponent(uploadId)}`, { method: 'POST', body: completeXml }), 'CompleteMultipartUpload');
    const completedXml = await completed.text();
    expect(completedXml).not.toContain('<Error>'); // S3 may report errors inside a 200
    expect(completedXml).toContain('<CompleteMultipartUploadResult');
    // radosgw 16.2 answers Complete with an empty <ETag></ETag>; the object's ETag is md5-N.
    const got = await ok(await aws.fetch(url), 'GET completed object');
    expect(got.headers.get('etag')).toMatch(/^"[0-9a-f]{32}-2"$/);
    const bytes = new Uint8Array(await got.arrayBuffer());
    expect(bytes.length).toBe(part1.length + 1);
    expect(Buffer.compare(bytes.subarray(0, part1.length), part1)).toBe(0);
    expect(bytes[part1.length]).toBe(0x7a);

    await ok(await aws.fetch(url, { method: 'DELETE' }), 'DELETE object');
    await ok(await aws.fetch(`${s3.endpoint}/${bucket}`, { method: 'DELETE' }), 'DELETE bucket');
  },
  START_TIMEOUT,
);

test(
  'a request signed with the wrong secret key is refused with 403',
  async () => {
    const s3 = await startS3();
    const bucket = await s3.newBucket();
    const url = `${s3.endpoint}/${bucket}/secret.txt`;
    const bad = clientFor(s3, 'not-the-secret');

    const put = await bad.fetch(url, { method: 'PUT', body: 'nope' });
    expect(put.status).toBe(403);
    expect(await put.text()).toContain('SignatureDoesNotMatch');
    expect((await bad.fetch(`${s3.endpoint}/${bucket}`)).status).toBe(403);
    // unsigned requests are refused too
    expect((await fetch(`${s3.endpoint}/${bucket}/secret.txt`, { method: 'PUT', body: 'x' })).status).toBe(403);

    // and nothing was written
    const aws = clientFor(s3);
    expect((await aws.fetch(url)).status).toBe(404);
    await ok(await aws.fetch(`${s3.endpoint}/${bucket}`, { method: 'DELETE' }), 'DELETE bucket');
  },
  START_TIMEOUT,
);
