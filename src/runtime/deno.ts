/** Deno entry: `deno task start` (npm run start:deno). Deno Deploy runs it with S3 + Upstash. */
import { nodeS3Features } from '../wiring/node-http-fetch.ts';
import { serve } from './serve.ts';

await serve({
  vars: Deno.env.toObject(),
  // S3 requests go through node:http, which sends a part from its slabs with its Content-Length
  // (Deno's fetch copies it first, and sends a stream chunked).
  features: { releaseChunks: true, ...nodeS3Features(Deno.env.toObject()) },
  listen: (tusflow, env) =>
    new Promise((ready) => {
      const server = Deno.serve(
        {
          port: env.PORT,
          hostname: env.HOST,
          onListen: ({ hostname, port }) =>
            // Deno.serve's shutdown both stops accepting and waits for what is open.
            ready({ origin: `http://${hostname}:${port}`, stopAccepting: () => {}, close: () => server.shutdown() }),
        },
        (request, info) => tusflow.fetch(request, { remoteAddress: (info.remoteAddr as Deno.NetAddr).hostname }),
      );
    }),
  onSignals: (stop) => {
    Deno.addSignalListener('SIGINT', () => stop('SIGINT'));
    Deno.addSignalListener('SIGTERM', () => stop('SIGTERM'));
  },
  exit: Deno.exit,
});
