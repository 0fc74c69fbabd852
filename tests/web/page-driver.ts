// What the upload page's tests share: headless Chromium (Debian's, or CHROMIUM_PATH) driven through
// playwright-core, sample files on disk, and ways to wait for a row of the page to reach a state.
import { expect } from 'bun:test';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { randomBytes, sha256 } from '../support/server.ts';
import { launchChromium } from '../support/browser.ts';

export const MiB = 1024 * 1024;
export const ARTIFACTS = join(import.meta.dir, 'artifacts');

export interface Driver {
  browser: Browser;
  /** Where sample files are written. */
  dir: string;
  close(): Promise<void>;
}

export async function startDriver(): Promise<Driver> {
  const dir = await mkdtemp(join(tmpdir(), 'tusflow-web-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const browser = await launchChromium();
  return {
    browser,
    dir,
    async close() {
      await browser.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface SampleFile {
  path: string;
  name: string;
  bytes: Uint8Array;
  sha: string;
  size: number;
}

/** A file of random bytes on disk, for the file input. */
export async function sampleFile(driver: Driver, name: string, size: number): Promise<SampleFile> {
  const bytes = randomBytes(size);
  const path = join(driver.dir, name);
  await writeFile(path, bytes);
  return { path, name, bytes, sha: sha256(bytes), size };
}

export interface OpenPage {
  context: BrowserContext;
  page: Page;
  errors: string[];
  /** Every request the page sent, in order: method, URL and Upload-Offset. */
  requests: { method: string; url: string; offset: string | null }[];
}

/** A fresh browser profile (so its own localStorage) whose uploads Chromium sends at `bytesPerSecond`. */
export async function openPage(driver: Driver, origin: string, bytesPerSecond: number): Promise<OpenPage> {
  const context = await driver.browser.newContext({ viewport: { width: 860, height: 640 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: OpenPage['requests'] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), offset: r.headers()['upload-offset'] ?? null }));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
  await page.goto(`${origin}/`);
  expect(await page.title()).toContain('Tusflow');
  return { context, page, errors, requests };
}

export const row = (page: Page, name: string) => page.locator('.upload', { has: page.locator('.name', { hasText: name }) });

/** Waits until the named file's progress bar shows at least `percent`. */
export async function progressReaches(page: Page, name: string, percent: number, timeout = 30_000): Promise<void> {
  await row(page, name).locator('progress').waitFor();
  await page.waitForFunction(
    ([n, p]) => {
      const item = [...document.querySelectorAll('.upload')].find((li) => li.querySelector('.name')?.textContent === n);
      return (item?.querySelector('progress')?.value ?? 0) >= (p as number);
    },
    [name, percent] as const,
    { timeout, polling: 50 },
  );
}

export const stateOf = (page: Page, name: string) => row(page, name).getAttribute('data-state');

export async function waitForState(page: Page, name: string, state: string, timeout = 30_000): Promise<void> {
  await row(page, name)
    .and(page.locator(`[data-state="${state}"]`))
    .waitFor({ timeout });
}

/** The visible buttons of a row, by their text. */
export const buttonsOf = (page: Page, name: string) => row(page, name).locator('.actions .button:visible').allTextContents();

/** The upload URL tus-js-client keeps for the one unfinished upload of this page's profile. */
export const storedUploadUrl = (page: Page) =>
  page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('tus::'));
    return key ? (JSON.parse(localStorage.getItem(key)!).uploadUrl as string) : undefined;
  });

export async function serverProgress(uploadUrl: string): Promise<{ offset: number; received: number; state: string }> {
  const res = await fetch(`${uploadUrl}/progress`);
  expect(res.status).toBe(200);
  return res.json();
}

export async function downloaded(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return sha256(await res.arrayBuffer());
}
