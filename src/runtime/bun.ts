/** Bun entry: `bun src/runtime/bun.ts` (npm start), and what `tusflow serve` runs. */
import { bunServeOptions } from '../wiring/server-options.ts';
import { bunFeatures } from './bun-features.ts';
import { serve } from './serve.ts';

export function serveOnBun(vars: Record<string, string | undefined> = Bun.env) {
  return serve({
    vars,
    features: bunFeatures,
    listen: (tusflow, env) => {
      // Bun's idleTimeout is off while a body streams (see bunServeOptions): the engine bounds bodies.
      const options = bunServeOptions(tusflow.fetch, { connectionIdleTimeoutSeconds: env.CONNECTION_IDLE_TIMEOUT_SECONDS });
      const server = Bun.serve({ port: env.PORT, hostname: env.HOST, ...options });
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
