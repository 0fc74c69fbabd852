// A page in headless Chromium, as the browser tests need it: the page's script built for the
// browser and served from an origin of its own (localhost, another port: CORS applies to every
// server it calls), Chromium launched, uploads throttled, and the requests the page sent watched.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page, type Request, type Response } from 'playwright-core';
import { freePort } from './process.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface PageHarness {
  /** Where the page is served: `http://localhost:<port>`. */
  origin: string;
  browser: Browser;
  stop(): Promise<void>;
}

/** Debian's headless Chromium (or CHROMIUM_PATH), kept from the network beyond what a page asks for. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Builds `entry` (a page script) for the browser, serves it at `/` on localhost, and launches Chromium. */
export async function startPageHarness(entry: string, title: string): Promise<PageHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'tusflow-page-'));
  const built = await Bun.build({ entrypoints: [entry], target: 'browser', outdir: dir });
  if (!built.success) throw new Error(built.logs.join('\n'));
  const script = await built.outputs[0]!.text();
  const port = await freePort();
  const pageServer = Bun.serve({
    hostname: '127.0.0.1',
    port,
    fetch: (request) =>
      new URL(request.url).pathname === '/page.js'
        ? new Response(script, { headers: { 'Content-Type': 'text/javascript' } })
        : new Response(`<!doctype html><title>${title}</title><script type="module" src="/page.js"></script>`, { headers: { 'Content-Type': 'text/html' } }),
  });
  const browser = await launchChromium();
  return {
    origin: `http://localhost:${port}`,
    browser,
    async stop() {
      await browser.close();
      await pageServer.stop(true);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Uploads from the page at most this fast (Chromium's own throttling; it stays across reloads). */
export async function throttleUploads(context: BrowserContext, page: Page, bytesPerSecond: number): Promise<void> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
}

/**
 * Calls `record` for each request of the page that got its answer (one cancelled by a reload has
 * none) and whose URL starts with `prefix`; collects the page's uncaught errors.
 */
export function watchRequests(page: Page, prefix: string, record: (request: Request, response: Response | null) => Promise<void> | void): { pageErrors: string[] } {
  const pageErrors: string[] = [];
  page.on('requestfinished', (r) => {
    if (r.url().startsWith(prefix)) void (async () => record(r, await r.response()))();
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  return { pageErrors };
}
