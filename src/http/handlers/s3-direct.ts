import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { UploadEngine } from '../../engine/engine.ts';
import type { HookRequest } from '../../hooks/types.ts';
import { TusError } from '../../model/errors.ts';
import type { Metadata, Upload } from '../../model/upload.ts';
import { isMetadataKey } from '../../protocol/metadata.ts';
import { errorResponse } from '../../protocol/respond.ts';
import type { ConnectionInfo, requestGuard } from '../auth/guard.ts';
import { publicUrl } from '../forwarded.ts';
import type { ResolvedOptions } from '../options.ts';

type Env = { Bindings: ConnectionInfo };

/** What the direct-upload routes share with the tus routes: the same guard, hook view and failure log. */
export interface S3DirectDeps {
  engine: UploadEngine;
  options: ResolvedOptions;
  guard: ReturnType<typeof requestGuard>;
  hookRequest(request: Request, connection: ConnectionInfo | undefined): HookRequest;
  note(request: Request, id: string, error: unknown): void;
}

/** A request as a direct-upload route sees it, admitted by the guard. */
interface DirectRequest {
  request: Request;
  /** The upload id from the URL (Companion's `uploadId`), empty on creation. */
  id: string;
  owner?: string;
  hook: HookRequest;
}

/** The JSON bodies clients send are small: a larger one is refused unread past this. */
const MAX_JSON_BYTES = 64 * 1024;
/** S3's part numbers, and as they are written in a URL. */
const partNumber = z.number().int().min(1).max(10_000);
const partNumberText = z
  .string()
  .regex(/^\d{1,5}$/, 'expected a part number')
  .transform(Number)
  .pipe(partNumber);

const createBody = z.object({
  filename: z.string().min(1).max(1024),
  type: z.string().max(255).optional(),
  // Named as tus names them: they are given back in Upload-Metadata headers (HEAD).
  metadata: z.record(z.string().refine(isMetadataKey, 'a metadata name has no space, comma, control or non-Latin-1 character'), z.unknown()).optional(),
});

const completeBody = z.object({
  parts: z
    .array(z.object({ PartNumber: partNumber, ETag: z.string().min(1).max(1024) }))
    .min(1)
    .max(10_000)
    .refine((parts) => parts.every((part, i) => i === 0 || part.PartNumber > parts[i - 1]!.PartNumber), 'parts must be in ascending order, each once'),
});

const keyQuery = z.string().min(1).max(1024);
const partNumbers = z
  .string()
  .max(60_000)
  .transform((list) => list.split(','))
  .pipe(z.array(partNumberText).min(1).max(1000));

/**
 * Companion's `/s3/multipart` API, which Uppy's AwsS3 plugin speaks (`companionEndpoint: <server>`):
 * the server creates, signs, lists, completes and aborts S3 multipart uploads whose parts the
 * browser PUTs straight to S3. Companion's `uploadId` is the Tusflow upload id, so each direct
 * upload is one record like a tus upload's (HEAD, progress, GET, DELETE and expiry work on it), and
 * `key` must be that upload's object key. Small files go in one form POST (`/s3/params`), signed
 * with a policy that allows only their key, their type and at most MAX_SIZE bytes. Every request
 * passes the tus routes' guard (credentials, rate limit) and the engine's checks (owner, pre-create
 * and finish hooks, allowed types, size limit).
 */
export function s3DirectRoutes(app: Hono<Env>, deps: S3DirectDeps): void {
  const { engine } = deps;
  if (!engine.offersDirect) throw new Error('s3Direct needs a data store that signs direct uploads (the S3 store)');
  const route = (method: string, path: string, handle: (r: DirectRequest) => Promise<Response>) =>
    app.on(method, path, async (c: Context<Env>) => {
      const request = c.req.raw;
      const id = c.req.param('uploadId') ?? '';
      try {
        const admitted = await deps.guard(request, c.env);
        if (admitted instanceof Response) return admitted;
        if (admitted.method !== method) throw new TusError('METHOD_NOT_ALLOWED', admitted.method);
        if (id) await engine.authorize(id, admitted.owner);
        return await handle({ request, id, owner: admitted.owner, hook: deps.hookRequest(request, c.env) });
      } catch (error) {
        deps.note(request, id, error);
        return errorResponse(error);
      }
    });

  route('POST', '/s3/multipart', async ({ request, owner, hook }) => {
    const body = parse(createBody, await readJson(request), 'body');
    const upload = await engine.create({ metadata: metadataOf(body), owner, request: hook, direct: true });
    return Response.json({ uploadId: upload.id, key: engine.directKey(upload) });
  });

  // A small file in one form POST (Uppy's choice for files it does not send in parts).
  route('GET', '/s3/params', async ({ request, owner, hook }) => {
    const query = new URL(request.url).searchParams;
    const metadata: Record<string, unknown> = {};
    for (const [name, value] of query) {
      const field = /^metadata\[(.+)\]$/.exec(name)?.[1];
      if (field !== undefined) metadata[field] = value;
    }
    const body = parse(createBody, { filename: query.get('filename') ?? undefined, type: query.get('type') ?? undefined, metadata }, 'query');
    const type = body.type || 'application/octet-stream';
    const { upload, url, fields, expires } = await engine.createSingle({ metadata: metadataOf({ ...body, type }), owner, request: hook, type });
    return Response.json({ method: 'POST', url, fields, expires, key: engine.directKey(upload), uploadId: upload.id });
  });

  route('GET', '/s3/multipart/:uploadId', async ({ request, id }) => {
    const parts = await engine.directParts(id, keyOf(request));
    return Response.json(parts.map((part) => ({ PartNumber: part.partNumber, Size: part.size, ETag: part.etag })));
  });

  route('GET', '/s3/multipart/:uploadId/batch', async ({ request, id }) => {
    const numbers = parse(partNumbers, new URL(request.url).searchParams.get('partNumbers') ?? '', 'partNumbers');
    const { urls } = await engine.signParts(id, keyOf(request), numbers);
    return Response.json({ presignedUrls: Object.fromEntries(urls) });
  });

  route('GET', '/s3/multipart/:uploadId/:partNumber', async ({ request, id }) => {
    const number = parse(partNumberText, new URL(request.url).pathname.split('/').pop(), 'partNumber');
    const { urls, expires } = await engine.signParts(id, keyOf(request), [number]);
    return Response.json({ url: urls.get(number), expires });
  });

  route('POST', '/s3/multipart/:uploadId/complete', async ({ request, id, hook }) => {
    const key = keyOf(request);
    const { parts } = parse(completeBody, await readJson(request), 'body');
    const upload = await engine.completeDirect(
      id,
      key,
      parts.map((part) => ({ partNumber: part.PartNumber, etag: part.ETag })),
      hook,
    );
    return Response.json({ location: downloadUrl(request, deps.options, upload), key });
  });

  route('DELETE', '/s3/multipart/:uploadId', async ({ request, id, owner, hook }) => {
    await engine.direct(id, keyOf(request));
    await engine.terminate(id, { owner, request: hook });
    return Response.json({});
  });
}

/** The upload's metadata: what the client sent as text, with its file name and type as tus clients name them. */
function metadataOf(body: z.output<typeof createBody>): Metadata {
  const metadata: Metadata = {};
  for (const [name, value] of Object.entries(body.metadata ?? {})) {
    if (value === undefined || name.length > 200) continue;
    metadata[name] = value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
  }
  metadata.filename = body.filename;
  if (body.type) metadata.filetype = body.type;
  return metadata;
}

/** Where the finished upload downloads from: its tus URL (`<path>/<id>`), as the client sees this server. */
function downloadUrl(request: Request, options: ResolvedOptions, upload: Upload): string {
  const url = publicUrl(request, options.trustProxy);
  url.pathname = url.pathname.replace(/\/s3\/multipart\/.*$/, `${options.path}/${upload.id}`);
  url.search = '';
  return options.relativeLocation ? url.pathname : url.href;
}

function keyOf(request: Request): string {
  return parse(keyQuery, new URL(request.url).searchParams.get('key') ?? undefined, 'key');
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path.length ? `.${issue.path.join('.')}` : '';
  throw new TusError('INVALID_DIRECT_REQUEST', `${what}${path}: ${issue?.message ?? 'invalid'}`);
}

/** The request's JSON body, read up to MAX_JSON_BYTES. */
async function readJson(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get('Content-Length') ?? 0);
  if (declared > MAX_JSON_BYTES) throw new TusError('INVALID_DIRECT_REQUEST', `the body is over ${MAX_JSON_BYTES} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    for await (const chunk of request.body) {
      size += chunk.byteLength;
      // Leaving the loop cancels the rest of the body.
      if (size > MAX_JSON_BYTES) throw new TusError('INVALID_DIRECT_REQUEST', `the body is over ${MAX_JSON_BYTES} bytes`);
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new TusError('INVALID_DIRECT_REQUEST', 'the body is not JSON');
  }
}
