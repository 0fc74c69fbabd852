// Uppy's AwsS3 plugin (its Companion mode) and Golden Retriever in headless Chromium, uploading
// straight to radosgw through Tusflow's /s3/multipart API: the bucket gets the CORS rule Tusflow's
// s3-cors command applies, the small file goes in one form POST (/s3/params), one file is paused
// and resumed, the page is reloaded mid-upload and Golden Retriever resumes from the parts S3
// lists. S3 ends up with the very bytes the page made.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { join } from 'node:path';
import { sha256 } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { type PageHarness, startPageHarness, throttleUploads, watchRequests } from '../support/browser.ts';
import { fileBytes, type FileSpec } from '../proxy/uppy/bytes.ts';
import { allowsDirectUploads, BucketCors, directUploadCorsXml } from '../../src/storage/s3/bucket-cors.ts';

const MiB = 1024 * 1024;
const FILES: FileSpec[] = [
  { name: 'big.bin', seed: 0x5eed_0101, size: 56 * MiB + 123 },
  { name: 'middle.bin', seed: 0x5eed_0102, size: 6 * MiB + 17 },
  { name: 'small.bin', seed: 0x5eed_0103, size: 300 * 1024 + 3 },
];

let harness: PageHarness;
let pageOrigin: string;
let server: S3TestServer;
let cors: BucketCors;

beforeAll(async () => {
  harness = await startPageHarness(join(import.meta.dir, 'uppy/page.ts'), 'uppy direct');
  // Another origin than both the server and radosgw: CORS applies to each.
  pageOrigin = harness.origin;
  // Uploads expire after 40 s unused, so the form POST's policy lasts 20 s (half) and its upload
  // is finished within the test.
  server = await startS3Server({ s3Direct: true, corsOrigins: [pageOrigin], prefix: 'direct/', uploadTtlSeconds: 40 });
  const { endpoint, region, accessKeyId, secretAccessKey } = server.s3;
  cors = new BucketCors({ endpoint, bucket: server.bucket, region, accessKeyId, secretAccessKey });
  await cors.put(directUploadCorsXml([pageOrigin]));
}, 60_000);

afterAll(async () => {
  await harness?.stop();
  await server?.stop();
});

test("the bucket's CORS rule: applied, read back, and radosgw answers a presigned PUT's preflight with ETag exposed", async () => {
  const rules = await cors.get();
  expect(allowsDirectUploads(rules!, pageOrigin)).toBe(true);
  expect(allowsDirectUploads(rules!, 'http://elsewhere.example')).toBe(false);
  const preflight = await fetch(`${server.s3.endpoint}/${server.bucket}/direct/x?partNumber=1&uploadId=y`, {
    method: 'OPTIONS',
    headers: { Origin: pageOrigin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' },
  });
  expect(preflight.status).toBe(200);
  expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe(pageOrigin);
  expect(preflight.headers.get('Access-Control-Allow-Methods')).toContain('PUT');
  const other = await fetch(`${server.s3.endpoint}/${server.bucket}/direct/x`, {
    method: 'OPTIONS',
    headers: { Origin: 'http://elsewhere.example', 'Access-Control-Request-Method': 'PUT' },
  });
  expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
});

test('three files straight to S3 (56 MiB in 12 parts, 6 MiB in 1, 300 KiB in one form POST): paused and resumed, reloaded mid-upload and resumed from the listed parts; S3 holds the same bytes', async () => {
  const api = `${server.origin}/s3/multipart`;
  const context = await harness.browser.newContext();
  const page = await context.newPage();
  const requests: { method: string; url: string; status: number; reloaded: boolean }[] = [];
  /** The `location` each completion answered (the page's own record of them goes with the reload). */
  const locations: string[] = [];
  /** The upload ids `/s3/params` answered (small files, in one form POST). */
  const singles: string[] = [];
  let reloaded = false;
  const { pageErrors } = watchRequests(page, `${server.origin}/s3/`, async (r, response) => {
    requests.push({ method: r.method(), url: r.url(), status: response?.status() ?? 0, reloaded });
    if (r.url().includes('/complete?') && response?.ok()) locations.push(((await response.json()) as { location: string }).location);
    if (r.url().startsWith(`${server.origin}/s3/params?`) && response?.ok()) singles.push(((await response.json()) as { uploadId: string }).uploadId);
  });
  const s3Puts: { url: string; reloaded: boolean }[] = [];
  watchRequests(page, server.s3.endpoint, (r) => {
    if (r.method() === 'PUT') s3Puts.push({ url: r.url(), reloaded });
  });
  // Slow enough that the pause and the reload land mid-way.
  await throttleUploads(context, page, 12 * MiB);

  await page.goto(`${pageOrigin}/?server=${encodeURIComponent(server.origin)}`);
  await page.waitForFunction(() => typeof window.addFiles === 'function');
  await page.evaluate((files) => window.addFiles(files), FILES);
  const sentHashes = await page.evaluate(() => ({ ...window.report.hashes }));
  for (const f of FILES) expect(sentHashes[f.name]).toBe(sha256(fileBytes(f.seed, f.size)));

  // Paused: no byte moves for a while; resumed: it goes on.
  await page.waitForFunction(() => (window.report.progress['big.bin'] ?? 0) >= 10 * 1024 * 1024, undefined, { timeout: 30_000, polling: 50 });
  await page.evaluate(() => window.pause('big.bin'));
  await Bun.sleep(300);
  const paused = await page.evaluate(() => window.report.progress['big.bin'] ?? 0);
  await Bun.sleep(1500);
  expect(await page.evaluate(() => window.report.progress['big.bin'] ?? 0)).toBe(paused);
  expect(paused).toBeLessThan(40 * MiB);
  await page.evaluate(() => window.resume('big.bin'));

  // Mid-upload: a good way in but far from done.
  await page.waitForFunction((at) => (window.report.progress['big.bin'] ?? 0) >= at + 5 * 1024 * 1024, paused, { timeout: 30_000, polling: 50 });
  const before = await page.evaluate(() => window.report.progress['big.bin'] ?? 0);
  expect(before).toBeLessThan(50 * MiB);
  reloaded = true;
  await page.reload();
  await page.waitForFunction(() => window.report?.restored === true, undefined, { timeout: 30_000 });
  const restoredHashes = await page.evaluate(() => ({ ...window.report.hashes }));
  expect(restoredHashes['big.bin']).toBe(sentHashes['big.bin']);

  await page.waitForFunction(() => window.report.complete || window.report.errors.length > 0, undefined, { timeout: 90_000, polling: 100 });
  const report = await page.evaluate(() => window.report);
  expect(report.errors).toEqual([]);
  expect(pageErrors).toEqual([]);
  expect(requests.filter((r) => r.status >= 400)).toEqual([]);

  // One creation per file over both page loads (the small one in one form POST); after the reload
  // the big one listed its parts and sent only the rest: fewer than its 12 parts.
  const creations = requests.filter((r) => r.method === 'POST' && r.url === api);
  expect(creations.length).toBe(FILES.length - 1);
  expect(singles.length).toBe(1);
  const listed = requests.filter((r) => r.reloaded && r.method === 'GET' && /\/s3\/multipart\/[0-9a-f]{32}\?key=/.test(r.url));
  expect(listed.length).toBeGreaterThan(0);
  const bigId = listed[0]!.url.split('/s3/multipart/')[1]!.split('?')[0]!;
  const bigPuts = s3Puts.filter((p) => p.url.includes(`/direct/${bigId}?`));
  const afterReload = bigPuts.filter((p) => p.reloaded).length;
  expect(afterReload).toBeGreaterThan(0);
  expect(afterReload).toBeLessThan(12);

  // Each upload is a Tusflow upload: its location downloads it, and S3 holds the same bytes at <prefix><id>.
  expect(report.uploaded['big.bin']).toBe(`${server.endpoint}${bigId}`);
  expect(locations.length).toBe(FILES.length - 1);
  // The form POST's upload is a Tusflow upload too: finished, with its length, once looked at after
  // its policy expired (20 s after it was signed).
  let smallLength: string | null = null;
  for (let i = 0; i < 300 && smallLength === null; i++) {
    const small = await fetch(`${server.endpoint}${singles[0]}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    smallLength = small.headers.get('Upload-Length');
    if (smallLength === null) await Bun.sleep(100);
  }
  expect(smallLength).toBe(String(FILES[2]!.size));
  locations.push(`${server.endpoint}${singles[0]}`);
  const stored: string[] = [];
  for (const location of locations) {
    expect(location).toMatch(new RegExp(`^${server.endpoint}[0-9a-f]{32}$`));
    const bytes = (await server.object(`direct/${location.split('/').pop()}`))!;
    expect(sha256(new Uint8Array(await (await fetch(location)).arrayBuffer()))).toBe(sha256(bytes));
    stored.push(sha256(bytes));
  }
  expect(stored.sort()).toEqual(FILES.map((f) => sha256(fileBytes(f.seed, f.size))).sort());
  await context.close();
}, 150_000);
