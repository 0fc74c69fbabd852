import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createUpload, randomBytes, sha256, slowBody, startServer, type TestServer, TUS } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

async function partial(bytes: Uint8Array<ArrayBuffer>, finish = true): Promise<string> {
  const url = await createUpload(server.endpoint, { 'Upload-Concat': 'partial', 'Upload-Length': String(bytes.length) });
  if (finish && bytes.length) {
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: bytes });
    expect(res.status).toBe(204);
  }
  return url;
}

const final = (urls: string[], extra: Record<string, string> = {}) =>
  fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}`, ...extra } });

const head = (url: string) => fetch(url, { method: 'HEAD', headers: TUS });

describe('concatenation', () => {
  test('OPTIONS advertises concatenation and concatenation-unfinished', async () => {
    const ext = (await fetch(server.endpoint, { method: 'OPTIONS' })).headers.get('Tus-Extension')!.split(',');
    expect(ext).toContain('concatenation');
    expect(ext).toContain('concatenation-unfinished');
  });

  test('a final upload is the partials in order; its length is the sum; HEAD echoes Upload-Concat', async () => {
    const parts = [randomBytes(1000), randomBytes(1), randomBytes(70_000)];
    const urls = await Promise.all(parts.map((p) => partial(p)));
    const res = await final([urls[2]!, urls[0]!, urls[1]!, urls[0]!], { 'Upload-Metadata': `filename ${btoa('all.bin')}` });
    expect(res.status).toBe(201);
    const url = res.headers.get('Location')!;
    const h = await head(url);
    expect(h.headers.get('Upload-Concat')).toBe(`final;${[urls[2], urls[0], urls[1], urls[0]].join(' ')}`);
    expect(h.headers.get('Upload-Length')).toBe(String(70_000 + 1000 + 1 + 1000));
    expect(h.headers.get('Upload-Offset')).toBe(String(72_001));
    expect(h.headers.get('Upload-Metadata')).toBe(`filename ${btoa('all.bin')}`);
    const expected = new Uint8Array([...parts[2]!, ...parts[0]!, ...parts[1]!, ...parts[0]!]);
    expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(expected));
    expect((await head(urls[0]!)).headers.get('Upload-Concat')).toBe('partial');
  });

  test('relative partial URLs are accepted', async () => {
    const a = await partial(randomBytes(10));
    const res = await final([new URL(a).pathname]);
    expect(res.status).toBe(201);
  });

  test('a final upload takes no Upload-Length → 400', async () => {
    const a = await partial(randomBytes(10));
    const res = await final([a], { 'Upload-Length': '10' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('no Upload-Length');
  });

  test('PATCH on a final upload → 403', async () => {
    const a = await partial(randomBytes(10));
    const url = (await final([a])).headers.get('Location')!;
    const res = await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '10' }, body: 'x' });
    expect(res.status).toBe(403);
  });

  test('unknown, foreign, non-partial and malformed references → 400/404 with a reason, nothing created', async () => {
    const normal = await createUpload(server.endpoint, { 'Upload-Length': '1' });
    const a = await partial(randomBytes(5));
    const unknown = `${server.endpoint}${'0'.repeat(32)}`;
    const cases: [string, number, string][] = [
      [`final;${unknown}`, 404, 'partial upload'],
      [`final;https://elsewhere.example/files/${a.split('/').pop()}`, 400, 'not an upload of this server'],
      [`final;${server.origin}/other/${a.split('/').pop()}`, 400, 'not an upload of this server'],
      [`final;${normal}`, 400, 'only partial uploads'],
      [`final;`, 400, 'Upload-Concat'],
      ['final', 400, 'Upload-Concat'],
      ['partial;x', 400, 'Upload-Concat'],
    ];
    for (const [header, status, reason] of cases) {
      const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Concat': header } });
      expect([header, res.status]).toEqual([header, status]);
      expect(await res.text()).toContain(reason);
      expect(res.headers.get('Location')).toBeNull();
    }
  });

  test('a final over a deleted partial → 404', async () => {
    const a = await partial(randomBytes(5));
    expect((await fetch(a, { method: 'DELETE', headers: TUS })).status).toBe(204);
    expect((await final([a])).status).toBe(404);
  });

  test('concatenation-unfinished: a final over unfinished partials has no Upload-Offset until they finish', async () => {
    const one = randomBytes(3000);
    const two = randomBytes(4000);
    const a = await partial(one);
    const b = await partial(two, false);
    const res = await final([a, b]);
    expect(res.status).toBe(201);
    const url = res.headers.get('Location')!;
    let h = await head(url);
    expect(h.status).toBe(200);
    expect(h.headers.get('Upload-Offset')).toBeNull();
    expect(h.headers.get('Upload-Length')).toBe('7000');
    expect((await fetch(url)).status).toBe(404);
    await fetch(b, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: two });
    h = await head(url);
    expect(h.headers.get('Upload-Offset')).toBe('7000');
    expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(new Uint8Array([...one, ...two])));
  });

  test("HEAD polled on an unfinished final does not cut a partial's PATCH; the final assembles once the partial finishes", async () => {
    const one = randomBytes(3000);
    const two = randomBytes(40 * 16 * 1024);
    const a = await partial(one);
    const b = await partial(two, false);
    const url = (await final([a, b])).headers.get('Location')!;
    // The PATCH brings 16 KiB every 50 ms (about 2 s) while HEAD asks about the final every 100 ms.
    const patch = fetch(b, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: slowBody(two, 50, 16 * 1024) });
    let done = false;
    const polled: (string | null)[] = [];
    const polling = (async () => {
      while (!done) {
        const h = await head(url);
        expect(h.status).toBe(200);
        polled.push(h.headers.get('Upload-Offset'));
        await Bun.sleep(100);
      }
    })();
    const res = await patch.finally(() => {
      done = true;
    });
    await polling;
    expect(res.status).toBe(204);
    expect(res.headers.get('Upload-Offset')).toBe(String(two.length));
    expect(polled.length).toBeGreaterThan(5);
    // Only the last poll may have been answered after the partial finished, just before the PATCH's own answer arrived.
    expect(polled.slice(0, -1).every((offset) => offset === null)).toBe(true);
    expect((await head(b)).headers.get('Upload-Offset')).toBe(String(two.length));
    expect((await head(url)).headers.get('Upload-Offset')).toBe(String(one.length + two.length));
    expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(new Uint8Array([...one, ...two])));
  });

  test('a final over empty partials is an empty upload', async () => {
    const a = await partial(new Uint8Array());
    const url = (await final([a, a])).headers.get('Location')!;
    expect((await head(url)).headers.get('Upload-Offset')).toBe('0');
    expect((await fetch(url)).status).toBe(200);
  });

  test('tus-js-client parallelUploads: 2 and 4', async () => {
    const bytes = randomBytes(9 * 1024 * 1024 + 17);
    for (const parallelUploads of [2, 4]) {
      const { url } = await tusUpload(server.endpoint, bytes, { parallelUploads, metadata: { filename: 'p.bin' } });
      expect((await head(url)).headers.get('Upload-Concat')).toStartWith('final;');
      expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(bytes));
    }
  });
});
