// An app that embeds tusflow as its README shows, importing the installed package: file stores from
// `tusflow/file`, mounted in the app's own Hono, served by @hono/node-server with nodeServeOptions on
// Node, by Bun.serve with bunServeOptions on Bun and by Deno.serve on Deno. Prints its origin once it
// listens. GET /api/client answers the connection's address as the helpers hand it to the app.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bunServeOptions, createTusflow, nodeServeOptions } from 'tusflow';
import { FileDataStore, FileStateStore } from 'tusflow/file';

const dir = process.argv[2];
const uploads = createTusflow({ path: '/api/uploads', store: new FileDataStore(dir), state: new FileStateStore(dir) });
const app = new Hono();
app.get('/api/health', (c) => c.text('ok'));
app.get('/api/client', (c) => c.text(c.env?.remoteAddress ?? 'unknown'));
app.route('/', uploads.app);

if (globalThis.Bun) {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, ...bunServeOptions(app.fetch) });
  console.log(`listening on http://127.0.0.1:${server.port}`);
} else if (globalThis.Deno) {
  Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`) }, app.fetch);
} else {
  serve({ hostname: '127.0.0.1', port: 0, ...nodeServeOptions(app.fetch) }, (info) => console.log(`listening on http://127.0.0.1:${info.port}`));
}
