import { Hono } from 'hono';
import type { ResolvedOptions } from './config.ts';
import type { UploadEngine } from './engine/engine.ts';
import { cors } from './cors.ts';
import { TUS_VERSION } from './protocol/constants.ts';
import { TusError } from './protocol/errors.ts';
import { requireTusResumable } from './protocol/headers.ts';
import { errorResponse } from './protocol/respond.ts';
import type { Handler, HandlerContext } from './handlers/context.ts';
import { options } from './handlers/options.ts';
import { post } from './handlers/post.ts';
import { head } from './handlers/head.ts';
import { patch } from './handlers/patch.ts';
import { terminate } from './handlers/delete.ts';
import { get } from './handlers/get.ts';
import { progress } from './handlers/progress.ts';
import { ietfRoutes } from './handlers/ietf.ts';
import { INTEROP_VERSIONS, interopVersion, type InteropVersion } from './protocol/ietf.ts';
import { PAGE_HTML } from './web/page.generated.ts';

type Routes = Partial<Record<string, Handler>>;

const collection: Routes = { OPTIONS: options, POST: post };
const upload: Routes = { OPTIONS: options, HEAD: head, PATCH: patch, DELETE: terminate, GET: get };
const uploadProgress: Routes = { GET: progress };
const ietf = new Map(INTEROP_VERSIONS.map((v) => [v, ietfRoutes(v, { options, get })]));
/** Methods that are not tus requests and so need no Tus-Resumable. */
const plainHttp = new Set(['OPTIONS', 'GET']);

/**
 * Routes requests to handlers. Dispatch happens here, not in Hono's router, so that
 * X-HTTP-Method-Override (which the spec says MUST be honoured) applies to every route the same way,
 * also when the app is mounted inside another Hono app.
 */
export function buildApp(engine: UploadEngine, opts: ResolvedOptions): Hono {
  const app = new Hono();
  app.use('*', cors(opts.corsOrigins));

  // A request with Upload-Draft-Interop-Version speaks the IETF draft; any other speaks tus.
  const dispatch = (routes: Routes, draft?: (v: InteropVersion) => Routes) => async (request: Request, id: string): Promise<Response> => {
    const method = (request.headers.get('X-HTTP-Method-Override') ?? request.method).toUpperCase();
    const version = draft && interopVersion(request.headers);
    const handler = (version ? draft(version) : routes)[method];
    if (!handler) throw new TusError('METHOD_NOT_ALLOWED', method);
    if (!version && !plainHttp.has(method)) requireTusResumable(request.headers);
    const ctx: HandlerContext = { request, engine, options: opts, id };
    return handler(ctx);
  };
  const onCollection = dispatch(collection, (v) => ietf.get(v)!.collection);
  const onUpload = dispatch(upload, (v) => ietf.get(v)!.upload);
  const onProgress = dispatch(uploadProgress);

  const respond = async (run: () => Promise<Response>, allow: Routes): Promise<Response> => {
    let response: Response;
    try {
      response = await run();
    } catch (error) {
      const allowHeader: Record<string, string> =
        error instanceof TusError && error.code === 'METHOD_NOT_ALLOWED' ? { Allow: Object.keys(allow).join(', ') } : {};
      response = errorResponse(error, allowHeader);
    }
    response.headers.set('Tus-Resumable', TUS_VERSION);
    return response;
  };

  if (opts.webPage) {
    app.get('/', () => new Response(PAGE_HTML, { headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' } }));
  }

  const base = opts.path;
  for (const path of [base || '/', `${base}/`]) {
    app.all(path, (c) => respond(() => onCollection(c.req.raw, ''), collection));
  }
  app.all(`${base}/:id`, (c) => respond(() => onUpload(c.req.raw, c.req.param('id')), upload));
  app.all(`${base}/:id/progress`, (c) => respond(() => onProgress(c.req.raw, c.req.param('id')), uploadProgress));
  app.notFound(() => errorResponse(new TusError('NOT_FOUND', 'no such route')));
  app.onError((error) => errorResponse(error));
  return app;
}
