import { afterAll, beforeAll, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { Hono } from 'hono';
import { bunServeOptions, createTusflow } from '../../src/index.ts';
import { ensureBuilt } from '../support/build.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { tusUpload } from '../support/tus-client.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

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

test('mounted, tusflow adds only its tus routes: the page, /health and /metrics are opt-in', async () => {
  const base = `http://127.0.0.1:${hono.port}`;
  for (const path of ['/', '/health', '/metrics']) expect([path, (await fetch(`${base}${path}`)).status]).toEqual([path, 404]);
  const all = createTusflow({ path: '/api/uploads', webPage: true, health: true, metrics: true });
  for (const path of ['/', '/health', '/metrics']) expect([path, (await all.fetch(new Request(`http://x${path}`))).status]).toEqual([path, 200]);
});

/** The status of a discovery OPTIONS sent from `localAddress` (any 127.x.y.z is this machine). */
function optionsFrom(localAddress: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress }, () => {
      socket.write('OPTIONS /api/uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n');
    });
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

/** Three requests from one address within a rate limit of 2, then one from another address. */
async function rateLimitedFromTwoAddresses(port: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push(await optionsFrom('127.0.0.1', port));
  statuses.push(await optionsFrom('127.0.0.2', port));
  return statuses;
}

test("bunServeOptions passes the client's address: the rate limit counts each address on its own", async () => {
  const limited = createTusflow({ path: '/api/uploads', rateLimit: 2 });
  const app = new Hono();
  app.route('/', limited.app);
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, ...bunServeOptions(app.fetch) });
  try {
    // Without the address every client would share one budget: the last would be 429 too.
    expect(await rateLimitedFromTwoAddresses(server.port as number)).toEqual([204, 204, 429, 204]);
  } finally {
    server.stop(true);
  }
});

test('bunServeOptions takes a connection bound above the 255 s Bun.serve accepts as its idleTimeout', async () => {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, ...bunServeOptions(userApp.fetch, { connectionIdleTimeoutSeconds: 300 }) });
  try {
    expect(await (await fetch(`http://127.0.0.1:${server.port}/api/health`)).text()).toBe('ok');
  } finally {
    server.stop(true);
  }
});

test("nodeServeOptions on Node passes the client's address: the rate limit counts each address on its own", async () => {
  await ensureBuilt();
  const script = `
    import { serve } from '@hono/node-server';
    import { Hono } from 'hono';
    import { createTusflow, nodeServeOptions } from '${ROOT}dist/index.js';
    const app = new Hono().route('/', createTusflow({ path: '/api/uploads', rateLimit: 2 }).app);
    serve({ hostname: '127.0.0.1', port: 0, ...nodeServeOptions(app.fetch) }, (info) => console.log('port', info.port));
  `;
  const node = Bun.spawn([Bun.which('node') ?? 'node', '--input-type=module', '-e', script], { cwd: ROOT, stdout: 'pipe', stderr: 'inherit', stdin: 'ignore' });
  try {
    const reader = node.stdout.getReader();
    let text = '';
    while (!/port (\d+)/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`node did not listen: ${text}`);
      text += new TextDecoder().decode(value);
    }
    const port = Number(/port (\d+)/.exec(text)![1]);
    expect(await rateLimitedFromTwoAddresses(port)).toEqual([204, 204, 429, 204]);
  } finally {
    node.kill('SIGKILL');
    await node.exited;
  }
}, 60_000);
