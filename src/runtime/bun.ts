/** Bun entry: `bun src/runtime/bun.ts` (npm start), and what `tusflow serve` runs. */
import type { Server } from 'bun';
import type { ServerEnv } from '../wiring/config.ts';
import type { Tusflow } from '../wiring/create.ts';
import { bunFeatures } from './bun-features.ts';
import { serve } from './serve.ts';

/**
 * Bun.serve's options for a server. Bun's `idleTimeout` counts from the start of a request, not from
 * its last byte, so it would cut a slow but steady upload (1 KiB/s) every time it ran out, whatever
 * arrived meanwhile. So it bounds only connections that send nothing outside a body (unfinished
 * headers, keep-alive between requests: CONNECTION_IDLE_TIMEOUT_SECONDS); while a request's body
 * streams it is off, and the engine cuts a body that brings no byte for BODY_IDLE_TIMEOUT_SECONDS,
 * counted from the last byte. Once the answer is ready the connection's bound is back.
 */
function bunServeOptions(tusflow: Tusflow, env: ServerEnv) {
  const idleSeconds = env.CONNECTION_IDLE_TIMEOUT_SECONDS;
  return {
    port: env.PORT,
    hostname: env.HOST,
    async fetch(request: Request, server: Server<undefined>): Promise<Response> {
      const remoteAddress = server.requestIP(request)?.address;
      if (request.body === null) return tusflow.fetch(request, { remoteAddress });
      setTimeoutOf(server, request, 0);
      try {
        return await tusflow.fetch(request, { remoteAddress });
      } finally {
        setTimeoutOf(server, request, idleSeconds);
      }
    },
    // Uploads are long streams: no body-size cap here (MAX_SIZE is enforced by the engine).
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: idleSeconds,
  };
}

/** server.timeout, which has nothing to do once the client has gone. */
function setTimeoutOf(server: Server<undefined>, request: Request, seconds: number): void {
  try {
    server.timeout(request, seconds);
  } catch {
    // The request is over (the client went away): no connection left to bound.
  }
}

export function serveOnBun(vars: Record<string, string | undefined> = Bun.env) {
  return serve({
    vars,
    features: bunFeatures,
    listen: (tusflow, env) => {
      const server = Bun.serve(bunServeOptions(tusflow, env));
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
