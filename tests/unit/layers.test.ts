/**
 * The layers of src/ only look down (see README "Layout"): model ← storage/state ← engine ← http ←
 * wiring ← runtime. Checked on the import statements themselves, so a new import that breaks the
 * picture fails here, not in a review.
 */
import { expect, test } from 'bun:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dir, '../../src');

/** What each folder may import besides itself (libraries are not checked). */
const ALLOWED: Record<string, string[]> = {
  model: [],
  observability: ['model'],
  protocol: ['model', 'observability'],
  storage: ['model'],
  state: ['model'],
  hooks: ['model'],
  engine: ['model', 'storage', 'state', 'hooks', 'observability'],
  // storage and state: the types of the stores createTusflow takes.
  http: ['model', 'protocol', 'engine', 'hooks', 'storage', 'state', 'observability', 'web'],
  wiring: ['model', 'protocol', 'engine', 'hooks', 'storage', 'state', 'http', 'observability'],
  runtime: ['wiring', 'model', 'observability', 'state', 'index.ts'],
  web: ['model'],
  'index.ts': ['wiring', 'model', 'protocol', 'engine', 'hooks', 'storage', 'state', 'http', 'observability'],
  // The package's subpath entries (tusflow/s3, tusflow/file...): re-exports only.
  entries: ['wiring', 'storage', 'state'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The folder of src/ a file belongs to (or the file itself, for files at the top). */
const layer = (path: string) => relative(SRC, path).split('/')[0]!;

function imports(path: string): string[] {
  const source = readFileSync(path, 'utf8');
  return [...source.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(['"](\.[^'"]+)['"]\)/g)].map((m) => resolve(dirname(path), m[1] ?? m[2]!));
}

const edges = files(SRC).flatMap((from) => imports(from).map((to) => ({ from, to })));

test('every folder imports only the layers below it', () => {
  const wrong = misplaced(edges).map(({ from, to }) => `${relative(SRC, from)} → ${relative(SRC, to)}`);
  expect(wrong).toEqual([]);
});

/** Imports between folders that the table does not allow. */
const misplaced = (list: { from: string; to: string }[]) => list.filter(({ from, to }) => layer(from) !== layer(to) && !(ALLOWED[layer(from)] ?? []).includes(layer(to)));

// The first test holds every import to the table, so folders are free of cycles exactly when the table is.
test('the table of layers has no cycle', () => {
  const graph = new Map(Object.entries(ALLOWED).map(([from, to]) => [from, new Set(to)]));
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    if (path.includes(node)) return void cycles.push([...path.slice(path.indexOf(node)), node].join(' → '));
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
  };
  for (const node of graph.keys()) visit(node, []);
  expect(cycles).toEqual([]);
});

test('the check would catch an adapter importing the protocol', () => {
  const fake = { from: join(SRC, 'storage/s3/store.ts'), to: join(SRC, 'protocol/download.ts') };
  expect(misplaced([fake])).toEqual([fake]);
  expect(imports(join(SRC, 'http/app.ts')).length).toBeGreaterThan(10);
});
