/**
 * The Bun entry cuts a request only when its client is silent: a body that trickles for longer than
 * the connection's idle bound (CONNECTION_IDLE_TIMEOUT_SECONDS, which Bun counts from the request's
 * start) is not cut, with or without Upload-Checksum; a body that stops sending is cut after
 * BODY_IDLE_TIMEOUT_SECONDS, keeping what arrived; a connection that sends nothing is still closed.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ServerProcess, spawnServer } from '../support/process.ts';

const TUS = { 'Tus-Resumable': '1.0.0' };
let server: ServerProcess;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tusflow-idle-'));
  // Bun's socket timer moves in 4 s steps: a 1 s bound closes a silent connection within 4 to 12 s.
  server = await spawnServer({ DATA_DIR: dir, CONNECTION_IDLE_TIMEOUT_SECONDS: '1', BODY_IDLE_TIMEOUT_SECONDS: '2' });
});

afterAll(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function create(length: number): Promise<string> {
  const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } });
  expect(res.status).toBe(201);
  return new URL(res.headers.get('Location') as string, server.endpoint).href;
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

test('a body that trickles past the connection bound is not cut, with and without a checksum; a silent connection is', async () => {
  const bytes = new TextEncoder().encode('a slow but steady upload');
  const [plain, checked] = await Promise.all([create(bytes.length), create(bytes.length)]);
  const silent = open(server.endpoint).done;
  const headersOnly = open(server.endpoint);
  headersOnly.socket.write('PATCH /files/x HTTP/1.1\r\nHost: x\r\n');

  // 24 bytes, one every 500 ms: 12 s, longer than the 1 s bound ever lasts (at most 12 s, see above).
  const [a, b, s, h] = await Promise.all([trickle(plain, bytes, 500), trickle(checked, bytes, 500, { checksum: true }), silent, headersOnly.done]);
  expect(a.status).toBe(204);
  expect(b.status).toBe(204);
  expect(a.ms).toBeGreaterThan(11_500);
  expect(await offsetOf(plain)).toBe(bytes.length);
  expect(await offsetOf(checked)).toBe(bytes.length);
  // The bound still holds where no body streams, and it ends before the trickles did.
  expect(s.status).toBeUndefined();
  expect(h.status).toBeUndefined();
  expect(s.ms).toBeLessThan(a.ms);
  expect(h.ms).toBeLessThan(a.ms);
}, 30_000);

test('a body that stops sending is cut after BODY_IDLE_TIMEOUT_SECONDS, keeping what arrived (nothing with a checksum)', async () => {
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
