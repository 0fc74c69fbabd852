/**
 * The Node entry started the ways people start it, also without the file's extension
 * (`node dist/runtime/node`, `node bin/tusflow serve`), where Node's argv[1] names no file that
 * exists: it serves, and the bytes of an upload through it are stored as sent.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.ts';
import { spawnServer } from '../support/process.ts';
import { randomBytes, sha256 } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

const node = Bun.which('node') ?? 'node';
let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tusflow-node-entry-'));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const command of [
  [node, 'dist/runtime/node'],
  [node, 'bin/tusflow', 'serve'],
]) {
  test(`${command.slice(1).join(' ')}: starts and stores an upload`, async () => {
    const server = await spawnServer({ DATA_DIR: dir, LOG: 'false' }, command);
    try {
      const bytes = randomBytes(256 * 1024);
      const { url } = await tusUpload(server.endpoint, bytes);
      expect(sha256(readFileSync(join(dir, url.split('/').pop()!)))).toBe(sha256(bytes));
      expect(server.proc.exitCode).toBeNull();
    } finally {
      await server.kill();
    }
  });
}
