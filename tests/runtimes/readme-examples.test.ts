/**
 * Every example of the README's Embedding section, run as written on the runtime its marker names
 * (`<!-- example: bun|node|deno -->` above its ```ts block): only the package's import specifiers
 * become the files the package's exports map names for that runtime, and port 3000 a free port.
 * Through each: a tus-js-client upload read back byte for byte, the app's own route still
 * answering, the page, /health and /metrics present only where the example turns them on, and a
 * body over Bun's default 128 MiB cap taken in (the bytes that arrived are kept when the client goes).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import Redis from 'ioredis';
import { envSchema } from '../../src/wiring/config.ts';
import { ensureBuilt } from '../support/build.ts';
import { freePort } from '../support/process.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { REDIS_URL } from '../support/state-stores.ts';
import { tusUpload } from '../support/tus-client.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SECTION = README.slice(README.indexOf('\n### Embedding\n'), README.indexOf('\n## ', README.indexOf('\n### Embedding\n') + 1));
const BLOCKS = [...SECTION.matchAll(/(?:<!-- example: (\w+) -->\n)?```ts\n([\s\S]*?)```/g)].map((m) => ({ runtime: m[1], code: m[2]! }));

type Runtime = 'bun' | 'node' | 'deno';
const EXPORTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> }).exports;
/** The file the exports map gives `specifier` on `runtime` (Node: the `import` condition). */
function resolveExport(specifier: string, runtime: Runtime): string {
  const entry = EXPORTS[`.${specifier.slice('tusflow'.length)}`];
  if (entry === undefined) throw new Error(`the exports map has no ${specifier}`);
  const target = typeof entry === 'string' ? entry : (entry[runtime === 'node' ? 'import' : runtime] ?? entry.default);
  return join(ROOT, target!);
}

const COMMANDS: Record<Runtime, (file: string) => string[]> = {
  bun: (file) => [process.execPath, file],
  node: (file) => [Bun.which('node') ?? 'node', file],
  deno: (file) => [
    join(ROOT, 'node_modules/.bin/deno'),
    'run',
    '--config',
    join(ROOT, 'deno.json'),
    '--allow-net',
    '--allow-env',
    '--allow-read',
    '--allow-write',
    '--allow-sys',
    file,
  ],
};
// The environment of a user who set none of the server's variables (tusflowFromEnv reads them).
const KEYS = Object.keys(envSchema.shape);
const CLEAN = Object.fromEntries(Object.entries(process.env).filter(([name]) => !KEYS.includes(name))) as Record<string, string>;
const EXAMPLES_DIR = join(ROOT, '.tmp/readme-examples');

test('every ts block of the Embedding section is a marked, runnable example', () => {
  expect(BLOCKS.length).toBeGreaterThanOrEqual(4);
  expect(BLOCKS.filter((b) => !b.runtime || !(b.runtime in COMMANDS))).toEqual([]);
  expect(new Set(BLOCKS.map((b) => b.runtime))).toEqual(new Set(['bun', 'node', 'deno']));
  for (const { code } of BLOCKS) expect(code.match(/port: 3000\b/g)?.length).toBe(1);
});

BLOCKS.forEach(({ runtime: marked, code }, index) => {
  const runtime = marked as Runtime;
  describe(`README Embedding example ${index + 1} (${runtime})`, () => {
    let proc: Subprocess<'ignore', 'pipe', 'pipe'>;
    let output = '';
    let cwd: string;
    let base: string;
    const created: string[] = [];

    beforeAll(async () => {
      if (runtime === 'node') await ensureBuilt();
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      const source = code
        .replace(/from '(tusflow(?:\/[\w-]+)?)'/g, (_, specifier: string) => `from '${resolveExport(specifier, runtime)}'`)
        .replace(/port: 3000\b/, `port: ${port}`);
      mkdirSync(EXAMPLES_DIR, { recursive: true });
      // Inside the checkout, so that hono and the other packages resolve from its node_modules.
      const file = join(EXAMPLES_DIR, `example-${index + 1}.${runtime === 'node' ? 'mjs' : 'ts'}`);
      writeFileSync(file, source);
      cwd = mkdtempSync(join(tmpdir(), 'tusflow-readme-'));
      proc = Bun.spawn(COMMANDS[runtime](file), { cwd, env: CLEAN, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
      const drain = async (stream: ReadableStream<Uint8Array>) => {
        const decoder = new TextDecoder();
        for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
      };
      void drain(proc.stdout);
      void drain(proc.stderr);
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the example did not serve (exit ${proc.exitCode}):\n${output}`);
        const answered = await fetch(`${base}/api/hello`).catch(() => undefined);
        if (answered?.ok) break;
        await Bun.sleep(50);
      }
    }, 90_000);

    afterAll(async () => {
      proc?.kill('SIGKILL');
      await proc?.exited;
      if (cwd) rmSync(cwd, { recursive: true, force: true });
      if (code.includes("prefix: 'tus:'") && created.length > 0) {
        // The example keeps its records in the local Redis under tus:; remove what this test made.
        const redis = new Redis(REDIS_URL);
        for (const id of created) {
          const keys = (await redis.keys('tus:*')).filter((key) => key.includes(id));
          if (keys.length > 0) await redis.del(...keys);
          await redis.zrem('tus:expiries', id);
        }
        await redis.quit();
      }
    });

    test('a tus-js-client upload through it is stored byte for byte, and the app keeps its own route', async () => {
      const bytes = randomBytes(3 * MiB + 1);
      const { url } = await tusUpload(`${base}/api/uploads/`, bytes, { chunkSize: MiB });
      created.push(url.split('/').pop()!);
      expect(url).toStartWith(`${base}/api/uploads/`);
      const head = await fetch(url, { method: 'HEAD', headers: TUS });
      expect(head.headers.get('Upload-Offset')).toBe(String(bytes.length));
      expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(bytes));
      expect(await (await fetch(`${base}/api/hello`)).text()).toBe('hello');
    }, 60_000);

    test('the page, /health and /metrics answer only where the example turns them on', async () => {
      for (const [path, option] of [
        ['/', 'webPage'],
        ['/health', 'health'],
        ['/metrics', 'metrics'],
      ] as const) {
        const res = await fetch(`${base}${path}`);
        await res.arrayBuffer();
        expect([path, res.status]).toEqual([path, code.includes(`${option}: true`) ? 200 : 404]);
      }
    });

    test('a body over 128 MiB (Bun’s default cap) is taken in; a client that leaves keeps what arrived', async () => {
      const length = 128 * MiB + 1;
      const create = await fetch(`${base}/api/uploads/`, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } });
      expect(create.status).toBe(201);
      const url = new URL(create.headers.get('Location')!, base);
      created.push(url.pathname.split('/').pop()!);
      const socket = connect({ host: '127.0.0.1', port: Number(url.port) });
      let answer = '';
      socket.on('data', (d) => {
        answer += d.toString('latin1');
      });
      socket.on('error', () => {});
      await new Promise<void>((ready) => socket.once('connect', () => ready()));
      socket.write(
        `PATCH ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
          `Content-Type: application/offset+octet-stream\r\nContent-Length: ${length}\r\n\r\n`,
      );
      const sent = randomBytes(MiB);
      await new Promise<void>((written) => socket.write(sent, () => written()));
      await Bun.sleep(500);
      // Refused, Bun would have answered 413 at once.
      expect(answer).toBe('');
      socket.destroy();
      let offset = '';
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(50)) {
        offset = (await fetch(url, { method: 'HEAD', headers: TUS })).headers.get('Upload-Offset') ?? '';
        if (offset === String(MiB)) break;
      }
      expect(offset).toBe(String(MiB));
    }, 30_000);
  });
});
