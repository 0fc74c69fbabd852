/** Deno entry: `deno task start` (npm run start:deno). Deno Deploy runs it with S3 + Upstash. */
import { nodeSha256 } from '../wiring/node-sha256.ts';
import { serve } from './serve.ts';

await serve({
  vars: Deno.env.toObject(),
  features: { releaseChunks: true, sha256: nodeSha256 },
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
