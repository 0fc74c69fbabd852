import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTusflow, type Tusflow, type TusflowOptions } from '../../src/index.ts';
import { FileDataStore } from '../../src/storage/file/store.ts';
import { FileStateStore } from '../../src/state/file.ts';

export interface TestServer {
  /** The tus collection URL, e.g. http://127.0.0.1:PORT/files/ */
  endpoint: string;
  origin: string;
  tusflow: Tusflow;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * A real server on a loopback socket, with the embedded file stores in a fresh temp dir unless the
 * options bring their own stores.
 */
export async function startServer(options: TusflowOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tusflow-test-'));
  const tusflow = createTusflow({
    store: new FileDataStore(dataDir),
    state: new FileStateStore(dataDir),
    // A server of its own, as the entries run it: the page, /health and /metrics.
    webPage: true,
    health: true,
    metrics: true,
    ...options,
  });
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch: (request, bun) => tusflow.fetch(request, { remoteAddress: bun.requestIP(request)?.address }),
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  });
  const origin = `http://127.0.0.1:${server.port}`;
  return {
    endpoint: `${origin}${options.path ?? '/files'}/`,
    origin,
    tusflow,
    dataDir,
    async stop() {
      await server.stop(true);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export const TUS = { 'Tus-Resumable': '1.0.0' };

/** Creates an upload with raw fetch; resolves with its absolute URL. */
export async function createUpload(endpoint: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ...TUS, ...headers } });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return res.headers.get('Location')!;
}

export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(out.subarray(at, Math.min(size, at + 65_536)));
  return out;
}

export function sha256(bytes: Uint8Array | ArrayBuffer): string {
  return new Bun.CryptoHasher('sha256').update(bytes).digest('hex');
}

/** A body that sends `bytes` in pieces of `piece` bytes, `delayMs` apart: a slow client. */
export function slowBody(bytes: Uint8Array, delayMs: number, piece = 1024 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    async pull(controller) {
      if (at >= bytes.length) return controller.close();
      if (at > 0) await Bun.sleep(delayMs);
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}
