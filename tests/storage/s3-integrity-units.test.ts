import { expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { crc32c, crc64nvme, jsSha256, multipartEtag, payloadHeaders, type Sha256Factory } from '../../src/storage/s3/integrity.ts';
import { PartBuffers } from '../../src/storage/s3/buffers.ts';
import { sendParts } from '../../src/storage/s3/parts.ts';
import { parseMetadataSetting } from '../../src/storage/s3/object-settings.ts';
import { type Fetch, S3Client } from '../../src/storage/s3/client.ts';
import { sendPlan } from '../../src/storage/s3/concat.ts';
import { S3DataStore } from '../../src/storage/s3/store.ts';
import { parseEnv } from '../../src/wiring/config.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const CHECK = new TextEncoder().encode('123456789');
const ID = 'a3c7fae7d6e574338c313c6474b86b18';

test('CRC-32C and CRC-64/NVME give the catalogued check values, whatever the views', () => {
  // The "check" values of the CRC catalogue (the CRC of "123456789").
  expect(hex(crc32c([CHECK]))).toBe('e3069283');
  expect(hex(crc64nvme([CHECK]))).toBe('ae8b14860a799888');
  const split = [CHECK.subarray(0, 2), CHECK.subarray(2, 2), CHECK.subarray(2)];
  expect(hex(crc32c(split))).toBe('e3069283');
  expect(hex(crc64nvme(split))).toBe('ae8b14860a799888');
  expect(hex(crc32c([]))).toBe('00000000');
});

test('each check declares the digest of the bytes of all views, as S3 expects it', async () => {
  const views = [new Uint8Array([1, 2, 3]), new Uint8Array(300_000).fill(7), new Uint8Array([9])];
  const joined = Buffer.concat(views);
  expect(await payloadHeaders('sha256', views)).toEqual({ 'X-Amz-Content-Sha256': createHash('sha256').update(joined).digest('hex') });
  expect(await payloadHeaders('md5', views)).toEqual({ 'Content-MD5': createHash('md5').update(joined).digest('base64') });
  expect(await payloadHeaders('crc32c', [CHECK])).toEqual({ 'x-amz-checksum-crc32c': Buffer.from('e3069283', 'hex').toString('base64') });
  expect(await payloadHeaders('crc64nvme', [CHECK])).toEqual({ 'x-amz-checksum-crc64nvme': Buffer.from('ae8b14860a799888', 'hex').toString('base64') });
  expect(await payloadHeaders('off', views)).toEqual({});
  expect(await payloadHeaders('md5', 'é')).toEqual({ 'Content-MD5': createHash('md5').update('é').digest('base64') });
});

test("a multipart object's ETag: the MD5 of the parts' MD5s, and their count", () => {
  const a = createHash('md5').update('a').digest();
  const b = createHash('md5').update('b').digest();
  const expected = `"${createHash('md5')
    .update(Buffer.concat([a, b]))
    .digest('hex')}-2"`;
  expect(multipartEtag([`"${a.toString('hex')}"`, `"${b.toString('hex')}"`])).toBe(expected);
});

test('S3_CHECKSUM, S3_METADATA, S3_STORAGE_CLASS and S3_CACHE_CONTROL are parsed, and bad values refused with a reason', () => {
  expect(parseEnv({}).S3_CHECKSUM).toBe('sha256');
  expect(parseEnv({ S3_CHECKSUM: 'crc64nvme' }).S3_CHECKSUM).toBe('crc64nvme');
  expect(() => parseEnv({ S3_CHECKSUM: 'crc32' })).toThrow(/S3_CHECKSUM="crc32"/);
  expect(parseMetadataSetting('team=media, owner = a=b')).toEqual({ team: 'media', owner: 'a=b' });
  expect(parseMetadataSetting('{"note":"x, y"}')).toEqual({ note: 'x, y' });
  expect(parseEnv({ S3_METADATA: 'a=1,b=2' }).S3_METADATA).toEqual({ a: '1', b: '2' });
  expect(() => parseEnv({ S3_METADATA: 'Team=x' })).toThrow(/S3_METADATA=.*"Team" is not a lower-case token/);
  expect(() => parseEnv({ S3_METADATA: '{"a":1}' })).toThrow(/S3_METADATA=.*not a string/);
  expect(() => parseEnv({ S3_METADATA: 'novalue' })).toThrow(/S3_METADATA=.*"novalue" is not name=value/);
  expect(() => parseEnv({ S3_STORAGE_CLASS: 'glacier' })).toThrow(/S3_STORAGE_CLASS/);
  expect(() => parseEnv({ S3_CACHE_CONTROL: 'max-age=1\n' })).toThrow(/S3_CACHE_CONTROL/);
});

/** A client whose every request goes to `answer` (no network), recording each request's headers. */
function offline(answer: (headers: Headers, attempt: number) => Response) {
  const seen: Headers[] = [];
  const client = new S3Client({
    endpoint: 'http://127.0.0.1:9',
    bucket: 'b',
    region: 'us-east-1',
    accessKeyId: 'k',
    secretAccessKey: 's',
    forcePathStyle: true,
    retryBudgetMs: 1_000,
    fetch: async (_url, init) => {
      const headers = new Headers(init?.headers);
      seen.push(headers);
      return answer(headers, seen.length);
    },
  });
  return { client, seen };
}

test('a service that refuses If-None-Match on completion (501) gets the completion again without it, and no condition after that', async () => {
  const { client, seen } = offline((headers) =>
    headers.has('if-none-match') ? new Response('<Error><Code>NotImplemented</Code></Error>', { status: 501 }) : new Response('<CompleteMultipartUploadResult/>'),
  );
  await client.completeMultipartUpload('k', 'u', [{ partNumber: 1, etag: '"e"' }], 5);
  expect(seen.map((h) => h.get('if-none-match'))).toEqual(['*', null]); // 501 is not retried as it is
  expect(seen.map((h) => h.get('x-amz-mp-object-size'))).toEqual(['5', '5']);
  expect(client.conditionalComplete).toBe(false);
  await client.completeMultipartUpload('k', 'u', [{ partNumber: 1, etag: '"e"' }], 5);
  expect(seen.map((h) => h.get('if-none-match'))).toEqual(['*', null, null]);
});

test('a failed condition (412) is an error of the completion, not a refusal of the header', async () => {
  const { client, seen } = offline(() => new Response('<Error><Code>PreconditionFailed</Code></Error>', { status: 412 }));
  await expect(client.completeMultipartUpload('k', 'u', [{ partNumber: 1, etag: '"e"' }])).rejects.toThrow(/412 PreconditionFailed/);
  expect(seen).toHaveLength(1);
  expect(client.conditionalComplete).toBe(true);
});

test('crc32c: the upload declares the algorithm, and completion gives back each part checksum ListParts reports', async () => {
  const { client, seen } = offline((_headers, n) => {
    if (n === 1) return new Response('<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>');
    if (n === 2)
      return new Response(
        '<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>"e"</ETag><Size>5</Size><ChecksumCRC32C>4waSgw==</ChecksumCRC32C></Part></ListPartsResult>',
      );
    return new Response('<CompleteMultipartUploadResult/>');
  });
  const crc = new S3Client({ ...client.config, payloadCheck: 'crc32c' });
  expect(await crc.createMultipartUpload('k')).toBe('u');
  expect(seen[0]!.get('x-amz-checksum-algorithm')).toBe('CRC32C');
  const parts = await crc.listParts('k', 'u');
  expect(parts).toEqual([{ partNumber: 1, etag: '"e"', size: 5, checksum: '4waSgw==' }]);
  let sent = '';
  const capture = new S3Client({
    ...client.config,
    payloadCheck: 'crc32c',
    fetch: async (_url, init) => {
      sent = String(init?.body);
      return new Response('<CompleteMultipartUploadResult/>');
    },
  });
  await capture.completeMultipartUpload('k', 'u', parts);
  expect(sent).toBe(
    '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e&quot;</ETag><ChecksumCRC32C>4waSgw==</ChecksumCRC32C></Part></CompleteMultipartUpload>',
  );
});

test('a 501 that does not say the header is refused (another operation not implemented) is an error, and the condition stays on', async () => {
  const { client, seen } = offline(() => new Response('<Error><Code>InvalidRequest</Code><Message>checksum type</Message></Error>', { status: 501 }));
  await expect(client.completeMultipartUpload('k', 'u', [{ partNumber: 1, etag: '"e"' }], 5)).rejects.toThrow(/501 InvalidRequest/);
  expect(seen).toHaveLength(1);
  expect(client.conditionalComplete).toBe(true);
  // One that names the header is a refusal of it: the call goes again without.
  const named = offline((headers) =>
    headers.has('if-none-match')
      ? new Response('<Error><Code>Http501</Code><Message>If-None-Match is not supported</Message></Error>', { status: 501 })
      : new Response(''),
  );
  await named.client.putObject('k', new Uint8Array(), {}, { onlyNew: true });
  expect(named.seen.map((h) => h.get('if-none-match'))).toEqual(['*', null]);
  expect(named.client.conditionalComplete).toBe(false);
});

/** An offline client with `S3_CHECKSUM=crc32c`, answered by `fetch`. */
function crcClient(fetch: Fetch): S3Client {
  return new S3Client({ ...offline(() => new Response('')).client.config, payloadCheck: 'crc32c', fetch });
}
const crcOf = (bytes: Uint8Array) => Buffer.from(crc32c([bytes])).toString('base64');

test('crc32c: UploadPart and UploadPartCopy give back the part checksum, and a concatenation completes with every part checksum', async () => {
  const bytes = new TextEncoder().encode('hello');
  let completion = '';
  const crc = crcClient(async (url, init) => {
    const u = new URL(String(url));
    const headers = new Headers(init?.headers);
    if (init?.method === 'PUT' && headers.has('x-amz-copy-source')) {
      return new Response(`<CopyPartResult><ETag>"c${u.searchParams.get('partNumber')}"</ETag><ChecksumCRC32C>copied==</ChecksumCRC32C></CopyPartResult>`);
    }
    if (init?.method === 'PUT') return new Response('', { headers: { ETag: `"p${u.searchParams.get('partNumber')}"` } });
    if (init?.method === 'GET') return new Response(bytes);
    completion = String(init?.body);
    return new Response('<CompleteMultipartUploadResult/>');
  });
  expect(await crc.uploadPart('k', 'u', 1, bytes)).toEqual({ etag: '"p1"', checksum: crcOf(bytes) });
  expect(await crc.uploadPartCopy('k', 'u', 2, 'src')).toEqual({ etag: '"c2"', checksum: 'copied==' });
  // One partial copied inside S3, one read through the server (smaller than a part).
  const plan = [{ copy: { source: 0, start: 0, end: 6 * 1024 * 1024 } }, { read: [{ source: 1, start: 0, end: 5 }] }];
  const parts = await sendPlan(crc, 'k', 'u', ['a', 'b'], plan, 2);
  expect(parts).toEqual([
    { partNumber: 1, etag: '"c1"', checksum: 'copied==' },
    { partNumber: 2, etag: '"p2"', checksum: crcOf(bytes) },
  ]);
  await crc.completeMultipartUpload('k', 'u', parts);
  expect(completion).toBe(
    `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;c1&quot;</ETag><ChecksumCRC32C>copied==</ChecksumCRC32C></Part><Part><PartNumber>2</PartNumber><ETag>&quot;p2&quot;</ETag><ChecksumCRC32C>${crcOf(bytes)}</ChecksumCRC32C></Part></CompleteMultipartUpload>`,
  );
});

test('crc32c: the last part that finish sends from the segments goes into the completion with its checksum', async () => {
  const tail = new TextEncoder().encode('abc');
  let completion = '';
  const crc = crcClient(async (url, init) => {
    const u = new URL(String(url));
    const method = init?.method ?? 'GET';
    if (method === 'GET' && u.searchParams.has('uploadId')) {
      return new Response(
        '<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>"p1"</ETag><Size>5</Size><ChecksumCRC32C>first==</ChecksumCRC32C></Part></ListPartsResult>',
      );
    }
    if (method === 'GET' && u.searchParams.has('list-type')) {
      return new Response(`<ListBucketResult><Contents><Key>${ID}.part/5</Key><Size>3</Size></Contents></ListBucketResult>`);
    }
    if (method === 'GET') return new Response(tail);
    if (method === 'HEAD') return new Response(null, { status: 404 });
    if (method === 'PUT') return new Response('', { headers: { ETag: '"p2"' } });
    if (method === 'POST' && u.searchParams.has('uploadId')) completion = String(init?.body);
    return new Response('<CompleteMultipartUploadResult/>');
  });
  const store = new S3DataStore({ client: crc, prefix: '', partSize: 5, parallelParts: 1 });
  await store.finish({ id: ID, offset: 8, length: 8, metadata: {}, createdAt: 0, store: { uploadId: 'u', partSize: '5' } });
  expect(completion).toBe(
    `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;p1&quot;</ETag><ChecksumCRC32C>first==</ChecksumCRC32C></Part><Part><PartNumber>2</PartNumber><ETag>&quot;p2&quot;</ETag><ChecksumCRC32C>${crcOf(tail)}</ChecksumCRC32C></Part></CompleteMultipartUpload>`,
  );
});

test('sha256 parts are hashed as their slabs fill: each part gets the SHA-256 of exactly its bytes (carry, held slabs, any chunking), with every hasher', async () => {
  const hashers: [string, Sha256Factory][] = [
    ['@noble/hashes', jsSha256],
    ['Bun.CryptoHasher', () => new Bun.CryptoHasher('sha256')],
    ['node:crypto', () => createHash('sha256')],
  ];
  for (const [name, hash] of hashers) {
    const buffers = new PartBuffers(Number.POSITIVE_INFINITY, { slabSize: 3 });
    // Held bytes from an earlier write: the first part goes on filling their slabs.
    const held = { memory: buffers.part(10), length: 4 };
    held.memory.tryTake()!.set([200, 201, 202]);
    held.memory.tryTake()!.set([203]);
    let n = 0;
    const sizes = [1, 7, 2, 9, 5];
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const size = sizes.shift();
        if (size === undefined) return c.close();
        c.enqueue(Uint8Array.from({ length: size }, () => n++ & 0xff));
      },
    });
    const sent: { bytes: Buffer; sha256: string }[] = [];
    await sendParts(body, {
      partSize: 10,
      firstPart: 1,
      held,
      keepTail: true,
      parallel: 2,
      buffers,
      hash,
      send: async (_n, bytes, sha256) => void sent.push({ bytes: Buffer.concat(bytes), sha256: hex(sha256!) }),
    });
    expect({ name, parts: sent.length }).toEqual({ name, parts: 2 });
    for (const { bytes, sha256 } of sent) expect({ name, sha256 }).toEqual({ name, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect([...sent[0]!.bytes.subarray(0, 4)]).toEqual([200, 201, 202, 203]);
  }
});

test('the held bytes a write leaves are not hashed again by the next: their running SHA-256 goes on (a tail read back from S3 is hashed afresh)', async () => {
  let hashed = 0;
  const counting: Sha256Factory = () => {
    const inner = createHash('sha256');
    return { update: (bytes: Uint8Array) => ((hashed += bytes.byteLength), inner.update(bytes)), digest: () => inner.digest() };
  };
  const bytes = Uint8Array.from({ length: 12 }, (_, i) => i * 7);
  const one = (chunk: Uint8Array) => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(chunk.slice()), c.close()) });
  for (const carried of [true, false]) {
    hashed = 0;
    const buffers = new PartBuffers(Number.POSITIVE_INFINITY, { slabSize: 4 });
    const send = async () => {};
    const first = await sendParts(one(bytes.subarray(0, 7)), { partSize: 10, firstPart: 1, keepTail: true, parallel: 1, buffers, hash: counting, send });
    expect([first.held?.length, first.heldHash !== undefined]).toEqual([7, true]);
    const sent: string[] = [];
    await sendParts(one(bytes.subarray(7)), {
      partSize: 10,
      firstPart: 1,
      held: first.held,
      heldHash: carried ? first.heldHash : undefined,
      keepTail: true,
      parallel: 1,
      buffers,
      hash: counting,
      send: async (_n, _bytes, sha256) => void sent.push(hex(sha256!)),
    });
    expect(sent).toEqual([createHash('sha256').update(bytes.subarray(0, 10)).digest('hex')]);
    expect({ carried, hashed }).toEqual({ carried, hashed: carried ? 12 : 19 });
  }
});
