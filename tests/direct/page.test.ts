// The upload page on a server with S3_DIRECT: it sends the bytes straight to radosgw (no PATCH),
// pauses, lists the unfinished upload after a reload, resumes it from the parts S3 holds, and the
// object is byte-identical.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { Page } from 'playwright-core';
import { BucketCors, directUploadCorsXml } from '../../src/storage/s3/bucket-cors.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import { downloaded, MiB, openPage, row, sampleFile, startDriver, waitForState, type Driver, progressReaches } from '../web/page-driver.ts';
import { sha256 } from '../support/server.ts';

let driver: Driver;
let server: S3TestServer;
const TUS = { 'Tus-Resumable': '1.0.0' };

/** The upload URL the page keeps for its one unfinished upload. */
const storedUrl = (page: Page) =>
  page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tus::'));
    return key ? (JSON.parse(localStorage.getItem(key)!).uploadUrl as string) : undefined;
  });
/** The parts S3 holds for the direct upload `id` (Companion's list route). */
const listParts = async (id: string) =>
  (await (await fetch(`${server.origin}/s3/multipart/${id}?key=page/${id}`)).json()) as { PartNumber: number; Size: number; ETag: string }[];
/** Picks a file, lets S3 take at least one of its parts, pauses; resolves with its upload id. */
async function startThenPause(page: Page, path: string, name: string): Promise<string> {
  await page.locator('#files').setInputFiles(path);
  await progressReaches(page, name, 10);
  const url = await storedUrl(page);
  const id = url!.split('/').pop()!;
  for (let i = 0; i < 300 && (await listParts(id)).length === 0; i++) await Bun.sleep(50);
  await row(page, name).getByRole('button', { name: 'Pause', exact: true }).click();
  await waitForState(page, name, 'paused');
  return id;
}

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
  // Parts go three at a time: paused once S3 holds one of them.
  const id = await startThenPause(page, file.path, name);
  const created = requests.filter((r) => r.method === 'POST' && r.url === `${server.origin}/s3/multipart`);
  expect(created.length).toBe(1);
  const uploadUrl = await storedUrl(page);
  expect(uploadUrl).toBe(`${server.endpoint}${id}`);
  // What S3 holds so far is the upload's offset on the server.
  const held = await listParts(id);
  expect(held.length).toBeGreaterThan(0);
  expect(held.length).toBeLessThan(3);
  await Bun.sleep(3100); // the server reuses a listing for 3 s
  const head = await fetch(uploadUrl!, { method: 'HEAD', headers: TUS });
  expect(Number(head.headers.get('Upload-Offset'))).toBe(held.reduce((sum, p) => sum + p.Size, 0));

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
  expect(puts.length).toBe(3 - held.length);
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

test('resumed after it finished meanwhile: shown done; gone meanwhile (removed, or aborted by the cleanup): refused and off the unfinished list', async () => {
  // (Without a reload: the page lists only what the server still has unfinished.)
  const done = await sampleFile(driver, 'done-meanwhile.bin', 20 * MiB + 7);
  const gone = await sampleFile(driver, 'gone-meanwhile.bin', 20 * MiB + 9);
  const { context, page, errors } = await openPage(driver, server.origin, 6 * MiB);
  const doneId = await startThenPause(page, done.path, done.name);
  // Completed with the parts S3 holds, by another client (or a completion whose answer was lost).
  const parts = (await listParts(doneId)).map(({ PartNumber, ETag }) => ({ PartNumber, ETag }));
  const completed = await fetch(`${server.origin}/s3/multipart/${doneId}/complete?key=page/${doneId}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ parts }),
  });
  expect(completed.status).toBe(200);
  await row(page, done.name).getByRole('button', { name: 'Resume', exact: true }).click();
  await waitForState(page, done.name, 'finished');
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')))).toEqual([]);

  const goneId = await startThenPause(page, gone.path, gone.name);
  expect((await fetch(`${server.endpoint}${goneId}`, { method: 'DELETE', headers: TUS })).status).toBe(204);
  await row(page, gone.name).getByRole('button', { name: 'Resume', exact: true }).click();
  await row(page, gone.name).and(page.locator('[data-state="refused"], [data-state="failed"]')).waitFor();
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')))).toEqual([]);
  await context.close();
  expect(errors).toEqual([]);
}, 120_000);
