/**
 * The Node entry streams request bodies: @hono/node-server hands the engine each body as a web
 * stream that reads the socket as the engine asks, so one 256 MiB PATCH into the file store never
 * holds more than a little of it. Peak RSS of the server process is read from /proc (VmHWM).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.ts';
import { type ServerProcess, spawnServer } from '../support/process.ts';
import { randomBytes, sha256 } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

const MiB = 1024 * 1024;
let server: ServerProcess;
let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tusflow-node-stream-'));
  server = await spawnServer({ DATA_DIR: dir, LOG: 'false' }, [Bun.which('node') ?? 'node', 'dist/runtime/node.js']);
}, 60_000);

afterAll(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'))![1]) * 1024;

test('one 256 MiB PATCH through the Node entry: stored byte for byte, peak RSS far below the body', async () => {
  const before = peakRss();
  const bytes = randomBytes(256 * MiB);
  const { url } = await tusUpload(server.endpoint, bytes);
  const id = url.split('/').pop()!;
  expect(sha256(readFileSync(join(dir, id)))).toBe(sha256(bytes));
  const peak = peakRss();
  console.log(`node entry: peak RSS ${Math.round(before / MiB)} MiB before, ${Math.round(peak / MiB)} MiB after a 256 MiB PATCH`);
  // A server that read the body whole would peak above 256 MiB.
  expect(peak).toBeLessThan(160 * MiB);
}, 60_000);
