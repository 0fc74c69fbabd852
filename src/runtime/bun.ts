/** Bun entry: `bun src/runtime/bun.ts` (npm start), and what `tusflow serve` runs. */
import { bunFeatures } from './bun-features.ts';
import { serve } from './serve.ts';

export function serveOnBun(vars: Record<string, string | undefined> = Bun.env) {
  return serve({
    vars,
    features: bunFeatures,
    listen: (tusflow, env) => {
      const server = Bun.serve({
        port: env.PORT,
        hostname: env.HOST,
        fetch: (request, bun) => tusflow.fetch(request, { remoteAddress: bun.requestIP(request)?.address }),
        // Uploads are long streams: no body-size cap here (MAX_SIZE is enforced by the engine), and
        // enough idle time for a slow client between chunks.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        idleTimeout: 120,
      });
      return { origin: server.url.href, stopAccepting: () => void server.stop(), close: () => server.stop(true) };
    },
    onSignals: (stop) => {
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    },
    exit: process.exit,
  });
}

if (import.meta.main) await serveOnBun();
