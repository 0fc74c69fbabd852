import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes, sha256, startServer, TUS, type TestServer } from '../support/server.ts';
import { startCaddy, startNginx, type ProxyProcess } from '../support/proxies.ts';
import { tusUpload } from '../support/tus-client.ts';

// A real nginx and a real Caddy, each running the README's configuration, in front of a server with
// TRUST_PROXY: clients only ever talk to the proxy, under its /uploads/ prefix.
const MiB = 1024 * 1024;
const proxies = { nginx: startNginx, caddy: startCaddy };

for (const [name, start] of Object.entries(proxies)) {
  describe(`through ${name} (the README's configuration)`, () => {
    let server: TestServer;
    let proxy: ProxyProcess;
    let endpoint: string;
    const clients: (string | undefined)[] = [];
    beforeAll(async () => {
      const hooks = {
        'pre-create': ({ request }: { request?: { remoteAddress?: string } }) => {
          clients.push(request?.remoteAddress);
          return {};
        },
      };
      server = await startServer({ trustProxy: true, webPage: true, hooks });
      proxy = await start(Number(new URL(server.origin).port));
      endpoint = `${proxy.origin}/uploads/files/`;
    });
    afterAll(async () => {
      await proxy?.stop();
      await server?.stop();
    });

    test('Location names the public host, port and prefix', async () => {
      const res = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '3' } });
      expect(res.status).toBe(201);
      expect(res.headers.get('Location')).toMatch(new RegExp(`^http://localhost:${proxy.port}/uploads/files/[\\w-]+$`));
      // The server itself listens elsewhere: nothing of its own address leaks out.
      expect(res.headers.get('Location')).not.toContain(new URL(server.origin).port);
    });

    test('what a client sends as if it were a proxy does not get through: Location and the client address are the proxy’s', async () => {
      clients.length = 0;
      const spoof = {
        Forwarded: 'for=192.0.2.66;host=evil.example;proto=https',
        'X-Forwarded-For': '192.0.2.67',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Port': '4444',
        'X-Forwarded-Prefix': '/evil',
      };
      const res = await fetch(endpoint, { method: 'POST', headers: { ...TUS, ...spoof, 'Upload-Length': '3' } });
      expect(res.status).toBe(201);
      expect(res.headers.get('Location')).toMatch(new RegExp(`^http://localhost:${proxy.port}/uploads/files/[\\w-]+$`));
      expect(clients).toEqual(['127.0.0.1']);
    });

    test('a PATCH streams through (an interrupted one keeps what arrived), resumes, and the stored bytes are identical', async () => {
      const bytes = randomBytes(16 * MiB);
      const created = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
      const url = created.headers.get('Location')!;
      expect(url).toStartWith(endpoint);
      // Half the bytes, then the client stalls and goes away: with request buffering on, the proxy
      // would not have passed the unfinished body on, and the server would hold nothing.
      const client = new AbortController();
      const half = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.slice(0, 8 * MiB));
        },
      });
      const interrupted = fetch(url, {
        method: 'PATCH',
        headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
        body: half,
        signal: client.signal,
      }).catch(() => undefined);
      await Bun.sleep(1500);
      client.abort();
      await interrupted;
      let offset = 0;
      for (let tries = 0; tries < 100 && offset === 0; tries++) {
        await Bun.sleep(100);
        offset = Number((await fetch(url, { method: 'HEAD', headers: TUS })).headers.get('Upload-Offset'));
      }
      expect(offset).toBeGreaterThan(0);
      expect(offset).toBeLessThanOrEqual(8 * MiB);
      // tus-js-client goes on from there through the proxy, the rest in one PATCH.
      const rest = await tusUpload(endpoint, bytes, { uploadUrl: url });
      expect(rest.aborted).toBe(false);
      const id = url.split('/').pop()!;
      expect(sha256(await readFile(join(server.dataDir, id)))).toBe(sha256(bytes));
      // And downloaded through the proxy.
      expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(bytes));
    });

    test('the upload page under the prefix points its uploads at the prefixed endpoint', async () => {
      const page = await (await fetch(`${proxy.origin}/uploads/`)).text();
      expect(page).toContain('name="tus-endpoint" content="/uploads/files/"');
    });
  });
}

describe('RELATIVE_LOCATION through nginx', () => {
  let server: TestServer;
  let proxy: ProxyProcess;
  beforeAll(async () => {
    server = await startServer({ trustProxy: true, relativeLocation: true });
    proxy = await startNginx(Number(new URL(server.origin).port));
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  test('Location is the public path; tus-js-client resolves it against its endpoint and the bytes arrive', async () => {
    const endpoint = `${proxy.origin}/uploads/files/`;
    const res = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
    expect(res.headers.get('Location')).toMatch(/^\/uploads\/files\/[\w-]+$/);
    const bytes = randomBytes(3 * MiB);
    const { url } = await tusUpload(endpoint, bytes, { chunkSize: MiB });
    expect(url).toStartWith(endpoint);
    expect(sha256(await readFile(join(server.dataDir, url.split('/').pop()!)))).toBe(sha256(bytes));
  });
});
