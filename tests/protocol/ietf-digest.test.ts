import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AwsClient } from 'aws4fetch';
import type { HookEvent } from '../../src/index.ts';
import { restoreHash } from '../../src/model/digest.ts';
import type { Upload } from '../../src/model/upload.ts';
import { MemoryStateStore } from '../../src/state/memory.ts';
import { spawnServer, type ServerProcess } from '../support/process.ts';
import { rawRequestTo } from '../support/raw-http.ts';
import { startS3, type S3Env } from '../support/s3.ts';
import { startS3Server } from '../support/s3-server.ts';
import { randomBytes, startServer, TUS, type TestServer } from '../support/server.ts';
import { STATE_KINDS } from '../support/state-stores.ts';

const V = { 'Upload-Draft-Interop-Version': '8' };
const APPEND = { ...V, 'Content-Type': 'application/partial-upload' };
const b64 = (algorithm: 'sha256' | 'sha512', bytes: Uint8Array) => createHash(algorithm).update(bytes).digest('base64');
const field = (algorithm: 'sha256' | 'sha512', bytes: Uint8Array) => `${algorithm.replace('sha', 'sha-')}=:${b64(algorithm, bytes)}:`;

const finished: HookEvent[] = [];
let server: TestServer;
beforeAll(async () => {
  server = await startServer({ hooks: { 'post-finish': (event) => void finished.push(event) } });
});
afterAll(() => server.stop());

const create = (headers: Record<string, string>, body?: Uint8Array<ArrayBuffer>) => fetch(server.endpoint, { method: 'POST', headers: { ...V, ...headers }, body });
const append = (url: string, offset: number, complete: boolean, body: Uint8Array<ArrayBuffer>, extra: Record<string, string> = {}) =>
  fetch(url, { method: 'PATCH', headers: { ...APPEND, 'Upload-Offset': String(offset), 'Upload-Complete': complete ? '?1' : '?0', ...extra }, body });
const record = async (url: string): Promise<Upload> => JSON.parse(await readFile(join(server.dataDir, `${url.split('/').pop()}.json`), 'utf8'));
const stateCovers = (upload: Upload) => {
  const running = restoreHash(upload.digest!.algorithm, upload.digest!.state!);
  return running?.hashed;
};

describe('Repr-Digest of the whole upload (RFC 9530), interop version 8', () => {
  test('sent at creation, checked at completion across three appends; the record holds the running state at exactly the offset', async () => {
    const bytes = randomBytes(300_001);
    const res = await create({ 'Upload-Complete': '?0', 'Repr-Digest': field('sha256', bytes) });
    expect(res.status).toBe(201);
    const url = res.headers.get('Location')!;
    const first = await append(url, 0, false, bytes.subarray(0, 100_000));
    // No partial Repr-Digest for a client that sent the whole one.
    expect([first.status, first.headers.get('Repr-Digest')]).toEqual([204, null]);
    const middle = await record(url);
    expect([middle.offset, stateCovers(middle)]).toEqual([100_000, 100_000]);
    // The state, restored and fed the rest, gives the digest of the whole.
    const resumed = restoreHash('sha-256', middle.digest!.state!)!;
    resumed.update(bytes.subarray(100_000));
    expect(Buffer.from(resumed.digest()).toString('base64')).toBe(b64('sha256', bytes));
    expect((await append(url, 100_000, false, bytes.subarray(100_000, 200_037))).status).toBe(204);
    expect(stateCovers(await record(url))).toBe(200_037);
    const last = await append(url, 200_037, true, bytes.subarray(200_037));
    expect([last.status, last.headers.get('Upload-Complete'), last.headers.get('Repr-Digest')]).toEqual([204, '?1', field('sha256', bytes)]);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
    const done = await record(url);
    expect(done.digest).toEqual({ algorithm: 'sha-256', expected: b64('sha256', bytes), value: b64('sha256', bytes) });
  });

  test('a mismatch at completion: 400, the last append is not stored, the upload stays incomplete and no post-finish runs', async () => {
    const bytes = randomBytes(70_000);
    const other = randomBytes(70_000);
    const url = (await create({ 'Upload-Complete': '?0', 'Repr-Digest': field('sha512', other) })).headers.get('Location')!;
    expect((await append(url, 0, false, bytes.subarray(0, 40_000))).status).toBe(204);
    const res = await append(url, 40_000, true, bytes.subarray(40_000));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Repr-Digest');
    const head = await fetch(url, { method: 'HEAD', headers: V });
    expect([head.headers.get('Upload-Offset'), head.headers.get('Upload-Complete')]).toEqual(['40000', '?0']);
    expect(stateCovers(await record(url))).toBe(40_000);
    expect((await fetch(url)).status).not.toBe(200);
    expect(finished.some((e) => url.endsWith(e.upload.id))).toBe(false);
    // Nor does the end of the bytes the digest is of: the first 40 000 stored are not theirs.
    expect((await append(url, 40_000, true, other.subarray(40_000))).status).toBe(400);
  });

  test('Repr-Digest on the first append, then again (the same) on the last: accepted; a different one refused', async () => {
    const bytes = randomBytes(5000);
    const url = (await create({ 'Upload-Complete': '?0' })).headers.get('Location')!;
    expect((await append(url, 0, false, bytes.subarray(0, 10), { 'Repr-Digest': field('sha256', bytes) })).status).toBe(204);
    const differs = await append(url, 10, true, bytes.subarray(10), { 'Repr-Digest': field('sha256', randomBytes(5)) });
    expect([differs.status, (await record(url)).offset]).toEqual([400, 10]);
    const ok = await append(url, 10, true, bytes.subarray(10), { 'Repr-Digest': field('sha256', bytes) });
    expect([ok.status, ok.headers.get('Repr-Digest')]).toEqual([204, field('sha256', bytes)]);
  });

  test('Repr-Digest after the first bytes of an upload that had none: 400 (what came before was not hashed)', async () => {
    const url = (await create({ 'Upload-Complete': '?0' }, new Uint8Array([1, 2, 3]))).headers.get('Location')!;
    const res = await append(url, 3, true, new Uint8Array([4]), { 'Repr-Digest': field('sha256', new Uint8Array([1, 2, 3, 4])) });
    expect(res.status).toBe(400);
    expect((await fetch(url, { method: 'HEAD', headers: V })).headers.get('Upload-Offset')).toBe('3');
  });

  test('malformed Repr-Digest → 400 naming the field; only unsupported algorithms → ignored', async () => {
    for (const bad of ['sha-256=abc', 'sha-256=:AAAA:', 'sha-256']) {
      const res = await create({ 'Upload-Complete': '?1', 'Repr-Digest': bad }, new Uint8Array([1]));
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('Repr-Digest');
    }
    const ignored = await create({ 'Upload-Complete': '?1', 'Repr-Digest': 'md5=:AAAAAAAAAAAAAAAAAAAAAA==:' }, new Uint8Array([1]));
    expect([ignored.status, ignored.headers.get('Repr-Digest')]).toEqual([201, null]);
  });

  test('whole upload in the creation request, and an empty one: checked, and answered with Repr-Digest', async () => {
    const bytes = randomBytes(1234);
    const whole = await create({ 'Upload-Complete': '?1', 'Repr-Digest': field('sha256', bytes) }, bytes);
    expect([whole.status, whole.headers.get('Repr-Digest')]).toEqual([201, field('sha256', bytes)]);
    const wrong = await create({ 'Upload-Complete': '?1', 'Repr-Digest': field('sha256', randomBytes(3)) }, bytes);
    expect(wrong.status).toBe(400);
    const wrongUrl = wrong.headers.get('Location')!;
    expect((await fetch(wrongUrl, { method: 'HEAD', headers: V })).headers.get('Upload-Offset')).toBe('0');
    const empty = await create({ 'Upload-Complete': '?1', 'Content-Length': '0', 'Repr-Digest': field('sha256', new Uint8Array()) });
    expect([empty.status, empty.headers.get('Repr-Digest')]).toEqual([201, field('sha256', new Uint8Array())]);
    expect((await create({ 'Upload-Complete': '?1', 'Content-Length': '0', 'Repr-Digest': field('sha256', bytes) })).status).toBe(400);
  });

  test('Want-Repr-Digest: sha-512 of what arrived so far on each creation and append, of the whole at completion', async () => {
    const bytes = randomBytes(9000);
    const created = await create({ 'Upload-Complete': '?0', 'Want-Repr-Digest': 'sha-256=2, sha-512=9' }, bytes.subarray(0, 4000));
    expect(created.headers.get('Repr-Digest')).toBe(field('sha512', bytes.subarray(0, 4000)));
    const url = created.headers.get('Location')!;
    const middle = await append(url, 4000, false, bytes.subarray(4000, 6000));
    expect(middle.headers.get('Repr-Digest')).toBe(field('sha512', bytes.subarray(0, 6000)));
    // HEAD says nothing of an incomplete upload's digest (the draft names creation and append responses).
    expect((await fetch(url, { method: 'HEAD', headers: V })).headers.get('Repr-Digest')).toBeNull();
    const res = await append(url, 6000, true, bytes.subarray(6000));
    expect(res.headers.get('Repr-Digest')).toBe(field('sha512', bytes));
    const head = await fetch(url, { method: 'HEAD', headers: V });
    expect(head.headers.get('Repr-Digest')).toBe(field('sha512', bytes));
  });

  test('Want-Repr-Digest on an append never fails it: past the first bytes of an upload without a digest none is given; another algorithm gets the running one', async () => {
    const bytes = randomBytes(3000);
    const plain = (await create({ 'Upload-Complete': '?0' }, bytes.subarray(0, 1000))).headers.get('Location')!;
    const later = await append(plain, 1000, true, bytes.subarray(1000), { 'Want-Repr-Digest': 'sha-256=1' });
    expect([later.status, later.headers.get('Repr-Digest')]).toEqual([204, null]);
    expect(Buffer.from(await (await fetch(plain)).arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
    const hashed = (await create({ 'Upload-Complete': '?0', 'Want-Repr-Digest': 'sha-512=1' }, bytes.subarray(0, 1000))).headers.get('Location')!;
    const other = await append(hashed, 1000, false, bytes.subarray(1000, 2000), { 'Want-Repr-Digest': 'sha-256=1' });
    expect([other.status, other.headers.get('Repr-Digest')]).toEqual([204, field('sha512', bytes.subarray(0, 2000))]);
    const last = await append(hashed, 2000, true, bytes.subarray(2000), { 'Want-Repr-Digest': 'sha-256=1' });
    expect([last.status, last.headers.get('Repr-Digest')]).toEqual([204, field('sha512', bytes)]);
  });

  test('a body cut mid-append keeps what arrived, with a state covering exactly that; the upload then completes with its digest', async () => {
    const bytes = randomBytes(200_000);
    const url = (await create({ 'Upload-Complete': '?0', 'Repr-Digest': field('sha256', bytes) })).headers.get('Location')!;
    // Content-Length says 200 000, only 120 000 are sent, and the client goes away (the socket closes at the time-out).
    const cut = await rawRequestTo(
      url,
      {
        method: 'PATCH',
        headers: Object.entries({ ...APPEND, 'Upload-Offset': '0', 'Upload-Complete': '?1' }),
        body: bytes.subarray(0, 120_000),
        contentLength: 200_000,
      },
      1500,
    );
    expect(cut.kind).toBe('timeout');
    let offset = 0;
    for (let i = 0; i < 50 && offset === 0; i++) {
      await Bun.sleep(100);
      offset = Number((await fetch(url, { method: 'HEAD', headers: V })).headers.get('Upload-Offset'));
    }
    expect(offset).toBeGreaterThan(0);
    const upload = await record(url);
    expect(stateCovers(upload)).toBe(upload.offset);
    const res = await append(url, upload.offset, true, bytes.subarray(upload.offset));
    expect([res.status, res.headers.get('Repr-Digest')]).toEqual([204, field('sha256', bytes)]);
  });
});

describe('tus: Want-Repr-Digest at creation', () => {
  test('the digest is computed across PATCHes and given to the post-finish hook', async () => {
    const bytes = randomBytes(150_000);
    const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length), 'Want-Repr-Digest': 'sha-256=1' } });
    const url = res.headers.get('Location')!;
    const patch = (offset: number, part: Uint8Array<ArrayBuffer>) =>
      fetch(url, { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) }, body: part });
    expect((await patch(0, bytes.subarray(0, 70_000))).status).toBe(204);
    expect((await patch(70_000, bytes.subarray(70_000))).status).toBe(204);
    for (let i = 0; i < 50 && !finished.some((e) => url.endsWith(e.upload.id)); i++) await Bun.sleep(20);
    const event = finished.find((e) => url.endsWith(e.upload.id))!;
    expect(event.upload.digest).toEqual({ algorithm: 'sha-256', value: b64('sha256', bytes) });
  });
});

describe('tus: Repr-Digest at creation', () => {
  const tusCreate = (length: number, digest: string) =>
    fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), 'Repr-Digest': digest } });
  const tusPatch = (url: string, offset: number, part: Uint8Array<ArrayBuffer>) =>
    fetch(url, { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) }, body: part });

  test('checked on the PATCH that completes: a mismatch is a 400 that stores nothing of it; the right bytes complete it', async () => {
    const bytes = randomBytes(90_000);
    const url = (await tusCreate(bytes.length, field('sha256', bytes))).headers.get('Location')!;
    expect((await tusPatch(url, 0, bytes.subarray(0, 50_000))).status).toBe(204);
    const wrong = bytes.slice(50_000);
    wrong[0]! ^= 1;
    const refused = await tusPatch(url, 50_000, wrong);
    expect([refused.status, await refused.text()]).toEqual([400, 'the upload does not match its Repr-Digest, so it is not complete\n']);
    expect((await fetch(url, { method: 'HEAD', headers: TUS })).headers.get('Upload-Offset')).toBe('50000');
    expect((await tusPatch(url, 50_000, bytes.subarray(50_000))).status).toBe(204);
    for (let i = 0; i < 50 && !finished.some((e) => url.endsWith(e.upload.id)); i++) await Bun.sleep(20);
    expect(finished.find((e) => url.endsWith(e.upload.id))?.upload.digest).toEqual({ algorithm: 'sha-256', expected: b64('sha256', bytes), value: b64('sha256', bytes) });
  });
});

describe('the uploadDigest option', () => {
  test('every upload gets the digest computed, a request asking for another one still gets its own', async () => {
    const events: HookEvent[] = [];
    const own = await startServer({ uploadDigest: 'sha-512', hooks: { 'post-finish': (event) => void events.push(event) } });
    try {
      const bytes = randomBytes(3000);
      const plain = await fetch(own.endpoint, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '3000', 'Content-Type': 'application/offset+octet-stream' },
        body: bytes,
      });
      const ietf = await fetch(own.endpoint, { method: 'POST', headers: { ...V, 'Upload-Complete': '?1', 'Want-Repr-Digest': 'sha-256=1' }, body: bytes });
      expect(ietf.headers.get('Repr-Digest')).toBe(field('sha256', bytes));
      for (let i = 0; i < 50 && events.length < 2; i++) await Bun.sleep(20);
      const of = (res: Response) => events.find((e) => res.headers.get('Location')!.endsWith(e.upload.id))?.upload.digest;
      expect(of(plain)).toEqual({ algorithm: 'sha-512', value: b64('sha512', bytes) });
      expect(of(ietf)).toEqual({ algorithm: 'sha-256', value: b64('sha256', bytes) });
    } finally {
      await own.stop();
    }
  });
});

describe('across instances: Redis state, one bucket', () => {
  let s3: S3Env;
  let bucket: string;
  const servers: ServerProcess[] = [];
  beforeAll(async () => {
    s3 = await startS3();
    const kind = STATE_KINDS.find((k) => k.name === 'redis')!;
    const env = {
      ...(await kind.env()),
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: (bucket = await s3.newBucket()),
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
      DATA_DIR: `/tmp/tusflow-digest-${process.pid}`,
    };
    servers.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.kill()));
  });

  test('started on A, continued on B, completed on A: the running hash travels in the record; a wrong digest is refused on B', async () => {
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const on = (s: ServerProcess, url: string) => `${s.endpoint}${url.split('/').pop()}`;
    const bytes = randomBytes(6 * 1024 * 1024 + 11);
    const digest = field('sha512', bytes);
    const url = (await fetch(a.endpoint, { method: 'POST', headers: { ...V, 'Upload-Complete': '?0', 'Repr-Digest': digest } })).headers.get('Location')!;
    const put = (s: ServerProcess, from: number, to: number, complete: boolean) =>
      fetch(on(s, url), {
        method: 'PATCH',
        headers: { ...APPEND, 'Upload-Offset': String(from), 'Upload-Complete': complete ? '?1' : '?0' },
        body: bytes.subarray(from, to),
      });
    expect((await put(a, 0, 5 * 1024 * 1024 + 1, false)).status).toBe(204);
    expect((await put(b, 5 * 1024 * 1024 + 1, 6 * 1024 * 1024, false)).status).toBe(204);
    const done = await put(a, 6 * 1024 * 1024, bytes.length, true);
    expect([done.status, done.headers.get('Repr-Digest')]).toEqual([204, digest]);
    const stored = new Uint8Array(await (await fetch(on(b, url))).arrayBuffer());
    expect(b64('sha512', stored)).toBe(b64('sha512', bytes));
    // The digest the client sent is the object's metadata (set when its multipart upload started).
    const raw = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: 's3', retries: 0 });
    const object = await raw.fetch(`${s3.endpoint}/${bucket}/${url.split('/').pop()}`, { method: 'HEAD' });
    expect(object.headers.get('x-amz-meta-sha512')).toBe(createHash('sha512').update(bytes).digest('hex'));

    const wrong = (await fetch(b.endpoint, { method: 'POST', headers: { ...V, 'Upload-Complete': '?0', 'Repr-Digest': field('sha256', randomBytes(4)) } })).headers.get(
      'Location',
    )!;
    const first = await fetch(on(b, wrong), { method: 'PATCH', headers: { ...APPEND, 'Upload-Offset': '0', 'Upload-Complete': '?0' }, body: bytes.subarray(0, 1000) });
    expect(first.status).toBe(204);
    const last = await fetch(on(a, wrong), {
      method: 'PATCH',
      headers: { ...APPEND, 'Upload-Offset': '1000', 'Upload-Complete': '?1' },
      body: bytes.subarray(1000, 2000),
    });
    expect(last.status).toBe(400);
    expect((await fetch(on(b, wrong), { method: 'HEAD', headers: V })).headers.get('Upload-Offset')).toBe('1000');
  }, 60_000);
});

test('a record rebuilt from S3 keeps the digest to check but not its running state: appends go on, the completing one is refused, not left unchecked', async () => {
  const state = new MemoryStateStore();
  const server = await startS3Server({ state });
  try {
    const bytes = randomBytes(20_000);
    const url = (await fetch(server.endpoint, { method: 'POST', headers: { ...V, 'Upload-Complete': '?0', 'Repr-Digest': field('sha256', bytes) } })).headers.get(
      'Location',
    )!;
    const patch = (offset: number, part: Uint8Array<ArrayBuffer>, complete: boolean) =>
      fetch(url, { method: 'PATCH', headers: { ...APPEND, 'Upload-Offset': String(offset), 'Upload-Complete': complete ? '?1' : '?0' }, body: part });
    expect((await patch(0, bytes.subarray(0, 10_000), false)).status).toBe(204);
    await state.delete(url.split('/').pop()!); // the state store lost the record
    const head = await fetch(url, { method: 'HEAD', headers: V });
    expect(head.headers.get('Upload-Offset')).toBe('10000');
    // Appends that do not complete it go on; the one that would is refused and stores nothing.
    expect((await patch(10_000, bytes.subarray(10_000, 15_000), false)).status).toBe(204);
    const last = await patch(15_000, bytes.subarray(15_000), true);
    expect(last.status).toBe(400);
    expect(await last.text()).toContain('not known');
    expect((await fetch(url, { method: 'HEAD', headers: V })).headers.get('Upload-Offset')).toBe('15000');
    expect(await server.object(url.split('/').pop()!)).toBeUndefined();
  } finally {
    await server.stop();
  }
}, 60_000);
