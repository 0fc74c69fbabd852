import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createUpload, randomBytes, sha256, slowBody, startServer, type TestServer, TUS } from '../support/server.ts';
import { STATE_KINDS } from '../support/state-stores.ts';

const PATCH = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

for (const kind of STATE_KINDS) {
  describe(`the expiry sweep on the ${kind.name} state`, () => {
    let server: TestServer;
    beforeAll(async () => {
      // Uploads expire 1 s after their last write; a short lease, so a stop request would reach a PATCH at once.
      const { state, locker } = await kind.make({ leaseMs: 600 });
      server = await startServer({ state, locker, uploadTtlSeconds: 1 });
    });
    afterAll(() => server.stop());

    test('an upload whose expiry passes while a PATCH writes it is in use: the sweep neither cuts nor removes it', async () => {
      const bytes = randomBytes(12 * 1024);
      const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
      // 12 pieces 200 ms apart: the PATCH runs about 2.2 s, well past the upload's expiry.
      const patch = fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: slowBody(bytes, 200, 1024), duplex: 'half' } as RequestInit);
      await Bun.sleep(1500);
      // In use, not gone: HEAD answers as for any upload being written.
      const head = await fetch(url, { method: 'HEAD', headers: TUS });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('Upload-Offset'))).toBeLessThan(bytes.length);
      expect(await server.tusflow.engine.cleanup()).toBe(0);
      const res = await patch;
      expect(res.status).toBe(204);
      expect(res.headers.get('Upload-Offset')).toBe(String(bytes.length));
      expect(sha256(await (await fetch(url)).arrayBuffer())).toBe(sha256(bytes));
    });

    test('a PATCH that fails past the expiry (a wrong checksum) leaves the upload expired: HEAD 410 at once', async () => {
      const bytes = randomBytes(8 * 1024);
      const url = await createUpload(server.endpoint, { 'Upload-Length': String(bytes.length) });
      const wrong = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest('SHA-1', new Uint8Array(1)))));
      const res = await fetch(url, {
        method: 'PATCH',
        headers: { ...PATCH, 'Upload-Offset': '0', 'Upload-Checksum': `sha1 ${wrong}` },
        body: slowBody(bytes, 200, 1024),
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(460);
      expect((await fetch(url, { method: 'HEAD', headers: TUS })).status).toBe(410);
    });

    test('an expired upload no PATCH is writing: a new PATCH gets 410, not a lock of its own that makes it look in use', async () => {
      const url = await createUpload(server.endpoint, { 'Upload-Length': '10' });
      await Bun.sleep(1100);
      expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: 'abc' })).status).toBe(410);
      expect((await fetch(url, { method: 'HEAD', headers: TUS })).status).toBe(410);
    });

    test('once the PATCH has ended and the upload expired, the sweep removes it', async () => {
      const url = await createUpload(server.endpoint, { 'Upload-Length': '10' });
      expect((await fetch(url, { method: 'PATCH', headers: { ...PATCH, 'Upload-Offset': '0' }, body: 'abc' })).status).toBe(204);
      await Bun.sleep(1200);
      expect(await server.tusflow.engine.cleanup()).toBeGreaterThanOrEqual(1);
      expect((await fetch(url, { method: 'HEAD', headers: TUS })).status).toBe(404);
    });
  });
}
