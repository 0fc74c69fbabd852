/**
 * What a host's HTTP server needs so that uploads pass through it, for apps that embed tusflow:
 * the runtimes' defaults are made for small requests (Bun refuses bodies over 128 MiB and cuts a
 * request 10 s after it started; Node cuts one 300 s after it started), and the rate limit and
 * hooks need the client's address, which only the server knows. The server entries use the same
 * options. Runtime-neutral: the servers' types are described by the few members used.
 */
import { z } from 'zod';
import type { ConnectionInfo } from '../http/app.ts';
import { envSchema } from './config.ts';

/** A fetch handler told the client's address: `tusflow.fetch`, or the `fetch` of a Hono app with tusflow mounted. */
export type ConnectionFetch = (request: Request, connection: ConnectionInfo) => Response | Promise<Response>;

const optionsSchema = z.object({
  /**
   * A connection that sends nothing for this long while no body streams (unfinished headers,
   * keep-alive between requests) is closed; CONNECTION_IDLE_TIMEOUT_SECONDS of the server entries.
   */
  connectionIdleTimeoutSeconds: z.number().int().min(1).max(14_280).optional(),
});
export type ServerTimeoutOptions = z.input<typeof optionsSchema>;

function idleSeconds(options: ServerTimeoutOptions): number {
  const { connectionIdleTimeoutSeconds } = optionsSchema.parse(options);
  return connectionIdleTimeoutSeconds ?? envSchema.shape.CONNECTION_IDLE_TIMEOUT_SECONDS.parse(undefined);
}

/** Bun refuses a larger `idleTimeout`; its per-request `timeout` takes up to 14,280 s. */
const BUN_MAX_IDLE_TIMEOUT = 255;

/** The members of Bun's `Server` the options use. */
export interface BunServerLike {
  requestIP(request: Request): { address: string } | null;
  timeout(request: Request, seconds: number): void;
}

export interface BunServeOptions {
  fetch(request: Request, server: BunServerLike): Promise<Response>;
  maxRequestBodySize: number;
  idleTimeout: number;
}

/**
 * Bun's serve options, `{ port, ...bunServeOptions(app.fetch) }`. No body-size cap (MAX_SIZE is the engine's).
 * Bun's `idleTimeout` counts from the start of a request, not from its last byte, so it would cut a
 * slow but steady upload (1 KiB/s) every time it ran out, whatever arrived meanwhile. So it bounds
 * only connections that send nothing outside a body; while a request's body streams it is off, and
 * the engine cuts a body that brings no byte for `bodyIdleTimeoutSeconds`, counted from the last
 * byte. Once the answer is ready the connection's bound is back. `fetch` gets the client's address.
 * Bun takes at most 255 s as the server's bound: a longer one applies after requests with a body.
 */
export function bunServeOptions(fetch: ConnectionFetch, options: ServerTimeoutOptions = {}): BunServeOptions {
  const seconds = idleSeconds(options);
  return {
    async fetch(request, server) {
      const connection = { remoteAddress: server.requestIP(request)?.address };
      if (request.body === null) return fetch(request, connection);
      setTimeoutOf(server, request, 0);
      try {
        return await fetch(request, connection);
      } finally {
        setTimeoutOf(server, request, seconds);
      }
    },
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: Math.min(seconds, BUN_MAX_IDLE_TIMEOUT),
  };
}

/** server.timeout, which has nothing to do once the client has gone. */
function setTimeoutOf(server: BunServerLike, request: Request, seconds: number): void {
  try {
    server.timeout(request, seconds);
  } catch {
    // The request is over (the client went away): no connection left to bound.
  }
}

/** The members of @hono/node-server's bindings the options use. */
export interface NodeBindingsLike {
  incoming: { socket: { remoteAddress?: string | undefined } };
}

/** node:http's server timeouts for uploads: `http.createServer(nodeServerOptions(), …)` takes them too. */
export interface NodeServerTimeouts {
  /** 0: no bound on a whole request, which a steady upload may need hours for. */
  requestTimeout: number;
  /** Unfinished headers, and a connection that sends nothing, close after this (ms). */
  headersTimeout: number;
  /** A connection idle between requests closes after this (ms). */
  keepAliveTimeout: number;
  /** How often node:http checks headersTimeout (ms); its default, 30 s, would overshoot short bounds. */
  connectionsCheckingInterval: number;
}

export interface NodeServeOptions {
  fetch(request: Request, bindings: NodeBindingsLike): Response | Promise<Response>;
  serverOptions: NodeServerTimeouts;
  /** Tusflow's handlers build standard Requests and Responses; the adapter's lightweight globals are not needed. */
  overrideGlobalObjects: false;
}

/** node:http's timeouts: a request is cut only by the engine's body bound, connections by `connectionIdleTimeoutSeconds`. */
export function nodeServerOptions(options: ServerTimeoutOptions = {}): NodeServerTimeouts {
  const ms = idleSeconds(options) * 1000;
  return { requestTimeout: 0, headersTimeout: ms, keepAliveTimeout: ms, connectionsCheckingInterval: Math.min(30_000, Math.max(250, ms / 4)) };
}

/**
 * `serve({ port, ...nodeServeOptions(app.fetch) })` of @hono/node-server: node:http's timeouts (see
 * nodeServerOptions) and `fetch` told the client's address. The adapter streams request bodies and
 * aborts a request's signal when its client goes.
 */
export function nodeServeOptions(fetch: ConnectionFetch, options: ServerTimeoutOptions = {}): NodeServeOptions {
  return {
    fetch: (request, bindings) => fetch(request, { remoteAddress: bindings.incoming.socket.remoteAddress }),
    serverOptions: nodeServerOptions(options),
    overrideGlobalObjects: false,
  };
}
