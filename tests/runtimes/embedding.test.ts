import { afterAll, beforeAll, expect, test } from 'bun:test';
import { Hono } from 'hono';
import { createTusflow } from '../../src/index.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

// A user's own app: the upload server mounted under /api/uploads, next to the app's own routes.
const tusflow = createTusflow({ path: '/api/uploads' });
const userApp = new Hono();
userApp.get('/api/health', (c) => c.text('ok'));
userApp.route('/', tusflow.app);

// And a plain Request → Response handler, as any framework that speaks fetch would call it.
const plain = createTusflow({ path: '/api/uploads' });
const handler = (request: Request) => plain.fetch(request);

let hono: ReturnType<typeof Bun.serve>;
let bare: ReturnType<typeof Bun.serve>;
beforeAll(() => {
  hono = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: userApp.fetch });
  bare = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (req) => (new URL(req.url).pathname.startsWith('/api/uploads') ? handler(req) : new Response('mine')) });
});
afterAll(() => {
  hono.stop(true);
  bare.stop(true);
});

for (const [name, server] of [
  ['mounted in a Hono app', () => hono],
  ['as a plain fetch handler', () => bare],
] as const) {
  test(`${name}: uploads live under /api/uploads/, the app's own routes still answer`, async () => {
    const base = `http://127.0.0.1:${server().port}`;
    const bytes = randomBytes(3 * 1024 * 1024 + 1);
    const { url } = await tusUpload(`${base}/api/uploads/`, bytes, { chunkSize: 1024 * 1024 });
    expect(url).toStartWith(`${base}/api/uploads/`);
    expect(sha256(new Uint8Array(await (await fetch(url)).arrayBuffer()))).toBe(sha256(bytes));
    const head = await fetch(url, { method: 'HEAD', headers: TUS });
    expect(head.headers.get('Upload-Offset')).toBe(String(bytes.length));
    const options = await fetch(`${base}/api/uploads/`, { method: 'OPTIONS' });
    expect(options.headers.get('Tus-Version')).toBe('1.0.0');
    expect((await fetch(`${base}/files/`, { method: 'OPTIONS' })).headers.get('Tus-Version')).toBeNull();
  });
}

test('the app routes of the user still work next to the mounted server', async () => {
  expect(await (await fetch(`http://127.0.0.1:${hono.port}/api/health`)).text()).toBe('ok');
});
