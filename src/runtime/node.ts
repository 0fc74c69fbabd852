/**
 * Node entry: `npm run start:node` (node dist/runtime/node.js, after `npm run build`), and what
 * `tusflow` runs under Node. node:http through @hono/node-server, which streams request bodies and
 * aborts a request's signal when its client goes; Redis through ioredis; S3 parts are sent from
 * their buffers (Node's fetch sends a streamed body chunked, which S3 refuses), as on Deno.
 */
import { realpathSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createAdaptorServer } from '@hono/node-server';
import { nodeServeOptions } from '../wiring/server-options.ts';
import { serve, type Listening } from './serve.ts';

export function serveOnNode(vars: Record<string, string | undefined> = process.env) {
  return serve({
    vars,
    listen: (tusflow, env) =>
      new Promise<Listening>((ready, fail) => {
        // requestTimeout off, headers and keep-alive bounded by CONNECTION_IDLE_TIMEOUT_SECONDS: a
        // request is cut only when its body is silent for BODY_IDLE_TIMEOUT_SECONDS (the engine's).
        const options = nodeServeOptions(tusflow.fetch, { connectionIdleTimeoutSeconds: env.CONNECTION_IDLE_TIMEOUT_SECONDS });
        const server = createAdaptorServer(options);
        server.once('error', fail);
        server.listen(env.PORT, env.HOST, () => {
          const { address, family, port } = server.address() as AddressInfo;
          const host = family === 'IPv6' ? `[${address}]` : address;
          const closed = new Promise<void>((done) => server.once('close', () => done()));
          ready({
            origin: `http://${host}:${port}`,
            stopAccepting: () => void server.close(),
            async close() {
              server.close();
              // What is left once the uploads have answered: idle keep-alive connections, downloads.
              if ('closeAllConnections' in server) server.closeAllConnections();
              await closed;
            },
          });
        });
      }),
    onSignals: (stop) => {
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    },
    exit: process.exit,
  });
}

/** Run as a program (node dist/runtime/node.js), not imported by the command line. */
const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) await serveOnNode();
