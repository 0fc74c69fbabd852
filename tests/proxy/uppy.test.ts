// Uppy (@uppy/tus with withCredentials, and Golden Retriever) in headless Chromium, on a page of one
// origin uploading through the README's nginx configuration (another origin, path prefix /uploads/)
// to a server with TRUST_PROXY and CORS_CREDENTIALS, storing into S3 (radosgw). The page is reloaded
// mid-upload: Golden Retriever restores the files and the uploads go on from the server's offsets.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { join } from 'node:path';
import { sha256, startServer, type TestServer } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { startNginx, type ProxyProcess } from '../support/proxies.ts';
import { type PageHarness, startPageHarness, throttleUploads, watchRequests } from '../support/browser.ts';
import { fileBytes, type FileSpec } from './uppy/bytes.ts';

const MiB = 1024 * 1024;
const FILES: FileSpec[] = [
  { name: 'big.bin', seed: 0x5eed_0001, size: 20 * MiB },
  { name: 'middle.bin', seed: 0x5eed_0002, size: 3 * MiB + 17 },
  { name: 'small.bin', seed: 0x5eed_0003, size: 300 * 1024 + 3 },
];

let harness: PageHarness;
let pageOrigin: string;
let server: S3TestServer;
/** The same origins allowed, but no CORS_CREDENTIALS: what Uppy met before. */
let uncredentialed: TestServer;
let proxy: ProxyProcess;

beforeAll(async () => {
  harness = await startPageHarness(join(import.meta.dir, 'uppy/page.ts'), 'uppy');
  // Same site as the proxy (localhost), so the cookie below is first-party, yet another origin (port): CORS applies.
  pageOrigin = harness.origin;
  server = await startS3Server({ trustProxy: true, corsOrigins: [pageOrigin], corsCredentials: true });
  uncredentialed = await startServer({ trustProxy: true, corsOrigins: [pageOrigin] });
  proxy = await startNginx(Number(new URL(server.origin).port));
}, 60_000);

afterAll(async () => {
  await harness?.stop();
  await proxy?.stop();
  await server?.stop();
  await uncredentialed?.stop();
});

test('three files (one of 20 MiB) through nginx with credentials; reloaded mid-upload, restored, resumed; S3 holds the same bytes', async () => {
  const endpoint = `${proxy.origin}/uploads/files/`;
  const context = await harness.browser.newContext();
  // A cookie for the upload origin: sent only if the requests are credentialed.
  await context.addCookies([{ name: 'session', value: 'uppy-test', domain: 'localhost', path: '/' }]);
  const page = await context.newPage();
  const requests: { method: string; url: string; offset: string | null; cookie: string | undefined; location: string | null; reloaded: boolean }[] = [];
  let reloaded = false;
  // Requests that got their answer (the PATCH in flight at the reload is cancelled, and has none).
  const { pageErrors } = watchRequests(page, endpoint, async (r, response) => {
    const headers = await r.allHeaders();
    const location = response?.headers().location ?? null;
    requests.push({ method: r.method(), url: r.url(), offset: headers['upload-offset'] ?? null, cookie: headers.cookie, location, reloaded });
  });
  // Slow enough uploads that the reload lands mid-way.
  await throttleUploads(context, page, 4 * MiB);

  const url = `${pageOrigin}/?endpoint=${encodeURIComponent(endpoint)}`;
  await page.goto(url);
  await page.waitForFunction(() => typeof window.addFiles === 'function');
  await page.evaluate((files) => window.addFiles(files), FILES);
  const sentHashes = await page.evaluate(() => ({ ...window.report.hashes }));
  for (const f of FILES) expect(sentHashes[f.name]).toBe(sha256(fileBytes(f.seed, f.size)));

  // Mid-upload: the big file a good way in but far from done.
  await page.waitForFunction(() => (window.report.progress['big.bin'] ?? 0) >= 6 * 1024 * 1024, undefined, { timeout: 30_000, polling: 50 });
  const before = await page.evaluate(() => window.report.progress['big.bin'] ?? 0);
  expect(before).toBeLessThan(16 * MiB);
  reloaded = true;
  await page.reload();
  await page.waitForFunction(() => window.report?.restored === true, undefined, { timeout: 30_000 });
  // Golden Retriever gave back the very bytes the page had generated.
  const restoredHashes = await page.evaluate(() => ({ ...window.report.hashes }));
  expect(restoredHashes['big.bin']).toBe(sentHashes['big.bin']);

  await page.waitForFunction(() => window.report.complete || window.report.errors.length > 0, undefined, { timeout: 60_000, polling: 100 });
  const report = await page.evaluate(() => window.report);
  expect(report.errors).toEqual([]);
  expect(pageErrors).toEqual([]);

  // One creation per file over both page loads: the big one was resumed, not started again.
  const posts = requests.filter((r) => r.method === 'POST');
  expect(posts.length).toBe(FILES.length);
  const resumed = requests.filter((r) => r.reloaded && r.method === 'PATCH' && Number(r.offset) > 0);
  expect(resumed.length).toBeGreaterThan(0);
  // Credentialed: the cookie rode along on the cross-origin requests (and the answers were readable).
  expect(requests.filter((r) => r.method !== 'OPTIONS').every((r) => r.cookie?.includes('session=uppy-test'))).toBe(true);

  // Every upload URL is the public one (host, nginx's port, prefix), read by the page through CORS.
  const publicUrl = new RegExp(`^http://localhost:${proxy.port}/uploads/files/[\\w-]+$`);
  for (const post of posts) expect(post.location).toMatch(publicUrl);
  expect(report.uploaded['big.bin']).toMatch(publicUrl);
  // S3 holds the same bytes as the page generated.
  const ids = [...new Set(requests.filter((r) => r.method === 'PATCH').map((r) => r.url.split('/').pop()!))];
  expect(ids.length).toBe(FILES.length);
  const stored = await Promise.all(ids.map(async (id) => sha256((await server.object(id))!)));
  expect(stored.sort()).toEqual(FILES.map((f) => sha256(fileBytes(f.seed, f.size))).sort());
  await context.close();
}, 120_000);

test('a credentialed request from the page: readable with CORS_CREDENTIALS, refused by the browser without', async () => {
  const context = await harness.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${pageOrigin}/?endpoint=`);
  const attempt = (target: string) =>
    page.evaluate(async (url) => {
      try {
        const res = await fetch(url, { method: 'POST', credentials: 'include', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } });
        return `${res.status} ${res.headers.get('Location') ? 'location' : ''} ${res.headers.get('X-Request-Id') ? 'request-id' : ''}`;
      } catch (error) {
        return `refused: ${error}`;
      }
    }, target);
  expect(await attempt(`${proxy.origin}/uploads/files/`)).toBe('201 location request-id');
  expect(await attempt(uncredentialed.endpoint)).toStartWith('refused');
  await context.close();
});
