// src/web/page.generated.ts is committed; it must be what `npm run build:web` makes of the sources.
import { expect, test } from 'bun:test';
import { readFile } from 'node:fs/promises';
import { buildPage, GENERATED, generatedSource } from '../../scripts/build-web.ts';
import { PAGE_HTML } from '../../src/web/page.generated.ts';

test('page.generated.ts is up to date with src/web (else: npm run build:web)', async () => {
  const page = await buildPage();
  expect(PAGE_HTML).toBe(page);
  expect(await readFile(GENERATED, 'utf8')).toBe(generatedSource(page));
}, 30_000);

test('the page is one document: script and styles inlined, nothing that ends the script early', () => {
  expect(PAGE_HTML).toStartWith('<!doctype html>');
  expect(PAGE_HTML).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet/);
  expect(PAGE_HTML.match(/<\/script>/g)?.length).toBe(1);
  expect(PAGE_HTML.match(/<\/style>/g)?.length).toBe(1);
});
