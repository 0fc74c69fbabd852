/**
 * The Bun and Node entries cut a request only when its client is silent: a body that trickles for
 * longer than the connection's idle bound (CONNECTION_IDLE_TIMEOUT_SECONDS, which Bun counts from
 * the request's start) is not cut, with or without Upload-Checksum; a body that stops sending is cut
 * after BODY_IDLE_TIMEOUT_SECONDS, keeping what arrived; a connection that sends nothing is still closed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.ts';
import { type ServerProcess, spawnServer } from '../support/process.ts';

const TUS = { 'Tus-Resumable': '1.0.0' };
const RUNTIMES: Record<string, string[]> = {
  bun: [process.execPath, 'src/runtime/bun.ts'],
  node: [Bun.which('node') ?? 'node', 'dist/runtime/node.js'],
};
let server: ServerProcess;

async function create(length: number, on: ServerProcess = server): Promise<string> {
  const res = await fetch(on.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } });
  expect(res.status).toBe(201);
  return new URL(res.headers.get('Location') as string, on.endpoint).href;
}

async function offsetOf(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: TUS });
  return Number(res.headers.get('Upload-Offset'));
}

interface Outcome {
  /** The status line's code, or undefined when the server closed without an answer. */
  status?: number;
  ms: number;
}

/** Opens a raw connection; resolves when the server closes it, with the status it answered if any. */
function open(url: string): { socket: Socket; done: Promise<Outcome> } {
  const { hostname, port } = new URL(url);
  const started = performance.now();
  const socket = connect({ host: hostname, port: Number(port) });
  let text = '';
  socket.on('data', (d) => {
    text += d.toString('latin1');
  });
  socket.on('error', () => {});
  const done = new Promise<Outcome>((resolve) =>
    socket.on('close', () => {
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: match ? Number(match[1]) : undefined, ms: performance.now() - started });
    }),
  );
  return { socket, done };
}

/** A PATCH that sends `bytes` one at a time, `everyMs` apart, then `stopAfter` of them at most. */
function trickle(url: string, bytes: Uint8Array, everyMs: number, o: { checksum?: boolean; stopAfter?: number } = {}): Promise<Outcome> {
  const { socket, done } = open(url);
  const path = new URL(url).pathname;
  const checksum = o.checksum ? `Upload-Checksum: sha1 ${new Bun.CryptoHasher('sha1').update(bytes).digest('base64')}\r\n` : '';
  socket.write(
    `PATCH ${path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nContent-Length: ${bytes.length}\r\n${checksum}Connection: close\r\n\r\n`,
  );
  void (async () => {
    for (let i = 0; i < Math.min(bytes.length, o.stopAfter ?? bytes.length); i++) {
      await Bun.sleep(everyMs);
      if (socket.destroyed) return;
      socket.write(bytes.subarray(i, i + 1));
    }
  })();
  return done;
}

for (const [runtime, command] of Object.entries(RUNTIMES)) {
  describe(`runtime ${runtime}`, () => {
    let dir: string;
    beforeAll(async () => {
      if (runtime === 'node') await ensureBuilt();
      dir = mkdtempSync(join(tmpdir(), 'tusflow-idle-'));
      // Bun's socket timer moves in 4 s steps: a 1 s bound closes a silent connection within 4 to 12 s.
      server = await spawnServer({ DATA_DIR: dir, CONNECTION_IDLE_TIMEOUT_SECONDS: '1', BODY_IDLE_TIMEOUT_SECONDS: '2' }, command);
    }, 60_000);
    afterAll(async () => {
      await server?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    test(`[${runtime}] a body that trickles past the connection bound is not cut, with and without a checksum; a silent connection is`, async () => {
      const bytes = new TextEncoder().encode('a slow but steady upload');
      const [plain, checked] = await Promise.all([create(bytes.length), create(bytes.length)]);
      const silent = open(server.endpoint).done;
      const headersOnly = open(server.endpoint);
      headersOnly.socket.write('PATCH /files/x HTTP/1.1\r\nHost: x\r\n');

      // 24 bytes, one every 600 ms: 14.4 s, longer than the 1 s bound ever lasts (at most 12 s, see
      // above; Bun closed the silent ones at 12.0 s here, so a 12 s trickle would race them).
      const [a, b, s, h] = await Promise.all([trickle(plain, bytes, 600), trickle(checked, bytes, 600, { checksum: true }), silent, headersOnly.done]);
      expect(a.status).toBe(204);
      expect(b.status).toBe(204);
      expect(a.ms).toBeGreaterThan(14_000);
      expect(await offsetOf(plain)).toBe(bytes.length);
      expect(await offsetOf(checked)).toBe(bytes.length);
      // The bound still holds where no body streams, and it ends before the trickles did.
      // Bun closes such a connection without a word; node:http answers 408 Request Timeout first.
      const closed = runtime === 'node' ? 408 : undefined;
      expect(s.status).toBe(closed);
      expect(h.status).toBe(closed);
      expect(s.ms).toBeLessThan(a.ms);
      expect(h.ms).toBeLessThan(a.ms);
      // node:http checks its headers bound every 250 ms here: 1 s, and slack for a loaded machine.
      if (runtime === 'node') expect(Math.max(s.ms, h.ms)).toBeLessThan(4_000);
      console.log(`[${runtime}] silent connection closed after ${Math.round(s.ms)} ms, unfinished headers after ${Math.round(h.ms)} ms; trickle ${Math.round(a.ms)} ms`);
    }, 30_000);

    test(`[${runtime}] a body that stops sending is cut after BODY_IDLE_TIMEOUT_SECONDS, keeping what arrived (nothing with a checksum)`, async () => {
      const bytes = new TextEncoder().encode('stops after eight bytes');
      const [plain, checked] = await Promise.all([create(bytes.length), create(bytes.length)]);
      const [a, b] = await Promise.all([trickle(plain, bytes, 100, { stopAfter: 8 }), trickle(checked, bytes, 100, { checksum: true, stopAfter: 8 })]);
      // 0.8 s of bytes, then 2 s of silence: answered, not left to the connection bound.
      expect(a.status).toBe(204);
      expect(a.ms).toBeGreaterThan(2_500);
      expect(a.ms).toBeLessThan(6_000);
      expect(b.status).toBe(400); // BODY_INTERRUPTED: a cut body cannot match its checksum
      expect(b.ms).toBeLessThan(6_000);
      expect(await offsetOf(plain)).toBe(8);
      expect(await offsetOf(checked)).toBe(0);
    }, 30_000);

    test(`[${runtime}] a client that goes away mid-body ends its PATCH at once, keeping what arrived`, async () => {
      // A body bound far above what is measured: only the aborted request can end the PATCH in time.
      const away = await spawnServer({ DATA_DIR: dir, BODY_IDLE_TIMEOUT_SECONDS: '30' }, command);
      try {
        const bytes = new TextEncoder().encode('the client leaves after eight bytes');
        const url = await create(bytes.length, away);
        const { socket, done } = open(url);
        socket.write(
          `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
            `Content-Type: application/offset+octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`,
        );
        socket.write(bytes.subarray(0, 8));
        await Bun.sleep(300);
        const left = performance.now();
        socket.destroy();
        await done;
        // The aborted request, not the 30 s body bound, ends the PATCH: the upload is free again at once.
        let offset = await offsetOf(url);
        while (offset !== 8 && performance.now() - left < 10_000) {
          await Bun.sleep(20);
          offset = await offsetOf(url);
        }
        const ms = performance.now() - left;
        console.log(`[${runtime}] PATCH ended ${Math.round(ms)} ms after its client left`);
        expect(offset).toBe(8);
        // Slack for a loaded machine, still far below the body bound.
        expect(ms).toBeLessThan(5_000);
        const rest = await fetch(url, {
          method: 'PATCH',
          headers: { ...TUS, 'Upload-Offset': '8', 'Content-Type': 'application/offset+octet-stream' },
          body: bytes.subarray(8),
        });
        expect(rest.status).toBe(204);
        expect(await offsetOf(url)).toBe(bytes.length);
        expect(await (await fetch(url)).text()).toBe(new TextDecoder().decode(bytes));
      } finally {
        await away.kill();
      }
    }, 30_000);
  });
}
