// The upload page's answers to refusals and lost connections, in headless Chromium against real
// servers on loopback (in-process, or a server process that is killed and started again on the same
// port): the server's own refusal text with no Retry where retrying cannot help, the Tus-Max-Size
// check before any request, "reconnecting…" until the server is back, cancel (DELETE), and offsets
// read afresh from the server after a reload.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatBytes } from '../../src/web/format.ts';
import { forward } from '../support/fault-proxy.ts';
import { freePort, type ServerProcess, spawnServer } from '../support/process.ts';
import { sha256, startServer, TUS, type TestServer } from '../support/server.ts';
import {
  ARTIFACTS,
  buttonsOf,
  type Driver,
  downloaded,
  MiB,
  openPage,
  progressReaches,
  row,
  sampleFile,
  serverProgress,
  startDriver,
  storedUploadUrl,
  waitForState,
} from './page-driver.ts';

let driver: Driver;
beforeAll(async () => {
  driver = await startDriver();
}, 30_000);
afterAll(() => driver?.close());

/** The files a file store keeps for an upload: its bytes (`<id>`) and its record (`<id>.json`). */
const storedFiles = async (dataDir: string, uploadUrl: string) => {
  const id = uploadUrl.slice(uploadUrl.lastIndexOf('/') + 1);
  return (await readdir(dataDir)).filter((name) => name === id || name.startsWith(`${id}.`));
};

/** A server process on one port and data directory, which can be stopped and started again there. */
async function restartableServer() {
  const dataDir = await mkdtemp(join(tmpdir(), 'tusflow-page-'));
  const port = String(await freePort());
  let current: ServerProcess | undefined;
  return {
    dataDir,
    origin: `http://127.0.0.1:${port}`,
    async start(vars: Record<string, string> = {}) {
      current = await spawnServer({ PORT: port, DATA_DIR: dataDir, LOG: 'false', ...vars });
    },
    async kill() {
      await current?.kill('SIGKILL');
      current = undefined;
    },
    async stop() {
      await this.kill();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('refusals', () => {
  test("a 413 from MAX_SIZE shows the server's text, and no Retry", async () => {
    const server = await restartableServer();
    try {
      // The page learns the server's limits on load: none yet. The server then comes back with
      // MAX_SIZE, so the page's own check lets the file through and the server refuses it.
      await server.start();
      const file = await sampleFile(driver, 'too-big.bin', 2 * MiB);
      const { context, page, errors, requests } = await openPage(driver, server.origin, 8 * MiB);
      await server.kill();
      await server.start({ MAX_SIZE: String(MiB) });
      const responses: number[] = [];
      page.on('response', (r) => r.request().method() === 'POST' && responses.push(r.status()));

      await page.locator('#files').setInputFiles(file.path);
      await waitForState(page, file.name, 'refused');
      expect(await row(page, file.name).locator('.status').textContent()).toBe('Refused: the upload is larger than the server accepts');
      expect(await buttonsOf(page, file.name)).toEqual(['Remove']);
      expect(await row(page, file.name).locator('.server').isVisible()).toBe(false);
      // One request, refused; not retried.
      await page.waitForTimeout(1200);
      expect(requests.filter((r) => r.method === 'POST').length).toBe(1);
      expect(responses).toEqual([413]);
      expect(await readdir(server.dataDir)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, 'refused-413.png'), fullPage: true });

      await row(page, file.name).getByRole('button', { name: 'Remove' }).click();
      expect(await row(page, file.name).count()).toBe(0);
      expect(await page.locator('#empty').isVisible()).toBe(true);
      await context.close();
      expect(errors).toEqual([]);
    } finally {
      await server.stop();
    }
  }, 45_000);

  describe('with MAX_SIZE', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer({ maxSize: MiB });
    });
    afterAll(() => server?.stop());

    test('a file larger than Tus-Max-Size is refused before any request; a smaller one uploads', async () => {
      const big = await sampleFile(driver, 'over-limit.bin', MiB + 1);
      const small = await sampleFile(driver, 'at-limit.bin', MiB);
      const { context, page, errors, requests } = await openPage(driver, server.origin, 8 * MiB);
      // The limit is asked for once, on load.
      const deadline = Date.now() + 5_000;
      while (!requests.some((r) => r.method === 'OPTIONS') && Date.now() < deadline) await Bun.sleep(20);
      expect(requests.filter((r) => r.method === 'OPTIONS').map((r) => r.url)).toEqual([server.endpoint]);
      await page.waitForLoadState('networkidle');

      requests.length = 0;
      await page.locator('#files').setInputFiles(big.path);
      await waitForState(page, big.name, 'refused');
      expect(await row(page, big.name).locator('.status').textContent()).toBe('Refused: larger than the server accepts (1.0 MiB at most)');
      expect(await buttonsOf(page, big.name)).toEqual(['Remove']);
      await page.waitForTimeout(500);
      expect(requests).toEqual([]);

      await page.locator('#files').setInputFiles(small.path);
      await waitForState(page, small.name, 'finished');
      const url = await row(page, small.name).getByRole('link').getAttribute('href');
      expect(await downloaded(url!)).toBe(small.sha);
      await context.close();
      expect(errors).toEqual([]);
    }, 45_000);
  });

  describe('with ALLOWED_TYPES', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer({ allowedTypes: ['image/*'] });
    });
    afterAll(() => server?.stop());

    test("a 415 shows the server's text and no Retry; an accepted type uploads", async () => {
      const text = await sampleFile(driver, 'notes.txt', 64 * 1024);
      const image = await sampleFile(driver, 'photo.png', 256 * 1024);
      const { context, page, errors, requests } = await openPage(driver, server.origin, 8 * MiB);
      await page.locator('#files').setInputFiles(text.path);
      await waitForState(page, text.name, 'refused');
      expect(await row(page, text.name).locator('.status').textContent()).toBe('Refused: refused by a hook: file type "text/plain" is not accepted');
      expect(await buttonsOf(page, text.name)).toEqual(['Remove']);
      await page.waitForTimeout(1200);
      expect(requests.filter((r) => r.method === 'POST').length).toBe(1);

      await page.locator('#files').setInputFiles(image.path);
      await waitForState(page, image.name, 'finished');
      const url = await row(page, image.name).getByRole('link').getAttribute('href');
      expect(await downloaded(url!)).toBe(image.sha);
      expect(await readdir(server.dataDir)).toHaveLength(2); // the image's bytes and record only
      await context.close();
      expect(errors).toEqual([]);
    }, 45_000);
  });
});

test('the server killed mid-upload: "reconnecting…", then it goes on by itself on the same port; the stored bytes are the file', async () => {
  const server = await restartableServer();
  try {
    await server.start();
    const file = await sampleFile(driver, 'through-a-restart.bin', 12 * MiB);
    const { context, page, errors, requests } = await openPage(driver, server.origin, 3 * MiB);
    await page.locator('#files').setInputFiles(file.path);
    await progressReaches(page, file.name, 20);
    await server.kill();

    await waitForState(page, file.name, 'reconnecting', 10_000);
    expect(await row(page, file.name).locator('.status').textContent()).toBe('Reconnecting… the server cannot be reached');
    expect(await buttonsOf(page, file.name)).toEqual(['Pause', 'Cancel']);
    // The live line keeps its last figures, marked as such.
    await row(page, file.name).locator('.server[data-state="unreachable"]').waitFor({ timeout: 10_000 });
    expect(await row(page, file.name).locator('.server').textContent()).toMatch(/^Server: cannot be reached · [\d.]+ (KiB|MiB) received when last seen$/);
    await page.screenshot({ path: join(ARTIFACTS, 'reconnecting.png'), fullPage: true });
    // It keeps waiting while the server is away...
    await page.waitForTimeout(2_500);
    expect(await row(page, file.name).getAttribute('data-state')).toBe('reconnecting');

    // ...and goes on, untouched, once it is back.
    await server.start();
    await waitForState(page, file.name, 'finished', 40_000);
    const uploadUrl = await row(page, file.name).getByRole('link').getAttribute('href');
    expect(requests.filter((r) => r.method === 'POST').length).toBe(1);
    const resumedAt = requests.filter((r) => r.method === 'PATCH' && r.offset !== '0').map((r) => Number(r.offset));
    expect(resumedAt.length).toBeGreaterThan(0);
    expect(resumedAt[0]).toBeGreaterThan(0);
    const id = uploadUrl!.slice(uploadUrl!.lastIndexOf('/') + 1);
    expect(sha256(await readFile(join(server.dataDir, id)))).toBe(file.sha);
    expect(await downloaded(uploadUrl!)).toBe(file.sha);
    await context.close();
    expect(errors).toEqual([]);
  } finally {
    await server.stop();
  }
}, 60_000);

/**
 * A reverse proxy on loopback in front of `upstream`: it forwards every request, except that
 * `method` gets its own HTML error page with `status` (as nginx answers when the upstream is down,
 * or a body is over its client_max_body_size), and OPTIONS, with `hangOptions`, is never answered.
 */
function proxyWithErrorPage(upstream: string, method: string, status: number, statusText: string, hangOptions = false) {
  const target = new URL(upstream);
  return Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 0, // a request left unanswered stays open: the page has to give up on it
    fetch(request) {
      const url = new URL(request.url);
      if (hangOptions && request.method === 'OPTIONS') return new Promise<Response>(() => {});
      if (request.method === method) {
        const html = `<html>\r\n<head><title>${status} ${statusText}</title></head>\r\n<body>\r\n<center><h1>${status} ${statusText}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
        return new Response(html, { status, statusText, headers: { 'Content-Type': 'text/html' } });
      }
      return forward(request, url, target);
    },
  });
}

describe('behind a proxy that answers with its own HTML error page', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server?.stop());

  test('the row shows the status line, not the markup: a 413 on PATCH refused at once; a 502 on POST failed after its retries', async () => {
    // The 413 proxy also never answers OPTIONS: the page goes on without the server's limit.
    const tooLarge = proxyWithErrorPage(server.origin, 'PATCH', 413, 'Payload Too Large', true);
    const badGateway = proxyWithErrorPage(server.origin, 'POST', 502, 'Bad Gateway');
    try {
      const file = await sampleFile(driver, 'behind-proxy.bin', 64 * 1024);
      const [refused, failed] = await Promise.all(
        [
          { proxy: tooLarge, state: 'refused', text: 'Refused: the server answered 413 Payload Too Large', buttons: ['Remove'] },
          { proxy: badGateway, state: 'failed', text: 'Failed: the server answered 502 Bad Gateway', buttons: ['Retry', 'Cancel'] },
        ].map(async (expected) => {
          const { context, page, errors, requests } = await openPage(driver, `http://127.0.0.1:${expected.proxy.port}`, 8 * MiB);
          const started = performance.now();
          await page.locator('#files').setInputFiles(file.path);
          await waitForState(page, file.name, expected.state, 40_000);
          const seconds = (performance.now() - started) / 1000;
          expect(await row(page, file.name).locator('.status').textContent()).toBe(expected.text);
          expect(await buttonsOf(page, file.name)).toEqual(expected.buttons);
          const count = (method: string) => requests.filter((r) => r.method === method).length;
          const sent = { posts: count('POST'), patches: count('PATCH') };
          await context.close();
          expect(errors).toEqual([]);
          return { seconds, ...sent };
        }),
      );
      // Without an answer to OPTIONS the file waited for the page's 10 s timeout, then went on.
      expect(refused!.seconds).toBeGreaterThanOrEqual(9.5);
      expect(refused!).toMatchObject({ posts: 1, patches: 1 });
      // A 502 may pass: the creation is tried again (5 retries), then fails.
      expect(failed!).toMatchObject({ posts: 6, patches: 0 });
    } finally {
      tooLarge.stop(true);
      badGateway.stop(true);
    }
  }, 60_000);
});

describe('cancel and reload', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server?.stop());

  test('Cancel removes the row and DELETEs the upload: the server has nothing of it left', async () => {
    const file = await sampleFile(driver, 'cancelled.bin', 8 * MiB);
    const { context, page, errors, requests } = await openPage(driver, server.origin, 2 * MiB);
    await page.locator('#files').setInputFiles(file.path);
    await progressReaches(page, file.name, 10);
    const uploadUrl = (await storedUploadUrl(page))!;
    expect(await storedFiles(server.dataDir, uploadUrl)).not.toEqual([]);

    const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE');
    await row(page, file.name).getByRole('button', { name: 'Cancel' }).click();
    expect(await row(page, file.name).count()).toBe(0);
    expect((await deleted).status()).toBe(204);
    expect(requests.filter((r) => r.method === 'DELETE').map((r) => r.url)).toEqual([uploadUrl]);
    expect([404, 410]).toContain((await fetch(uploadUrl, { method: 'HEAD', headers: TUS })).status);
    expect(await storedFiles(server.dataDir, uploadUrl)).toEqual([]);
    expect(await storedUploadUrl(page)).toBeUndefined();
    expect(await page.locator('#empty').isVisible()).toBe(true);
    await context.close();
    expect(errors).toEqual([]);
  }, 45_000);

  test('after a reload the page shows the offset the server has now (HEAD), not what it last saw', async () => {
    const file = await sampleFile(driver, 'moved-on.bin', 8 * MiB);
    const { context, page, errors, requests } = await openPage(driver, server.origin, 2 * MiB);
    await page.locator('#files').setInputFiles(file.path);
    await progressReaches(page, file.name, 20);
    await row(page, file.name).getByRole('button', { name: 'Pause', exact: true }).click();
    const uploadUrl = (await storedUploadUrl(page))!;
    await row(page, file.name).locator('.server[data-state="paused"]').waitFor({ timeout: 15_000 });
    const seen = (await serverProgress(uploadUrl)).offset;
    expect(Number(await row(page, file.name).locator('.server').getAttribute('data-received'))).toBe(seen);

    // Another client sends the next MiB while the page is not looking.
    let res: Response | undefined;
    for (let tries = 0; tries < 20 && res?.status !== 204; tries++) {
      if (tries > 0) await Bun.sleep(250); // the page's cut PATCH may still hold the upload's lock
      res = await fetch(uploadUrl, {
        method: 'PATCH',
        headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(seen) },
        body: file.bytes.slice(seen, seen + MiB),
      });
    }
    expect(res?.status).toBe(204);
    const now = seen + MiB;
    expect(res?.headers.get('Upload-Offset')).toBe(String(now));

    requests.length = 0;
    await page.reload();
    const earlier = page.locator('#earlier-list li');
    await earlier.waitFor();
    expect(await earlier.locator('.status').textContent()).toBe(`${formatBytes(now)} of 8.0 MiB (${Math.floor((now / file.size) * 100)}%) on the server`);
    expect(requests.filter((r) => r.method === 'HEAD').map((r) => r.url)).toEqual([uploadUrl]);

    requests.length = 0;
    await page.locator('#files').setInputFiles(file.path);
    await waitForState(page, file.name, 'choice');
    expect(requests.filter((r) => r.method === 'HEAD').map((r) => r.url)).toEqual([uploadUrl]);
    expect(await row(page, file.name).locator('.status').textContent()).toBe(
      `An earlier upload stopped at ${formatBytes(now)} (${Math.floor((now / file.size) * 100)}%)`,
    );
    await row(page, file.name).getByRole('button', { name: 'Resume', exact: true }).click();
    await waitForState(page, file.name, 'finished');
    expect(requests.find((r) => r.method === 'PATCH')).toEqual({ method: 'PATCH', url: uploadUrl, offset: String(now) });
    expect(await downloaded(uploadUrl)).toBe(file.sha);
    await context.close();
    expect(errors).toEqual([]);
  }, 45_000);
});
