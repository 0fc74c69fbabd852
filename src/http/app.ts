import { Hono, type Context, type Handler as HonoHandler, type MiddlewareHandler } from 'hono';
import { authenticator, staticToken } from './auth/authenticate.ts';
import { clientAddress, requestGuard, type ConnectionInfo } from './auth/guard.ts';
import type { ResolvedOptions } from './options.ts';
import type { UploadEngine } from '../engine/engine.ts';
import { cors } from './cors.ts';
import { publicOrigin, publicUrl } from './forwarded.ts';
import type { HookRequest } from '../hooks/types.ts';
import type { RateLimiter } from '../state/types.ts';
import { requestId, type Logger } from '../observability/log.ts';
import { errorText } from '../observability/redact.ts';
import type { MetricsRegistry } from '../observability/metrics.ts';
import { METHODS, TUS_VERSION } from '../protocol/constants.ts';
import { TusError } from '../model/errors.ts';
import { requireTusResumable } from '../protocol/headers.ts';
import { INTEROP_VERSIONS, interopVersion, type InteropVersion } from '../protocol/ietf.ts';
import { errorResponse } from '../protocol/respond.ts';
import type { Handler, HandlerContext } from './handlers/context.ts';
import { options } from './handlers/options.ts';
import { post } from './handlers/post.ts';
import { head } from './handlers/head.ts';
import { patch } from './handlers/patch.ts';
import { terminate } from './handlers/delete.ts';
import { get } from './handlers/get.ts';
import { progress } from './handlers/progress.ts';
import { health } from './handlers/health.ts';
import { ietfRoutes } from './handlers/ietf.ts';
import { s3DirectRoutes } from './handlers/s3-direct.ts';
import { PAGE_HTML } from '../web/page.generated.ts';

type Routes = Partial<Record<string, Handler>>;

export type { ConnectionInfo };
/** Hono's env: the bindings are what the server entries tell the app about the connection. */
export type TusflowEnv = { Bindings: ConnectionInfo };
type Env = TusflowEnv;

const collection: Routes = { OPTIONS: options, POST: post };
const upload: Routes = { OPTIONS: options, HEAD: head, PATCH: patch, DELETE: terminate, GET: get };
const uploadProgress: Routes = { GET: progress };
const ietf = new Map(INTEROP_VERSIONS.map((v) => [v, ietfRoutes(v, { options, get })]));
/** Methods that are not tus requests and so need no Tus-Resumable. */
const plainHttp = new Set(['OPTIONS', 'GET']);
const KNOWN_METHODS = new Set(METHODS);
/** Headers hooks never see. */
const SECRET_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/**
 * The HTTP side: logging and metrics, CORS, health and metrics endpoints, the upload page, rate
 * limit and authentication, then the tus and IETF routes. Dispatch to handlers happens here, not in
 * Hono's router, so that X-HTTP-Method-Override (which the spec says MUST be honoured) applies to
 * every route the same way, also when the app is mounted inside another Hono app.
 */
export function buildApp(
  engine: UploadEngine,
  opts: ResolvedOptions,
  { metrics, rateLimiter, log }: { metrics: MetricsRegistry; rateLimiter?: RateLimiter; log?: Logger },
): Hono<Env> {
  const app = new Hono<Env>();
  const failures = new WeakMap<Request, Failure>();
  app.use('*', requestLog(metrics, log, failures, opts.trustProxy));
  // Before CORS: metrics are for scrapers, not for pages in browsers.
  if (opts.metrics) app.get('/metrics', metricsRoute(metrics, opts, rateLimiter));
  app.use('*', cors(opts.corsOrigins, opts.corsCredentials));
  if (opts.health) app.get('/health', () => health(engine));
  if (opts.webPage) app.get('/', pageRoute(opts));
  if (opts.s3Direct) {
    s3DirectRoutes(app, {
      engine,
      options: opts,
      guard: requestGuard({ authenticate: authenticator(opts), rateLimiter, trustProxy: opts.trustProxy }),
      hookRequest: (request, connection) => hookRequest(request, connection, opts.trustProxy),
      note: (request, id, error) => failures.set(request, failureOf(error, id)),
    });
  }
  tusRoutes(app, opts.path, dispatcher(engine, opts, rateLimiter), (request, id, error) => failures.set(request, failureOf(error, id)));
  app.notFound(() => errorResponse(new TusError('NOT_FOUND', 'no such route')));
  app.onError((error) => withTusResumable(errorResponse(error)));
  return app;
}

/** What the log line of a failed request tells about it, noted where its error is answered. */
interface Failure {
  reason: string;
  uploadId?: string;
  /** Bytes of the body that had arrived (a PATCH). */
  received?: number;
}

/** Notes why a request to an upload (`id`, empty for the collection) failed, for its log line. */
type NoteFailure = (request: Request, id: string, error: unknown) => void;

function failureOf(error: unknown, id: string): Failure {
  return {
    // A backend's failure answers the client a generic reason; its own error, the cause, is logged.
    reason: (error instanceof TusError && error.cause !== undefined ? `${errorText(error)}: ${errorText(error.cause)}` : errorText(error)).slice(0, 300),
    // The id is what the client put in the URL: any length.
    uploadId: id ? id.slice(0, 100) : undefined,
    received: error instanceof TusError ? error.received : undefined,
  };
}

/**
 * Counts every request and logs it (when a logger is given), with its X-Request-Id and the client's
 * address; a failed one with its reason, upload id and the bytes of its body that arrived.
 */
function requestLog(metrics: MetricsRegistry, log: Logger | undefined, failures: WeakMap<Request, Failure>, trustProxy: boolean): MiddlewareHandler<Env> {
  return async (c, next) => {
    const started = performance.now();
    const id = requestId(c.req.header('X-Request-Id') ?? null);
    await next();
    c.res.headers.set('X-Request-Id', id);
    // Only methods the server knows label a series: any other token would add one for good.
    const method = KNOWN_METHODS.has(c.req.method) ? c.req.method : 'OTHER';
    metrics.inc('tusflow_requests_total', { method, status: String(c.res.status) });
    log?.({
      level: c.res.status >= 500 ? 'error' : 'info',
      requestId: id,
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      ms: Math.round(performance.now() - started),
      client: clientAddress(c.req.raw, c.env, trustProxy),
      ...failures.get(c.req.raw),
    });
  };
}

/**
 * `GET /`: the upload page, told the endpoint this app serves (behind a trusted proxy, under the
 * path prefix it reports) and whether that needs a token.
 */
function pageRoute(opts: ResolvedOptions): HonoHandler<Env> {
  const auth = opts.authToken || opts.jwtSecret || opts.authorize ? 'bearer' : '';
  // With S3_DIRECT, the page sends bytes straight to S3 through the direct-upload API.
  const page = (prefix = '') =>
    PAGE_HTML.replace('name="tus-endpoint" content="/files/"', `name="tus-endpoint" content="${prefix}${opts.path}/"`)
      .replace('name="tus-auth" content=""', `name="tus-auth" content="${auth}"`)
      .replace('name="tus-direct" content=""', `name="tus-direct" content="${opts.s3Direct ? `${prefix}/s3/multipart` : ''}"`);
  const direct = page();
  return (c) => {
    // The prefix is checked to be plain path segments, so it is safe inside the attribute.
    const prefix = opts.trustProxy ? publicOrigin(c.req.raw.headers).prefix : undefined;
    return new Response(prefix ? page(prefix) : direct, {
      headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' },
    });
  };
}

/** Serves a tus or IETF request for one kind of route; `id` is empty for the collection. */
type Dispatch = (request: Request, id: string, connection: ConnectionInfo | undefined) => Promise<Response>;
/** The dispatch of a route with these tus methods and, if it has any, these IETF ones. */
type DispatchFor = (routes: Routes, draft?: (v: InteropVersion) => Routes) => Dispatch;

/**
 * Builds the dispatch of a kind of route: admission (rate limit, credentials, the method actually
 * executed), then the handler for that method in the protocol the request speaks — a request with
 * Upload-Draft-Interop-Version speaks the IETF draft, any other speaks tus.
 */
function dispatcher(engine: UploadEngine, opts: ResolvedOptions, rateLimiter: RateLimiter | undefined): DispatchFor {
  const guard = requestGuard({ authenticate: authenticator(opts), rateLimiter, trustProxy: opts.trustProxy });
  return (routes, draft) => async (request, id, connection) => {
    const admitted = await guard(request, connection);
    if (admitted instanceof Response) return admitted;
    const { method, owner } = admitted;
    const version = draft && interopVersion(request.headers);
    const handler = (version ? draft(version) : routes)[method];
    if (!handler) throw new TusError('METHOD_NOT_ALLOWED', method);
    if (!version && !plainHttp.has(method)) requireTusResumable(request.headers);
    // A PATCH's or a DELETE's owner is checked on the record its lock reads, before the lock is
    // touched, where the locker can (one state call instead of two); every other method on an
    // upload is checked here.
    const checkedAtLock = (method === 'PATCH' || method === 'DELETE') && engine.checksOwnerAtLock;
    const loaded = id && method !== 'OPTIONS' && !checkedAtLock ? await engine.authorize(id, owner) : undefined;
    const ctx: HandlerContext = { request, engine, options: opts, id, owner, loaded, hook: hookRequest(request, connection, opts.trustProxy) };
    return handler(ctx);
  };
}

/** The endpoint (`<base>` and `<base>/`), an upload (`<base>/:id`) and its progress view. */
function tusRoutes(app: Hono<Env>, base: string, dispatch: DispatchFor, note: NoteFailure): void {
  const onCollection = dispatch(collection, (v) => ietf.get(v)!.collection);
  const onUpload = dispatch(upload, (v) => ietf.get(v)!.upload);
  const onProgress = dispatch(uploadProgress);
  const route = (routes: Routes, handle: Dispatch, id: (c: Context<Env>) => string) => (c: Context<Env>) =>
    respond(
      () => handle(c.req.raw, id(c), c.env),
      routes,
      (error) => note(c.req.raw, id(c), error),
    );
  for (const path of [base || '/', `${base}/`])
    app.all(
      path,
      route(collection, onCollection, () => ''),
    );
  app.all(
    `${base}/:id`,
    route(upload, onUpload, (c) => c.req.param('id') ?? ''),
  );
  app.all(
    `${base}/:id/progress`,
    route(uploadProgress, onProgress, (c) => c.req.param('id') ?? ''),
  );
}

/** A handler's response, or its error's (noted for the log line); a 405 names the methods the route has. */
async function respond(run: () => Promise<Response>, allow: Routes, note: (error: unknown) => void): Promise<Response> {
  let response: Response;
  try {
    response = await run();
  } catch (error) {
    note(error);
    const allowHeader: Record<string, string> = error instanceof TusError && error.code === 'METHOD_NOT_ALLOWED' ? { Allow: Object.keys(allow).join(', ') } : {};
    response = errorResponse(error, allowHeader);
  }
  return withTusResumable(response);
}

function withTusResumable(response: Response): Response {
  response.headers.set('Tus-Resumable', TUS_VERSION);
  return response;
}

/**
 * `GET /metrics`, through the same guard as tus requests: its bearer token when one is set, and the
 * rate limit (a guessed token costs like any other).
 */
function metricsRoute(metrics: MetricsRegistry, opts: ResolvedOptions, rateLimiter: RateLimiter | undefined): HonoHandler<Env> {
  const authenticate = opts.metricsToken === undefined ? undefined : staticToken(opts.metricsToken);
  const guard = requestGuard({ authenticate, rateLimiter, trustProxy: opts.trustProxy });
  return async (c) => {
    try {
      const admitted = await guard(c.req.raw, c.env);
      if (admitted instanceof Response) return admitted;
    } catch (error) {
      return errorResponse(error);
    }
    return new Response(metrics.render(), { headers: { 'Content-Type': 'text/plain; version=0.0.4' } });
  };
}

/** The request as hooks see it: behind a trusted proxy its URL is the public one, as the client sent it. */
function hookRequest(request: Request, connection: ConnectionInfo | undefined, trustProxy: boolean): HookRequest {
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    if (!SECRET_HEADERS.has(name)) headers[name] = value;
  });
  return { method: request.method, url: publicUrl(request, trustProxy).href, headers, remoteAddress: clientAddress(request, connection, trustProxy) };
}
