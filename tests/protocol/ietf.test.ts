import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes, sha256, startServer, type TestServer } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

const MiB = 1024 * 1024;
let server: TestServer;
beforeAll(async () => {
  server = await startServer({ maxSize: 1024 * MiB });
});
afterAll(() => server.stop());

const download = async (url: string) => sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()));

describe('tus-js-client on the IETF draft', () => {
  for (const protocol of ['ietf-draft-03', 'ietf-draft-05']) {
    test(`${protocol}: 20 MiB uploaded, interrupted, resumed, byte-identical`, async () => {
      const bytes = randomBytes(20 * MiB);
      const first = await tusUpload(server.endpoint, bytes, { protocol, chunkSize: 2 * MiB, abortWhen: (n) => n >= 7 * MiB });
      expect(first.aborted).toBe(true);
      await tusUpload(server.endpoint, bytes, { protocol, chunkSize: 3 * MiB, uploadUrl: first.url });
      expect(await download(first.url)).toBe(sha256(bytes));
    });

    test(`${protocol}: data sent with the creation request`, async () => {
      const bytes = randomBytes(3 * MiB + 1);
      const { url } = await tusUpload(server.endpoint, bytes, { protocol, uploadDataDuringCreation: true, chunkSize: 2 * MiB });
      expect(await download(url)).toBe(sha256(bytes));
    });
  }
});

for (const version of [5, 6, 7, 8]) {
  describe(`interop version ${version}, request by request`, () => {
    const V = { 'Upload-Draft-Interop-Version': String(version) };
    const appendType: Record<string, string> = version >= 6 ? { 'Content-Type': 'application/partial-upload' } : {};
    const create = (headers: Record<string, string>, body?: BodyInit) => fetch(server.endpoint, { method: 'POST', headers: { ...V, ...headers }, body });
    const append = (url: string, offset: number, complete: boolean, body: BodyInit, extra: Record<string, string> = {}) =>
      fetch(url, { method: 'PATCH', headers: { ...V, ...appendType, 'Upload-Offset': String(offset), 'Upload-Complete': complete ? '?1' : '?0', ...extra }, body });

    test('creation without data: 201, Location, Upload-Offset 0, Upload-Complete ?0; no Tus-Resumable needed', async () => {
      const res = await create({ 'Upload-Complete': '?0' });
      expect(res.status).toBe(201);
      expect(res.headers.get('Location')).toStartWith(server.endpoint);
      expect(res.headers.get('Upload-Offset')).toBe('0');
      expect(res.headers.get('Upload-Complete')).toBe('?0');
      expect(res.headers.get('Upload-Draft-Interop-Version')).toBe(String(version));
      if (version >= 6) expect(res.headers.get('Upload-Limit')).toContain(`max-size=${1024 * MiB}`);
      else expect(res.headers.get('Upload-Limit')).toBeNull();
    });

    test('creation with the whole upload (?1): complete at once, length from Content-Length', async () => {
      const res = await create({ 'Upload-Complete': '?1', 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename="a.txt"' }, 'whole thing');
      expect(res.status).toBe(201);
      expect([res.headers.get('Upload-Offset'), res.headers.get('Upload-Complete')]).toEqual(['11', '?1']);
      const get = await fetch(res.headers.get('Location')!);
      expect(await get.text()).toBe('whole thing');
      expect(get.headers.get('Content-Type')).toBe('text/plain');
      expect(get.headers.get('Content-Disposition')).toContain('a.txt');
    });

    test('offset retrieval: HEAD → 204 with Upload-Offset, Upload-Complete, Cache-Control: no-store', async () => {
      const url = (await create({ 'Upload-Complete': '?0' }, 'abc')).headers.get('Location')!;
      const res = await fetch(url, { method: 'HEAD', headers: V });
      expect(res.status).toBe(204);
      expect([res.headers.get('Upload-Offset'), res.headers.get('Upload-Complete'), res.headers.get('Cache-Control')]).toEqual(['3', '?0', 'no-store']);
      expect((await fetch(`${server.endpoint}${'0'.repeat(32)}`, { method: 'HEAD', headers: V })).status).toBe(404);
      if (version <= 6) expect((await fetch(url, { method: 'HEAD', headers: { ...V, 'Upload-Offset': '3' } })).status).toBe(400);
    });

    test('append and completion: the last append with ?1 fixes the length and completes', async () => {
      const url = (await create({ 'Upload-Complete': '?0' })).headers.get('Location')!;
      let res = await append(url, 0, false, 'hello ');
      expect([res.status, res.headers.get('Upload-Offset'), res.headers.get('Upload-Complete')]).toEqual([204, '6', '?0']);
      res = await append(url, 6, true, 'world');
      expect([res.status, res.headers.get('Upload-Offset'), res.headers.get('Upload-Complete')]).toEqual([204, '11', '?1']);
      const head = await fetch(url, { method: 'HEAD', headers: V });
      expect([head.headers.get('Upload-Complete'), head.headers.get('Upload-Length')]).toEqual(['?1', '11']);
      expect(await (await fetch(url)).text()).toBe('hello world');
    });

    test('offset mismatch: 409 with the current Upload-Offset (and a problem body from version 6)', async () => {
      const url = (await create({ 'Upload-Complete': '?0' }, 'abc')).headers.get('Location')!;
      const res = await append(url, 1, false, 'x');
      expect(res.status).toBe(409);
      expect(res.headers.get('Upload-Offset')).toBe('3');
      // The editor's copy under version 8: a 409 says the upload protocol's semantics apply.
      expect(res.headers.get('Upload-Complete')).toBe(version === 8 ? '?0' : null);
      if (version >= 6) {
        expect(res.headers.get('Content-Type')).toBe('application/problem+json');
        expect(await res.json()).toMatchObject({
          type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
          'expected-offset': 3,
          'provided-offset': 1,
        });
      }
    });

    test('appending to a completed upload is refused', async () => {
      const url = (await create({ 'Upload-Complete': '?1' }, 'done')).headers.get('Location')!;
      const res = await append(url, 4, false, 'more');
      expect(res.status).toBe(400);
      if (version >= 6) expect((await res.json()).type).toEndWith('#completed-upload');
    });

    test('a last append that does not end at the known length: 400, nothing stored', async () => {
      const url = (await create({ 'Upload-Complete': '?0', 'Upload-Length': '10' })).headers.get('Location')!;
      const res = await append(url, 0, true, 'short');
      expect(res.status).toBe(400);
      expect((await fetch(url, { method: 'HEAD', headers: V })).headers.get('Upload-Offset')).toBe('0');
    });

    if (version >= 6) {
      test('an append must be application/partial-upload', async () => {
        const url = (await create({ 'Upload-Complete': '?0' })).headers.get('Location')!;
        const res = await fetch(url, {
          method: 'PATCH',
          headers: { ...V, 'Upload-Offset': '0', 'Upload-Complete': '?0', 'Content-Type': 'application/octet-stream' },
          body: 'x',
        });
        expect(res.status).toBe(415);
      });
    }

    test(`GET on the upload: ${version === 8 ? 'the state like HEAD (204 in progress; the bytes once complete), no-store' : 'the download only'}`, async () => {
      const url = (await create({ 'Upload-Complete': '?0' }, 'abc')).headers.get('Location')!;
      const open = await fetch(url, { headers: V });
      if (version === 8) {
        expect(open.status).toBe(204);
        expect([open.headers.get('Upload-Offset'), open.headers.get('Upload-Complete'), open.headers.get('Cache-Control')]).toEqual(['3', '?0', 'no-store']);
        expect(open.headers.get('Upload-Limit')).toContain('max-age=');
      } else {
        expect(open.status).not.toBe(204);
        expect(open.headers.get('Upload-Offset')).toBeNull();
        await open.arrayBuffer();
      }
      await append(url, 3, true, 'def');
      const done = await fetch(url, { headers: V });
      expect([done.status, await done.text()]).toEqual([200, 'abcdef']);
      const state = [done.headers.get('Upload-Offset'), done.headers.get('Upload-Complete'), done.headers.get('Upload-Length'), done.headers.get('Cache-Control')];
      expect(state).toEqual(version === 8 ? ['6', '?1', '6', 'no-store'] : [null, null, null, null]);
    });

    test("an upload larger than max-size: 413, with Upload-Limit from version 8 (the editor's copy)", async () => {
      const res = await create({ 'Upload-Complete': '?0', 'Upload-Length': String(2048 * MiB) });
      expect(res.status).toBe(413);
      expect(res.headers.get('Upload-Draft-Interop-Version')).toBe(String(version));
      expect(res.headers.get('Upload-Limit')).toBe(version === 8 ? `min-size=0, max-size=${1024 * MiB}, max-age=86400` : null);
    });

    if (version >= 6) {
      test(`the lifetime in Upload-Limit (${version === 6 ? 'expires' : 'max-age'}) is what is left: it falls as time passes, and goes once complete`, async () => {
        const key = version === 6 ? 'expires' : 'max-age';
        const lifetime = (res: Response) => Number(res.headers.get('Upload-Limit')?.match(new RegExp(`${key}=(\\d+)`))?.[1]);
        const created = await create({ 'Upload-Complete': '?0' });
        const url = created.headers.get('Location')!;
        const first = lifetime(created);
        expect(first).toBeGreaterThan(86400 - 5);
        expect(first).toBeLessThanOrEqual(86400);
        await Bun.sleep(1100);
        const later = lifetime(await fetch(url, { method: 'HEAD', headers: V }));
        expect(later).toBeLessThan(first);
        expect(later).toBeGreaterThan(first - 5);
        const done = await append(url, 0, true, 'x');
        expect(done.headers.get('Upload-Limit')).not.toContain(key);
      });
    }

    test('cancellation: DELETE → 204, then 404', async () => {
      const url = (await create({ 'Upload-Complete': '?0' }, 'abc')).headers.get('Location')!;
      expect((await fetch(url, { method: 'DELETE', headers: V })).status).toBe(204);
      expect((await fetch(url, { method: 'HEAD', headers: V })).status).toBe(404);
    });

    test('creation without Upload-Complete or with a malformed one → 400', async () => {
      expect((await create({})).status).toBe(400);
      expect((await create({ 'Upload-Complete': 'true' })).status).toBe(400);
    });
  });
}

test('an interop version this server does not serve → 400 naming the versions it does', async () => {
  const res = await fetch(server.endpoint, { method: 'POST', headers: { 'Upload-Draft-Interop-Version': '3', 'Upload-Complete': '?0' } });
  expect(res.status).toBe(400);
  expect(await res.text()).toContain('5, 6, 7, 8');
});

test('OPTIONS advertises Upload-Limit and the append media type', async () => {
  const res = await fetch(server.endpoint, { method: 'OPTIONS' });
  expect(res.headers.get('Upload-Limit')).toBe(`min-size=0, max-size=${1024 * MiB}, max-age=86400`);
  expect(res.headers.get('Accept-Patch')).toContain('application/partial-upload');
});

test('a tus client and an IETF client on the same endpoint and upload', async () => {
  const url = (await fetch(server.endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '6' } })).headers.get('Location')!;
  const res = await fetch(url, {
    method: 'PATCH',
    headers: { 'Upload-Draft-Interop-Version': '6', 'Content-Type': 'application/partial-upload', 'Upload-Offset': '0', 'Upload-Complete': '?1' },
    body: 'ietf!!',
  });
  expect(res.status).toBe(204);
  expect(await (await fetch(url)).text()).toBe('ietf!!');
});
