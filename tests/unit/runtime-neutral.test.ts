/**
 * The core must load on any runtime: outside the runtime entries and the server-only adapters, no
 * `node:` / `bun` imports and no Bun or Deno globals; and the Worker entry's import graph must never
 * reach a server-only adapter.
 */
import { expect, test } from 'bun:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dir, '../..');
const SRC = join(ROOT, 'src');
/** Server-only adapters (file-system stores, TCP Redis: ioredis and Bun's client, node:crypto and node:http for S3) and their wiring. */
const SERVER_ONLY = [
  'src/storage/file/store.ts',
  'src/state/file.ts',
  'src/state/redis-tcp.ts',
  'src/state/redis-bun.ts',
  'src/wiring/server.ts',
  'src/wiring/node-sha256.ts',
  'src/wiring/node-http-fetch.ts',
];
const IMPURE = /from ['"](node:|bun['"]|ioredis['"])|\bBun\.|\bDeno\./;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('no runtime-specific code outside src/runtime/ and the server-only adapters', () => {
  const offenders = files(SRC)
    .map((path) => relative(ROOT, path))
    .filter((path) => !path.startsWith('src/runtime/') && !SERVER_ONLY.includes(path))
    .filter((path) => IMPURE.test(readFileSync(join(ROOT, path), 'utf8')));
  expect(offenders).toEqual([]);
});

function importGraph(entry: string, seen = new Set<string>()): Set<string> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const source = readFileSync(entry, 'utf8');
  for (const match of source.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(['"](\.[^'"]+)['"]\)/g)) {
    importGraph(resolve(dirname(entry), match[1] ?? match[2]!), seen);
  }
  return seen;
}

test("the Worker entry's imports never reach a server-only adapter or node:", () => {
  const graph = [...importGraph(join(SRC, 'runtime/worker.ts'))].map((p) => relative(ROOT, p));
  expect(graph).toContain('src/storage/s3/store.ts');
  expect(graph).toContain('src/state/upstash.ts');
  expect(graph.filter((p) => SERVER_ONLY.includes(p) || p === 'src/wiring/server.ts')).toEqual([]);
  for (const path of graph) expect([path, /from ['"]node:/.test(readFileSync(join(ROOT, path), 'utf8'))]).toEqual([path, false]);
});

test('the check would catch an offender', () => {
  expect(IMPURE.test(`import { x } from 'node:fs';`)).toBe(true);
  expect(IMPURE.test(`const a = Deno.env.get('X');`)).toBe(true);
  expect(IMPURE.test(`import { y } from './y.ts';`)).toBe(false);
});
