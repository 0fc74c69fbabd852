// The upload page at `/` (src/web/page.generated.ts as committed; nothing is built here), driven in
// headless Chromium through playwright-core, against a server on loopback: once with the embedded
// file stores and once storing into S3 (radosgw). Uploads are slowed with Chromium's own network
// throttling so that there is time to pause them.
//
// Screenshots go to tests/web/artifacts/. TUSFLOW_README_SCREENSHOT=1 also writes docs/page.png,
// the README's picture.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256, startServer, type TestServer } from '../support/server.ts';
import { startS3Server, type S3TestServer } from '../support/s3-server.ts';
import {
  ARTIFACTS,
  buttonsOf,
  type Driver,
  downloaded,
  MiB,
  openPage as open,
  progressReaches,
  row,
  sampleFile as sample,
  serverProgress,
  startDriver,
  stateOf,
  waitForState,
} from './page-driver.ts';

const README_SCREENSHOT = join(import.meta.dir, '../../docs/page.png');

let driver: Driver;
let dir: string;
beforeAll(async () => {
  driver = await startDriver();
  dir = driver.dir;
}, 30_000);
afterAll(() => driver?.close());

const sampleFile = (name: string, size: number) => sample(driver, name, size);
const openPage = (server: TestServer, bytesPerSecond: number) => open(driver, server.origin, bytesPerSecond);

/**
 * Chooses a 20 MiB file, pauses it on the way, reloads the page, chooses the file again, resumes
 * the earlier upload (the page offers it) and finishes; the server then holds the same bytes.
 */
async function pauseReloadResume(server: TestServer, label: string): Promise<string> {
  const file = await sampleFile(`${label}-20MiB.bin`, 20 * MiB);
  const name = `${label}-20MiB.bin`;
  const { context, page, errors, requests } = await openPage(server, 5 * MiB);

  await page.locator('#files').setInputFiles(file.path);
  await progressReaches(page, name, 15);
  await row(page, name).getByRole('button', { name: 'Pause', exact: true }).click();
  expect(await stateOf(page, name)).toBe('paused');
  const creates = requests.filter((r) => r.method === 'POST');
  expect(creates.length).toBe(1);
  const uploadUrl = await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tus::'))!;
    return JSON.parse(localStorage.getItem(key)!).uploadUrl as string;
  });
  expect(uploadUrl.startsWith(server.endpoint)).toBe(true);
  // The live view (Server-Sent Events) sees the pause settle on the server.
  await row(page, name).locator('.server[data-state="paused"]').waitFor({ timeout: 15_000 });
  const paused = await serverProgress(uploadUrl);
  expect(paused.state).toBe('paused');
  expect(paused.offset).toBeGreaterThan(0);
  expect(paused.offset).toBeLessThan(file.size);

  await page.reload();
  // The page lists the unfinished upload with the server's offset...
  const earlier = page.locator('#earlier-list li');
  await earlier.waitFor();
  expect(await earlier.textContent()).toContain(name);
  await page.screenshot({ path: join(ARTIFACTS, `${label}-reloaded.png`), fullPage: true });
  // ...and, given the same file again, offers to resume it.
  requests.length = 0;
  await page.locator('#files').setInputFiles(file.path);
  await waitForState(page, name, 'choice');
  await page.screenshot({ path: join(ARTIFACTS, `${label}-resume-offered.png`), fullPage: true });
  expect(
    await row(page, name)
      .locator('progress')
      .evaluate((p: HTMLProgressElement) => p.value),
  ).toBe(Math.floor((paused.offset / file.size) * 100));
  await row(page, name).getByRole('button', { name: 'Resume', exact: true }).click();
  await waitForState(page, name, 'finished');

  // Resumed where the server stopped: no new upload, the first PATCH starts at the stored offset.
  expect(requests.filter((r) => r.method === 'POST')).toEqual([]);
  const patches = requests.filter((r) => r.method === 'PATCH');
  expect(patches[0]).toEqual({ method: 'PATCH', url: uploadUrl, offset: String(paused.offset) });
  expect(await earlier.count()).toBe(0);

  const finished = row(page, name);
  expect(await finished.locator('progress').evaluate((p: HTMLProgressElement) => p.value)).toBe(100);
  expect(await finished.locator('.status').textContent()).toBe('Uploaded 20 MiB');
  const link = finished.getByRole('link', { name: `Download ${name}` });
  expect(await link.getAttribute('href')).toBe(uploadUrl);
  await finished.locator('.server[data-state="finished"]').waitFor();
  expect(await finished.locator('.server').getAttribute('data-received')).toBe(String(file.size));
  // Finished uploads leave nothing to resume behind.
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')))).toEqual([]);

  await page.screenshot({ path: join(ARTIFACTS, `${label}.png`), fullPage: true });
  await context.close();
  expect(errors).toEqual([]);
  expect(await downloaded(uploadUrl)).toBe(file.sha);
  return uploadUrl;
}

describe('the upload page, embedded file stores', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server?.stop());

  test('serves one self-contained page', async () => {
    const res = await fetch(`${server.origin}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet/);
    expect(html.length).toBeLessThan(64 * 1024);
  });

  test('upload, pause, reload, resume the earlier upload, finish: the server has the same bytes', async () => {
    await pauseReloadResume(server, 'page');
  }, 45_000);

  test('several files: the live view follows the server-side progress of each one', async () => {
    const files = [await sampleFile('report.pdf', 3 * MiB), await sampleFile('holiday.mp4', 24 * MiB), await sampleFile('dataset.csv', 16 * MiB)];
    const { context, page, errors } = await openPage(server, 6 * MiB);
    await page.locator('#files').setInputFiles(files.map((f) => f.path));
    // At most two uploads run at once (each takes two of the browser's six connections): one waits.
    await waitForState(page, 'dataset.csv', 'queued', 5_000);

    const server0 = row(page, 'holiday.mp4').locator('.server');
    const seen: number[] = [];
    const started = Date.now();
    while (seen.length < 3 && Date.now() - started < 20_000) {
      const [state, received] = await Promise.all([server0.getAttribute('data-state'), server0.getAttribute('data-received')]);
      if (state === 'uploading' && Number(received) > (seen.at(-1) ?? 0)) seen.push(Number(received));
      await page.waitForTimeout(100);
    }
    // The server's `received` rose while the upload ran, and is shown as text too.
    expect(seen.length).toBe(3);
    expect(await server0.textContent()).toMatch(/^Server: [\d.]+ [KM]iB of 24 MiB received · uploading/);

    await waitForState(page, 'report.pdf', 'finished');
    await progressReaches(page, 'dataset.csv', 10);
    await row(page, 'dataset.csv').getByRole('button', { name: 'Pause', exact: true }).click();
    await row(page, 'dataset.csv').locator('.server[data-state="paused"]').waitFor({ timeout: 15_000 });
    await progressReaches(page, 'holiday.mp4', 60);
    await page.waitForTimeout(700); // a few more speed samples and live events
    await page.screenshot({ path: join(ARTIFACTS, 'several.png'), fullPage: true });
    if (process.env.TUSFLOW_README_SCREENSHOT) {
      await mkdir(join(README_SCREENSHOT, '..'), { recursive: true });
      await page.screenshot({ path: README_SCREENSHOT, fullPage: true });
    }

    await row(page, 'dataset.csv').getByRole('button', { name: 'Resume', exact: true }).click();
    await waitForState(page, 'holiday.mp4', 'finished');
    await waitForState(page, 'dataset.csv', 'finished');
    for (const file of files) {
      const name = file.path.slice(dir.length + 1);
      const url = await row(page, name).getByRole('link').getAttribute('href');
      await row(page, name).locator('.server[data-state="finished"]').waitFor();
      expect(await downloaded(url!)).toBe(file.sha);
    }
    await context.close();
    expect(errors).toEqual([]);
  }, 45_000);
});

describe('the upload page, stored in S3', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  }, 120_000);
  afterAll(() => server?.stop());

  test('upload, pause, reload, resume, finish: the object in the bucket has the same bytes', async () => {
    const url = await pauseReloadResume(server, 's3');
    const object = await server.object(url.slice(url.lastIndexOf('/') + 1));
    expect(object?.byteLength).toBe(20 * MiB);
  }, 45_000);
});

describe('the upload page, with AUTH_TOKEN', () => {
  const TOKEN = 'page-test-token';
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ authToken: TOKEN });
  });
  afterAll(() => server?.stop());

  test('asks for the token, uploads with it, shows the live view and downloads the file', async () => {
    const file = await sampleFile('secret.bin', 6 * MiB);
    const { context, page, errors } = await openPage(server, 8 * MiB);
    await page.locator('#auth').waitFor();
    const sentAuth = new Set<string>();
    page.on('request', (r) => r.url().startsWith(server.endpoint) && sentAuth.add(`${r.method()} ${r.headers().authorization ?? '-'}`));

    // Without the token the server refuses: the page shows its words, and a token can still help,
    // so the upload may be retried.
    await page.locator('#files').setInputFiles(file.path);
    await waitForState(page, 'secret.bin', 'failed');
    expect(await row(page, 'secret.bin').locator('.status').textContent()).toBe('Failed: missing or invalid credentials: send "Authorization: Bearer <token>"');
    expect(await buttonsOf(page, 'secret.bin')).toEqual(['Retry', 'Cancel']);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token');

    // Given the token, the failed upload goes on by itself.
    await page.locator('#token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use', exact: true }).click();
    await waitForState(page, 'secret.bin', 'finished');
    const finished = row(page, 'secret.bin');
    await finished.locator('.server[data-state="finished"]').waitFor({ timeout: 10_000 });
    expect(await finished.locator('.server').getAttribute('data-received')).toBe(String(file.size));
    expect(sentAuth.has('POST -')).toBe(true);
    for (const method of ['POST', 'PATCH', 'GET']) expect(sentAuth.has(`${method} Bearer ${TOKEN}`)).toBe(true);

    const [download] = await Promise.all([page.waitForEvent('download'), finished.getByRole('link', { name: 'Download secret.bin' }).click()]);
    expect(download.suggestedFilename()).toBe('secret.bin');
    expect(sha256(await readFile((await download.path())!))).toBe(file.sha);
    const url = await finished.getByRole('link').getAttribute('href');
    expect((await fetch(url!)).status).toBe(401);
    // The token lives in the tab's sessionStorage, never in what tus-js-client keeps.
    expect(await page.evaluate((t) => [sessionStorage.getItem('tusflow-token'), JSON.stringify({ ...localStorage }).includes(t)], TOKEN)).toEqual([TOKEN, false]);
    await context.close();
    expect(errors).toEqual([]);
  }, 45_000);
});
