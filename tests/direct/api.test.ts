// Companion's /s3/multipart API against a real radosgw: raw requests for every answer, the parts
// PUT straight to S3 with the presigned URLs, and the stored bytes compared.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { AwsClient } from 'aws4fetch';
import { sign } from 'hono/jwt';
import { startS3Server, type S3ServerOptions, type S3TestServer } from '../support/s3-server.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import type { HookEvent } from '../../src/hooks/types.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';

const MiB = 1024 * 1024;
const JSON_HEADERS = { 'Content-Type': 'application/json' };

interface Created {
  uploadId: string;
  key: string;
}

/** A small client of the API, as Uppy's AwsS3 plugin calls it. */
function api(server: S3TestServer, headers: Record<string, string> = {}) {
  const base = `${server.origin}/s3/multipart`;
  const q = (key: string) => `key=${encodeURIComponent(key)}`;
  return {
    create: (body: unknown) => fetch(base, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) }),
    list: (u: Created) => fetch(`${base}/${u.uploadId}?${q(u.key)}`, { headers }),
    sign: (u: Created, part: number | string) => fetch(`${base}/${u.uploadId}/${part}?${q(u.key)}`, { headers }),
    batch: (u: Created, parts: string) => fetch(`${base}/${u.uploadId}/batch?${q(u.key)}&partNumbers=${parts}`, { headers }),
    complete: (u: Created, parts: unknown) =>
      fetch(`${base}/${u.uploadId}/complete?${q(u.key)}`, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify({ parts }) }),
    abort: (u: Created) => fetch(`${base}/${u.uploadId}?${q(u.key)}`, { method: 'DELETE', headers }),
  };
}

async function created(res: Response): Promise<Created> {
  expect(res.status).toBe(200);
  return (await res.json()) as Created;
}

/** PUTs a part with its presigned URL, as a browser does; resolves with its ETag. */
async function putPart(server: S3TestServer, u: Created, part: number, bytes: Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}): Promise<string> {
  const { url } = (await (await api(server, headers).sign(u, part)).json()) as { url: string };
  const res = await fetch(url, { method: 'PUT', body: bytes });
  expect(res.status).toBe(200);
  return res.headers.get('ETag')!;
}

/** The multipart upload's parts as S3 itself lists them (its UploadId from the server's record), or the S3 error status. */
async function s3Parts(server: S3TestServer, key: string, s3UploadId: string): Promise<number> {
  const raw = new AwsClient({ accessKeyId: server.s3.accessKeyId, secretAccessKey: server.s3.secretAccessKey, region: server.s3.region, service: 's3', retries: 0 });
  const res = await raw.fetch(`${server.s3.endpoint}/${server.bucket}/${key}?uploadId=${encodeURIComponent(s3UploadId)}`);
  await res.body?.cancel();
  return res.status;
}

/** The upload's S3 UploadId, from its `.info` (not through the engine, whose listed offsets a HEAD would then reuse). */
const s3UploadIdOf = async (server: S3TestServer, id: string) => (await server.store.recover(id))!.store!.uploadId!;

describe('direct uploads: the whole way, one record', () => {
  let server: S3TestServer;
  const finished: HookEvent[] = [];
  const state = new MemoryStateStore();
  beforeAll(async () => {
    server = await startS3Server({ s3Direct: true, prefix: 'up/', state, hooks: { 'post-finish': (ctx) => void finished.push(ctx) } });
  });
  afterAll(() => server.stop());

  test('create, sign (one and a batch), PUT to S3, list, HEAD/progress, complete, download: the same bytes', async () => {
    const client = api(server);
    const u = await created(await client.create({ filename: 'movie.bin', type: 'application/octet-stream', metadata: { name: 'movie.bin', size: 7 } }));
    expect(u.key).toBe(`up/${u.uploadId}`);
    expect(u.uploadId).toMatch(/^[0-9a-f]{32}$/);

    const bytes = randomBytes(5 * MiB + 12_345);
    const batch = (await (await client.batch(u, '1,2')).json()) as { presignedUrls: Record<string, string> };
    expect(Object.keys(batch.presignedUrls).sort()).toEqual(['1', '2']);
    expect(batch.presignedUrls['1']).toContain('X-Amz-Signature=');
    const first = await fetch(batch.presignedUrls['1']!, { method: 'PUT', body: bytes.subarray(0, 5 * MiB) });
    expect(first.status).toBe(200);
    const etag1 = first.headers.get('ETag')!;

    // Half way: the record shows what S3 holds.
    const head = await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS });
    expect(head.status).toBe(200);
    expect(head.headers.get('Upload-Offset')).toBe(String(5 * MiB));
    expect(head.headers.get('Upload-Defer-Length')).toBe('1');
    const progress = (await (await fetch(`${server.endpoint}${u.uploadId}/progress`)).json()) as { offset: number };
    expect(progress.offset).toBe(5 * MiB);
    // A tus client cannot write to it.
    const patch = await fetch(`${server.endpoint}${u.uploadId}`, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(5 * MiB) },
      body: 'x',
    });
    expect(patch.status).toBe(403);

    const etag2 = await putPart(server, u, 2, bytes.subarray(5 * MiB));
    const listed = (await (await client.list(u)).json()) as { PartNumber: number; Size: number; ETag: string }[];
    expect(listed.map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 5 * MiB],
      [2, 12_345],
    ]);
    const done = await client.complete(u, [
      { PartNumber: 1, ETag: etag1 },
      { PartNumber: 2, ETag: etag2 },
    ]);
    expect(done.status).toBe(200);
    const { location } = (await done.json()) as { location: string };
    expect(location).toBe(`${server.endpoint}${u.uploadId}`);

    const downloaded = new Uint8Array(await (await fetch(location)).arrayBuffer());
    expect(sha256(downloaded)).toBe(sha256(bytes));
    expect(sha256((await server.object(u.key))!)).toBe(sha256(bytes));
    const after = await fetch(location, { method: 'HEAD', headers: TUS });
    expect(after.headers.get('Upload-Length')).toBe(String(bytes.length));
    expect(after.headers.get('Upload-Offset')).toBe(String(bytes.length));
    expect(finished.find((ctx) => ctx.upload.id === u.uploadId)?.upload.length).toBe(bytes.length);
    // A repeated completion (its answer lost) is answered the same; signing more is refused.
    expect((await client.complete(u, [{ PartNumber: 1, ETag: etag1 }])).status).toBe(200);
    expect((await client.sign(u, 3)).status).toBe(400);
  });

  test('completed in S3 but its answer lost: the repeated completion, or HEAD, finds it finished', async () => {
    const client = api(server);
    for (const how of ['complete', 'head'] as const) {
      const u = await created(await client.create({ filename: `${how}.bin`, type: 'application/octet-stream' }));
      const bytes = randomBytes(3333);
      const etag = await putPart(server, u, 1, bytes);
      // The server's completion reached S3; its answer, and the record of it, did not come back.
      await server.client.completeMultipartUpload(u.key, await s3UploadIdOf(server, u.uploadId), [{ partNumber: 1, etag }]);
      if (how === 'complete') expect((await client.complete(u, [{ PartNumber: 1, ETag: etag }])).status).toBe(200);
      const head = await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS });
      expect([how, head.headers.get('Upload-Length')]).toEqual([how, '3333']);
      expect(sha256((await server.object(u.key))!)).toBe(sha256(bytes));
      expect(finished.filter((ctx) => ctx.upload.id === u.uploadId).length).toBe(1);
    }
  });

  test('the record outlives the state store: rebuilt from S3 as a direct upload (HEAD, then complete)', async () => {
    const client = api(server);
    const u = await created(await client.create({ filename: 'a.bin', type: 'application/octet-stream' }));
    const s3UploadId = await s3UploadIdOf(server, u.uploadId);
    const bytes = randomBytes(4444);
    const etag = await putPart(server, u, 1, bytes);
    await state.delete(u.uploadId);
    const head = await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS });
    expect([head.status, head.headers.get('Upload-Offset')]).toEqual([200, '4444']);
    expect((await state.get(u.uploadId))?.store).toMatchObject({ direct: '1', uploadId: s3UploadId });
    expect((await client.complete(u, [{ PartNumber: 1, ETag: etag }])).status).toBe(200);
    expect(finished.filter((ctx) => ctx.upload.id === u.uploadId).map((ctx) => ctx.upload.length)).toEqual([4444]);
    expect(sha256((await server.object(u.key))!)).toBe(sha256(bytes));
  });

  test('a completion S3 refuses for its parts (a part under 5 MiB but the last) → 400 with a reason, and the upload stays', async () => {
    const client = api(server);
    const u = await created(await client.create({ filename: 'small.bin' }));
    const etag1 = await putPart(server, u, 1, randomBytes(1000));
    const etag2 = await putPart(server, u, 2, randomBytes(1000));
    const res = await client.complete(u, [
      { PartNumber: 1, ETag: etag1 },
      { PartNumber: 2, ETag: etag2 },
    ]);
    expect([res.status, await res.text()]).toEqual([400, 'the request to the direct-upload API is malformed: S3 refused the parts (EntityTooSmall)\n']);
    expect((await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS })).headers.get('Upload-Offset')).toBe('2000');
  });

  test('DELETE aborts the multipart upload and the record goes; so does a tus DELETE', async () => {
    const client = api(server);
    for (const how of ['companion', 'tus'] as const) {
      const u = await created(await client.create({ filename: 'a.bin', type: 'application/octet-stream' }));
      await putPart(server, u, 1, randomBytes(1000));
      const s3UploadId = await s3UploadIdOf(server, u.uploadId);
      expect(await s3Parts(server, u.key, s3UploadId)).toBe(200);
      const res = how === 'tus' ? await fetch(`${server.endpoint}${u.uploadId}`, { method: 'DELETE', headers: TUS }) : await client.abort(u);
      expect(res.status).toBe(how === 'tus' ? 204 : 200);
      expect(await s3Parts(server, u.key, s3UploadId)).toBe(404);
      expect((await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS })).status).toBe(404);
      expect((await client.sign(u, 1)).status).toBe(404);
    }
  });

  test('progress polling and HEADs reuse a listing for 3 s: one ListParts, not one per request', async () => {
    const client = api(server);
    const u = await created(await client.create({ filename: 'polled.bin' }));
    await putPart(server, u, 1, randomBytes(1234));
    const listed = () => server.client.requests.get('ListParts') ?? 0;
    const before = listed();
    const offsets = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS });
      offsets.push(res.headers.get('Upload-Offset'));
    }
    expect(offsets).toEqual(Array(6).fill('1234'));
    expect(listed() - before).toBe(1);
  });

  test('malformed requests: 400 with a reason, never a 500', async () => {
    const client = api(server);
    const u = await created(await client.create({ filename: 'a.bin' }));
    const cases: [string, Promise<Response>][] = [
      ['no filename', client.create({ type: 'text/plain' })],
      ['not JSON', fetch(`${server.origin}/s3/multipart`, { method: 'POST', headers: JSON_HEADERS, body: '{' })],
      ['too big', fetch(`${server.origin}/s3/multipart`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ filename: 'x'.repeat(100_000) }) })],
      ['part 0', client.sign(u, 0)],
      ['part 10001', client.sign(u, 10_001)],
      ['part abc', client.sign(u, 'abc')],
      ['batch of nothing', client.batch(u, '')],
      ['batch with a bad number', client.batch(u, '1,x')],
      ['no key', fetch(`${server.origin}/s3/multipart/${u.uploadId}/1`)],
      [
        'parts out of order',
        client.complete(u, [
          { PartNumber: 2, ETag: '"a"' },
          { PartNumber: 1, ETag: '"b"' },
        ]),
      ],
      ['no parts', client.complete(u, [])],
      ['a part S3 does not hold', client.complete(u, [{ PartNumber: 1, ETag: '"0123"' }])],
      // Given back in Upload-Metadata headers: tus's rule for names.
      ...['a b', 'a,b', 'a\nb', 'ā', ''].map((name): [string, Promise<Response>] => [
        `metadata name ${JSON.stringify(name)}`,
        client.create({ filename: 'a.bin', metadata: { [name]: 'x' } }),
      ]),
    ];
    for (const [what, pending] of cases) {
      const res = await pending;
      expect([what, res.status]).toEqual([what, 400]);
      expect((await res.text()).length).toBeGreaterThan(10);
    }
  });

  test("an unknown id is 404; a key that is not the upload's, or outside the prefix, is never signed (403)", async () => {
    const client = api(server);
    const u = await created(await client.create({ filename: 'a.bin' }));
    const other = await created(await client.create({ filename: 'b.bin' }));
    expect((await client.sign({ uploadId: '0'.repeat(32), key: u.key }, 1)).status).toBe(404);
    expect((await client.sign({ uploadId: 'nope', key: u.key }, 1)).status).toBe(404);
    for (const key of [other.key, u.uploadId, `other/${u.uploadId}`, `up/${u.uploadId}/../x`]) {
      for (const res of [
        await client.sign({ ...u, key }, 1),
        await client.batch({ ...u, key }, '1'),
        await client.list({ ...u, key }),
        await client.abort({ ...u, key }),
      ]) {
        expect([key, res.status]).toEqual([key, 403]);
      }
    }
  });
});

describe('direct uploads: the guards of tus', () => {
  const servers: S3TestServer[] = [];
  const start = async (options: S3ServerOptions) => {
    const server = await startS3Server({ s3Direct: true, ...options });
    servers.push(server);
    return server;
  };
  afterAll(() => Promise.all(servers.map((s) => s.stop())));

  test('off by default: no /s3 routes', async () => {
    const server = await startS3Server({});
    servers.push(server);
    expect((await api(server).create({ filename: 'a' })).status).toBe(404);
  });

  test("JWT: no token → 401; another user's upload → 403 on every route", async () => {
    const secret = 'direct-secret';
    const token = async (sub: string) => ({ Authorization: `Bearer ${await sign({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, secret, 'HS256')}` });
    const server = await start({ jwtSecret: secret });
    expect((await api(server).create({ filename: 'a.bin' })).status).toBe(401);
    const alice = api(server, await token('alice'));
    const bob = api(server, await token('bob'));
    const u = await created(await alice.create({ filename: 'a.bin' }));
    expect((await api(server).sign(u, 1)).status).toBe(401);
    for (const res of [await bob.sign(u, 1), await bob.batch(u, '1'), await bob.list(u), await bob.complete(u, [{ PartNumber: 1, ETag: '"a"' }]), await bob.abort(u)]) {
      expect(res.status).toBe(403);
    }
    expect((await alice.sign(u, 1)).status).toBe(200);
    expect((await alice.abort(u)).status).toBe(200);
  });

  test('rate limit: the same budget as tus requests → 429', async () => {
    const server = await start({ rateLimit: 3 });
    const client = api(server);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await client.create({ filename: 'a.bin' })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  test('allowed types and extensions → 415; a pre-create hook refuses or chooses the key', async () => {
    const server = await start({
      allowedTypes: ['image/*'],
      allowedExtensions: ['png'],
      hooks: {
        'pre-create': ({ upload }) => {
          if (upload.metadata.filename === 'no.png') return { reject: { status: 403, message: 'not this one' } };
          if (upload.metadata.filename === 'keyed.png') return { key: 'chosen/keyed.png' };
        },
      },
    });
    const client = api(server);
    expect((await client.create({ filename: 'a.png', type: 'text/plain' })).status).toBe(415);
    expect((await client.create({ filename: 'a.txt', type: 'image/png' })).status).toBe(415);
    const refused = await client.create({ filename: 'no.png', type: 'image/png' });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('not this one');
    const u = await created(await client.create({ filename: 'keyed.png', type: 'image/png' }));
    expect(u.key).toBe('chosen/keyed.png');
    const bytes = randomBytes(2000);
    const etag = await putPart(server, u, 1, bytes);
    expect((await client.complete(u, [{ PartNumber: 1, ETag: etag }])).status).toBe(200);
    expect(sha256((await server.object('chosen/keyed.png'))!)).toBe(sha256(bytes));
    // The key is taken now, for tus and direct uploads alike.
    expect((await client.create({ filename: 'keyed.png', type: 'image/png' })).status).toBe(409);
  });

  test('MAX_SIZE: checked at completion from what S3 lists; over it → 413 and the upload is aborted', async () => {
    const server = await start({ maxSize: 6 * MiB });
    const client = api(server);
    const u = await created(await client.create({ filename: 'big.bin' }));
    const s3UploadId = await s3UploadIdOf(server, u.uploadId);
    // 6 MiB fits in two parts of S3's smallest size: a third is not signed.
    const third = await client.batch(u, '1,3');
    expect([third.status, await third.text()]).toEqual([400, 'the request to the direct-upload API is malformed: part 3: at most 2 parts fit in MAX_SIZE\n']);
    const etag1 = await putPart(server, u, 1, randomBytes(5 * MiB));
    const etag2 = await putPart(server, u, 2, randomBytes(2 * MiB));
    const res = await client.complete(u, [
      { PartNumber: 1, ETag: etag1 },
      { PartNumber: 2, ETag: etag2 },
    ]);
    expect(res.status).toBe(413);
    expect(await res.text()).toContain('larger than the server accepts');
    expect(await s3Parts(server, u.key, s3UploadId)).toBe(404);
    expect(await server.object(u.key)).toBeUndefined();
    expect((await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS })).status).toBe(404);
  });

  test('MAX_SIZE: the cleanup removes an unfinished upload whose parts S3 holds pass it, and leaves one within it', async () => {
    const server = await start({ maxSize: 6 * MiB });
    const client = api(server);
    const over = await created(await client.create({ filename: 'over.bin' }));
    const within = await created(await client.create({ filename: 'within.bin' }));
    const overId = await s3UploadIdOf(server, over.uploadId);
    await putPart(server, over, 1, randomBytes(5 * MiB));
    await putPart(server, over, 2, randomBytes(2 * MiB));
    await putPart(server, within, 1, randomBytes(MiB));
    expect(await server.tusflow.engine.cleanup()).toBe(1);
    expect(await s3Parts(server, over.key, overId)).toBe(404);
    expect((await fetch(`${server.endpoint}${over.uploadId}`, { method: 'HEAD', headers: TUS })).status).toBe(404);
    expect((await fetch(`${server.endpoint}${within.uploadId}`, { method: 'HEAD', headers: TUS })).headers.get('Upload-Offset')).toBe(String(MiB));
  });

  test('an abandoned upload expires: the cleanup aborts it in S3 (but finishes one S3 completed)', async () => {
    const server = await start({ uploadTtlSeconds: 1 });
    const u = await created(await api(server).create({ filename: 'a.bin' }));
    await putPart(server, u, 1, randomBytes(1000));
    const s3UploadId = await s3UploadIdOf(server, u.uploadId);
    // Completed in S3 by a completion whose answer and record were lost, then nobody looked.
    const done = await created(await api(server).create({ filename: 'done.bin' }));
    const bytes = randomBytes(2000);
    const etag = await putPart(server, done, 1, bytes);
    await server.client.completeMultipartUpload(done.key, await s3UploadIdOf(server, done.uploadId), [{ partNumber: 1, etag }]);
    await Bun.sleep(1200);
    expect((await fetch(`${server.endpoint}${u.uploadId}`, { method: 'HEAD', headers: TUS })).status).toBe(410);
    expect(await server.tusflow.engine.cleanup()).toBe(1);
    expect(await s3Parts(server, u.key, s3UploadId)).toBe(404);
    const head = await fetch(`${server.endpoint}${done.uploadId}`, { method: 'HEAD', headers: TUS });
    expect([head.status, head.headers.get('Upload-Length')]).toEqual([200, '2000']);
    expect(sha256((await server.object(done.key))!)).toBe(sha256(bytes));
  });
});

describe('direct uploads in one form POST (/s3/params)', () => {
  const servers: S3TestServer[] = [];
  afterAll(() => Promise.all(servers.map((s) => s.stop())));

  interface Params {
    method: string;
    url: string;
    fields: Record<string, string>;
    uploadId: string;
    key: string;
  }
  /**
   * A server of its own for each test (nothing carries over), whose uploads expire after 4 s, so a
   * POST policy lasts 2 s (half of that).
   */
  const start = async (options: Partial<S3ServerOptions> = {}) => {
    const finished: string[] = [];
    const state = new MemoryStateStore();
    const server = await startS3Server({
      s3Direct: true,
      prefix: 'one/',
      maxSize: 4000,
      uploadTtlSeconds: 4,
      allowedTypes: ['text/*'],
      state,
      hooks: { 'post-finish': ({ upload }) => void finished.push(`${upload.id}:${upload.length}`) },
      ...options,
    });
    servers.push(server);
    const params = async (query: string) => {
      const res = await fetch(`${server.origin}/s3/params?${query}`);
      expect(res.status).toBe(200);
      return { ...((await res.json()) as Params), at: Date.now() };
    };
    const head = (id: string) => fetch(`${server.endpoint}${id}`, { method: 'HEAD', headers: TUS });
    return { server, finished, state, params, head };
  };
  /** The form POST a browser sends (Uppy's AwsS3 plugin: the fields as given, then the file). */
  const post = (p: Params, bytes: Uint8Array<ArrayBuffer>, change: Record<string, string> = {}) => {
    const form = new FormData();
    for (const [name, value] of Object.entries({ ...p.fields, ...change })) form.append(name, value);
    form.append('file', new Blob([bytes]));
    return fetch(p.url, { method: p.method, body: form });
  };
  /** Waits until the POST policy signed at `at` has expired (2 s, and some slack). */
  const policyExpired = (p: { at: number }) => Bun.sleep(Math.max(0, p.at + 2300 - Date.now()));

  test('sent straight to S3; finished (length, hooks) once its policy expired, so a later POST cannot replace the bytes', async () => {
    const { server, finished, params, head } = await start();
    const p = await params('filename=note.txt&type=text%2Fplain&metadata%5Bname%5D=note.txt');
    expect(p.method).toBe('POST');
    expect(p.key).toBe(`one/${p.uploadId}`);
    expect(p.fields.key).toBe(p.key);
    // Not sent yet: an upload of unknown length at 0.
    expect((await head(p.uploadId)).headers.get('Upload-Offset')).toBe('0');
    expect((await post(p, randomBytes(3000))).status).toBe(204);
    // While the policy lasts S3 takes another POST: not finished yet.
    const early = await head(p.uploadId);
    expect([early.status, early.headers.get('Upload-Length')]).toEqual([200, null]);
    const bytes = randomBytes(2500);
    expect((await post(p, bytes)).status).toBe(204);
    expect(finished).toEqual([]);
    await policyExpired(p);
    // Expired: S3 refuses the POST, the record is finished with the bytes stored, hooks once.
    expect((await post(p, randomBytes(100))).status).toBe(403);
    const after = await head(p.uploadId);
    expect([after.headers.get('Upload-Offset'), after.headers.get('Upload-Length')]).toEqual(['2500', '2500']);
    expect(finished).toEqual([`${p.uploadId}:2500`]);
    expect(sha256(new Uint8Array(await (await fetch(`${server.endpoint}${p.uploadId}`)).arrayBuffer()))).toBe(sha256(bytes));
    expect(sha256((await server.object(p.key))!)).toBe(sha256(bytes));
  });

  test('the policy fixes the object headers a tus upload gets: stored with them, a POST that changes one refused', async () => {
    const { server, params } = await start({ hooks: { 'pre-create': () => ({ object: { cacheControl: 'max-age=60', metadata: { team: 'blue' } } }) } });
    const p = await params('filename=page.html&type=text%2Fhtml');
    // A scriptable type is never served inline from the bucket.
    expect(p.fields['Content-Type']).toBe('text/html');
    expect(p.fields['Content-Disposition']).toStartWith('attachment; filename="page.html"');
    // The hook's object settings.
    expect([p.fields['Cache-Control'], p.fields['x-amz-meta-team']]).toEqual(['max-age=60', 'blue']);
    expect((await post(p, randomBytes(10), { 'x-amz-meta-team': 'red' })).status).toBe(403);
    expect((await post(p, randomBytes(10), { 'Content-Disposition': 'inline' })).status).toBe(403);
    expect((await post(p, randomBytes(10), { 'Content-Type': 'text/plain' })).status).toBe(403);
    expect(await server.object(p.key)).toBeUndefined();
    expect((await post(p, randomBytes(10))).status).toBe(204);
    const stored = await server.client.headObject(p.key);
    // radosgw 16 keeps the type but not a form's Content-Disposition (AWS S3 keeps both); the policy checks both.
    expect([stored?.headers.get('Content-Type'), stored?.headers.get('x-amz-meta-team')]).toEqual(['text/html', 'blue']);
  });

  test('S3 refuses what the policy does not allow: more than MAX_SIZE, another type, another key', async () => {
    const { server, params, head } = await start();
    const p = await params('filename=a.txt&type=text%2Fplain');
    expect((await post(p, randomBytes(4001))).status).toBe(400);
    expect((await post(p, randomBytes(10), { 'Content-Type': 'text/html' })).status).toBe(403);
    expect((await post(p, randomBytes(10), { key: 'one/elsewhere' })).status).toBe(403);
    expect(await server.object(p.key)).toBeUndefined();
    expect(await server.object('one/elsewhere')).toBeUndefined();
    expect((await head(p.uploadId)).headers.get('Upload-Offset')).toBe('0');
  });

  test('the same refusals as creation: a type not allowed → 415, no filename → 400; the multipart routes → 404', async () => {
    const { server, params } = await start();
    expect((await fetch(`${server.origin}/s3/params?filename=a.png&type=image%2Fpng`)).status).toBe(415);
    expect((await fetch(`${server.origin}/s3/params?type=text%2Fplain`)).status).toBe(400);
    const p = await params('filename=a.txt&type=text%2Fplain');
    const client = api(server);
    for (const res of [await client.sign(p, 1), await client.batch(p, '1,2'), await client.list(p), await client.complete(p, [{ PartNumber: 1, ETag: '"a"' }])]) {
      expect([res.status, (await res.text()).includes('form POST')]).toEqual([404, true]);
    }
  });

  test('DELETE while the policy lasts: the record and key stay until it expires, and the sweep removes what one more POST stored', async () => {
    const { server, state, params, head } = await start({
      hooks: { 'pre-create': ({ upload }) => (upload.metadata.filename === 'keyed.txt' ? { key: 'chosen/keyed.txt' } : undefined) },
    });
    const p = await params('filename=keyed.txt&type=text%2Fplain');
    expect(p.key).toBe('one/chosen/keyed.txt');
    expect((await post(p, randomBytes(50))).status).toBe(204);
    expect((await fetch(`${server.endpoint}${p.uploadId}`, { method: 'DELETE', headers: TUS })).status).toBe(204);
    expect(await server.object(p.key)).toBeUndefined();
    expect((await head(p.uploadId)).status).toBe(404);
    // The key is not another upload's yet: this POST would overwrite its bytes.
    expect((await fetch(`${server.origin}/s3/params?filename=keyed.txt&type=text%2Fplain`)).status).toBe(409);
    expect((await post(p, randomBytes(60))).status).toBe(204);
    expect(await server.object(p.key)).toBeDefined();
    await policyExpired(p);
    expect((await post(p, randomBytes(70))).status).toBe(403);
    expect(await server.tusflow.engine.cleanup()).toBe(1);
    expect(await server.object(p.key)).toBeUndefined();
    expect(await state.get(p.uploadId)).toBeUndefined();
    expect((await fetch(`${server.origin}/s3/params?filename=keyed.txt&type=text%2Fplain`)).status).toBe(200);
  });

  test('a record the state store lost is rebuilt unfinished from its .info: the finish hooks run when it is next looked at', async () => {
    const { server, finished, state, params, head } = await start();
    const p = await params('filename=lost.txt&type=text%2Fplain');
    const bytes = randomBytes(777);
    expect((await post(p, bytes)).status).toBe(204);
    await state.delete(p.uploadId);
    await policyExpired(p);
    const after = await head(p.uploadId);
    expect([after.status, after.headers.get('Upload-Length')]).toEqual([200, '777']);
    expect(finished).toEqual([`${p.uploadId}:777`]);
    expect(sha256((await server.object(p.key))!)).toBe(sha256(bytes));
  });

  test('expiry: the sweep finishes one that was stored unseen, and removes one never sent and one S3 refused', async () => {
    const { server, finished, params, head } = await start();
    const stored = await params('filename=b.txt&type=text%2Fplain');
    const never = await params('filename=c.txt&type=text%2Fplain');
    const refused = await params('filename=d.txt&type=text%2Fplain');
    const bytes = randomBytes(100);
    expect((await post(stored, bytes)).status).toBe(204);
    expect((await post(refused, randomBytes(4001))).status).toBe(400);
    await Bun.sleep(Math.max(0, stored.at + 4200 - Date.now()));
    expect(await server.tusflow.engine.cleanup()).toBe(2);
    expect((await head(refused.uploadId)).status).toBe(404);
    expect((await head(never.uploadId)).status).toBe(404);
    expect(finished).toEqual([`${stored.uploadId}:100`]);
    expect((await head(stored.uploadId)).headers.get('Upload-Length')).toBe('100');
    expect(sha256((await server.object(stored.key))!)).toBe(sha256(bytes));
  });
});

test('webhooks (HOOKS_URL): pre-create, post-create, pre-finish and post-finish of a direct upload, with its length', async () => {
  const events: HookEvent[] = [];
  const receiver = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      events.push((await request.json()) as HookEvent);
      return new Response(null, { status: 204 });
    },
  });
  const server = await startS3Server({ s3Direct: true, hooksUrl: `http://127.0.0.1:${receiver.port}/hooks`, hooksSecret: 'direct-hooks' });
  try {
    const client = api(server);
    const u = await created(await client.create({ filename: 'hooked.bin', type: 'application/octet-stream' }));
    const etag = await putPart(server, u, 1, randomBytes(4321));
    expect((await client.complete(u, [{ PartNumber: 1, ETag: etag }])).status).toBe(200);
    for (let i = 0; i < 100 && !events.some((e) => e.type === 'post-finish'); i++) await Bun.sleep(20);
    const mine = events.filter((e) => e.upload.id === u.uploadId || e.type === 'pre-create');
    expect(mine.map((e) => e.type)).toEqual(['pre-create', 'post-create', 'pre-finish', 'post-finish']);
    expect(mine.at(-1)!.upload.length).toBe(4321);
    expect(mine[0]!.upload.metadata.filename).toBe('hooked.bin');
  } finally {
    await server.stop();
    await receiver.stop(true);
  }
});

test('configuration: S3_DIRECT needs S3_BUCKET; s3Direct needs a store that signs (refused at start, not per request)', async () => {
  const { ConfigError, parseEnv } = await import('../../src/wiring/config.ts');
  const { createTusflow } = await import('../../src/index.ts');
  expect(() => parseEnv({ S3_DIRECT: 'true' })).toThrow(ConfigError);
  expect(() => parseEnv({ S3_DIRECT: 'true' })).toThrow('S3_DIRECT=true needs S3_BUCKET');
  expect(() => parseEnv({ S3_DIRECT: 'maybe' })).toThrow('S3_DIRECT');
  expect(parseEnv({ S3_DIRECT: 'true', S3_BUCKET: 'bucket' }).S3_DIRECT).toBe(true);
  expect(() => createTusflow({ s3Direct: true })).toThrow('s3Direct needs a data store that signs direct uploads');
});
