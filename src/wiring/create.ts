import type { Hono } from 'hono';
import { buildApp, type ConnectionInfo, type TusflowEnv } from '../http/app.ts';
import { composeHooks, type HookType } from '../hooks/types.ts';
import { webhooks } from '../hooks/webhooks.ts';
import { fileTypeLimits } from '../hooks/file-types.ts';
import { MemoryRateLimiter } from '../state/memory-rate-limit.ts';
import { jsonLogger, type Logger } from '../observability/log.ts';
import type { Metrics } from '../model/metrics.ts';
import { MetricsRegistry } from '../observability/metrics.ts';
import { errorText } from '../observability/redact.ts';
import { optionsSchema, type TusflowOptions } from './config.ts';
import { UploadEngine, type EngineOptions } from '../engine/engine.ts';
import { MemoryLocker } from '../state/memory-locker.ts';
import { MemoryStateStore } from '../state/memory.ts';
import { MemoryDataStore } from '../storage/memory.ts';

export interface Tusflow {
  /** The whole server as a Hono app: mount it, or call `app.fetch(request)`. */
  app: Hono<TusflowEnv>;
  /** The whole server as a fetch handler; server entries pass the client's address for the rate limit and hooks. */
  fetch: (request: Request, connection?: ConnectionInfo) => Promise<Response>;
  engine: UploadEngine;
  /** This server's metrics (what `GET /metrics` renders). */
  registry: MetricsRegistry;
  /** Cuts in-flight uploads (each keeps what arrived) and waits for them. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/**
 * Builds a tus server. With no stores given it keeps everything in memory; the server entries pass
 * the file system, S3 or Redis stores.
 */
export function createTusflow(input: TusflowOptions = {}): Tusflow {
  const options = optionsSchema.parse(input);
  const log = options.log === true ? jsonLogger : options.log || undefined;
  const registry = options.registry ?? new MetricsRegistry();
  const hooks = composeHooks(
    fileTypeLimits(options.allowedTypes, options.allowedExtensions),
    options.hooks,
    options.hooksUrl ? webhooks({ url: options.hooksUrl, secret: options.hooksSecret }) : undefined,
  );
  const engine = new UploadEngine({
    hooks,
    metrics: registry,
    onHookError: hookFailureReporter(log, registry),
    store: options.store ?? new MemoryDataStore(),
    state: options.state ?? new MemoryStateStore(),
    locker: options.locker ?? new MemoryLocker(options.lockTimeoutMs),
    maxSize: options.maxSize,
    ttlMs: options.uploadTtlSeconds * 1000,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutSeconds * 1000,
  });
  const rateLimiter = options.rateLimiter ?? (options.rateLimit ? new MemoryRateLimiter(options.rateLimit) : undefined);
  const app = buildApp(engine, options, { metrics: registry, rateLimiter, log });
  return {
    app,
    fetch: async (request, connection = {}) => app.fetch(request, connection),
    engine,
    registry,
    shutdown: (timeoutMs) => engine.shutdown(timeoutMs),
  };
}

/** Every hook, so that each one's failure count is there at 0 from the start. */
const HOOK_TYPES = {
  'pre-create': true,
  'post-create': true,
  'post-receive': true,
  'pre-finish': true,
  'post-finish': true,
  'pre-terminate': true,
  'post-terminate': true,
} as const satisfies Record<HookType, true>;

/**
 * Every failed hook, background or pre-: counted, and logged with a short reason. The reason is the
 * webhook's own summary ("receiver answered 502"), or an in-process hook's error message, redacted.
 */
function hookFailureReporter(log: Logger | undefined, metrics: Metrics): NonNullable<EngineOptions['onHookError']> {
  for (const hook of Object.keys(HOOK_TYPES)) metrics.declare('tusflow_hook_failures_total', { hook });
  return (type, error, uploadId) => {
    metrics.inc('tusflow_hook_failures_total', { hook: type });
    const reason = errorText(error).slice(0, 200);
    log?.({ level: 'error', message: 'hook failed', hook: type, uploadId, reason });
  };
}
