// The upload page on a server with S3_DIRECT: it sends the bytes straight to radosgw (no PATCH),
// pauses, lists the unfinished upload after a reload, resumes it from the parts S3 holds, and the
// object is byte-identical.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { BucketCors, directUploadCorsXml } from '../../src/storage/s3/bucket-cors.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { downloaded, MiB, openPage, row, sampleFile, startDriver, waitForState, type Driver, progressReaches } from '../web/page-driver.ts';
import { sha256 } from '../support/server.ts';

let driver: Driver;
let server: S3TestServer;

beforeAll(async () => {
  driver = await startDriver();
  server = await startS3Server({ s3Direct: true, prefix: 'page/' });
  const { endpoint, region, accessKeyId, secretAccessKey } = server.s3;
  // The page is served by the server itself: its origin may PUT parts to the bucket.
  await new BucketCors({ endpoint, bucket: server.bucket, region, accessKeyId, secretAccessKey }).put(directUploadCorsXml([server.origin]));
}, 60_000);

afterAll(async () => {
  await driver?.close();
  await server?.stop();
});

test('the page uploads straight to S3: pause, reload, resume from the listed parts, same bytes', async () => {
  const name = 'direct-page.bin';
  const file = await sampleFile(driver, name, 20 * MiB + 5);
  const { context, page, errors, requests } = await openPage(driver, server.origin, 6 * MiB);
  expect(await page.locator('meta[name="tus-direct"]').getAttribute('content')).toBe('/s3/multipart');
  await page.locator('#files').setInputFiles(file.path);
  // Past the first 8 MiB part, then paused.
  await progressReaches(page, name, 50);
  await row(page, name).getByRole('button', { name: 'Pause', exact: true }).click();
  await waitForState(page, name, 'paused');
  const created = requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/s3/multipart`);
  expect(created.length).toBe(1);
  const uploadUrl = await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tus::'));
    return key ? (JSON.parse(localStorage.getItem(key)!).uploadUrl as string) : undefined;
  });
  expect(uploadUrl).toMatch(new RegExp(`^${server.endpoint}[0-9a-f]{32}$`));
  const id = uploadUrl!.split('/').pop()!;
  // What S3 holds so far is the upload's offset on the server.
  const head = await fetch(uploadUrl!, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const stored = Number(head.headers.get('Upload-Offset'));
  expect(stored % (8 * MiB)).toBe(0);
  expect(stored).toBeGreaterThanOrEqual(8 * MiB);

  await page.reload();
  const earlier = page.locator('#earlier-list li');
  await earlier.waitFor();
  expect(await earlier.textContent()).toContain(name);
  requests.length = 0;
  await page.locator('#files').setInputFiles(file.path);
  await waitForState(page, name, 'choice');
  await row(page, name).getByRole('button', { name: 'Resume', exact: true }).click();
  await waitForState(page, name, 'finished', 60_000);

  // No new upload, no tus PATCH: only the parts S3 did not hold went, straight to S3.
  expect(requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/s3/multipart`)).toEqual([]);
  expect(requests.filter((r) => r.method === 'PATCH')).toEqual([]);
  const puts = requests.filter((r) => r.method === 'PUT' && r.url.startsWith(`${server.s3.endpoint}/${server.bucket}/page/${id}?`));
  expect(puts.length).toBe(3 - stored / (8 * MiB));
  expect(
    await row(page, name)
      .getByRole('link', { name: `Download ${name}` })
      .getAttribute('href'),
  ).toBe(uploadUrl!);
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')))).toEqual([]);
  await context.close();
  expect(errors).toEqual([]);
  expect(sha256((await server.object(`page/${id}`))!)).toBe(file.sha);
  expect(await downloaded(uploadUrl!)).toBe(file.sha);
}, 120_000);
