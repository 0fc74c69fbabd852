/**
 * The Node server: node:http through @hono/node-server, which streams request bodies and aborts a
 * request's signal when its client goes; Redis through ioredis; S3 requests through node:http (see
 * node-http-fetch.ts), as on Deno. Importing it starts nothing: node.ts (the program) and the
 * command line call serveOnNode.
 */
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { errorText } from '../observability/redact.ts';
import { nodeServeOptions } from '../wiring/server-options.ts';
import { nodeS3Features } from '../wiring/node-http-fetch.ts';
import { serve, type Listening } from './serve.ts';

export function serveOnNode(vars: Record<string, string | undefined> = process.env) {
  return serve({
    vars,
    // S3 requests go through node:http, which sends a part from its slabs with its Content-Length.
    features: nodeS3Features(vars),
    listen: (tusflow, env) =>
      new Promise<Listening>((ready, fail) => {
        // requestTimeout off, headers and keep-alive bounded by CONNECTION_IDLE_TIMEOUT_SECONDS: a
        // request is cut only when its body is silent for BODY_IDLE_TIMEOUT_SECONDS (the engine's).
        const options = nodeServeOptions(tusflow.fetch, { connectionIdleTimeoutSeconds: env.CONNECTION_IDLE_TIMEOUT_SECONDS });
        const server = createAdaptorServer(options);
        // Before listening an error (port in use) stops the start; after it, one is logged and the
        // server goes on: without a listener a later 'error' would end the process.
        server.once('error', fail);
        server.listen(env.PORT, env.HOST, () => {
          server.off('error', fail);
          server.on('error', (error) => console.error(`tusflow: server error: ${errorText(error)}`));
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
