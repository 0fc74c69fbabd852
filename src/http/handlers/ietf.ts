import type { Upload } from '../../model/upload.ts';
import { isFinished } from '../../model/upload.ts';
import { TusError } from '../../model/errors.ts';
import * as h from '../../protocol/headers.ts';
import { dispositionFilename, ietfError, PARTIAL_UPLOAD, remainingLifetime, uploadComplete, uploadLimit, type InteropVersion } from '../../protocol/ietf.ts';
import type { Metadata } from '../../protocol/metadata.ts';
import { creationDigest, readBody } from './body.ts';
import { reprDigestField } from '../../model/digest.ts';
import { currentDigest } from '../../engine/engine.ts';
import { uploadUrl, type Handler, type HandlerContext } from './context.ts';

/**
 * The IETF "Resumable Uploads for HTTP" draft on the same endpoint and engine as tus: creation by
 * POST with Upload-Complete, offset retrieval by HEAD, append by PATCH, cancellation by DELETE.
 * Web-standard Response has no way to send a 104 (Upload Resumption Supported) informational
 * response, so Location arrives with the final response, as the draft allows.
 */
type IetfHandler = (ctx: HandlerContext, version: InteropVersion) => Promise<Response>;

const BASE = (version: InteropVersion) => ({ 'Upload-Draft-Interop-Version': String(version) });

function state(ctx: HandlerContext, version: InteropVersion, upload: Upload, transfer = false): Record<string, string> {
  const headers: Record<string, string> = {
    ...BASE(version),
    'Upload-Offset': String(upload.offset),
    'Upload-Complete': isFinished(upload) ? '?1' : '?0',
    ...uploadLimit(version, ctx.engine.maxSize, remainingLifetime(upload.expiresAt, Date.now())),
  };
  if (upload.length !== undefined) headers['Upload-Length'] = String(upload.length);
  // The whole upload's digest, once complete, when it was asked for or sent (RFC 9530).
  const digest = upload.digest?.value ?? (transfer ? runningDigest(upload) : undefined);
  if (digest !== undefined) headers['Repr-Digest'] = reprDigestField(upload.digest!.algorithm, digest);
  return headers;
}

/**
 * The digest of what an incomplete upload holds so far: "the server can compute the digest
 * continuously during the upload and include the Repr-Digest header field in responses to upload
 * creation and upload appending requests even when the upload is not completed yet", so that a
 * client spots a corruption before the end. That is what Want-Repr-Digest asks for; a client that
 * sent its own Repr-Digest of the whole gets none until the end, so no partial value is taken for it.
 */
function runningDigest(upload: Upload): string | undefined {
  return upload.digest?.expected === undefined ? currentDigest(upload) : undefined;
}

/** The limits before any upload exists (as OPTIONS announces them), for a 413. */
const limits = (ctx: HandlerContext, version: InteropVersion) => uploadLimit(version, ctx.engine.maxSize, ctx.options.uploadTtlSeconds);

/** A body is worth appending when it may hold bytes. */
const hasBody = (request: Request) => request.body !== null && request.headers.get('Content-Length') !== '0';

/** Upload-Offset and Upload-Complete belong only to appends (drafts -03 to -05 say so outright). */
function refuseUploadHeaders(request: Request, version: InteropVersion): void {
  if (version <= 6 && (request.headers.has('Upload-Offset') || request.headers.has('Upload-Complete'))) {
    throw new TusError('INVALID_IETF_HEADER');
  }
}

const create: IetfHandler = async (ctx, version) => {
  const { request, engine } = ctx;
  const headers = request.headers;
  if (headers.has('Upload-Offset')) throw new TusError('INVALID_IETF_HEADER', 'Upload-Offset on creation');
  const complete = uploadComplete(headers);
  if (complete === undefined) throw new TusError('INVALID_UPLOAD_COMPLETE', 'missing');
  const declared = h.uploadLength(headers);
  const size = h.contentLength(headers);
  // The length: Upload-Length, or for a creation that is the whole upload, its Content-Length.
  if (complete && declared !== undefined && size !== undefined && declared !== size) throw new TusError('INCONSISTENT_LENGTH');
  const length = declared ?? (complete ? size : undefined);

  const metadata: Metadata = { ...(h.uploadMetadata(headers) ?? {}) };
  const type = headers.get('Content-Type')?.split(';')[0]?.trim();
  if (type && type !== PARTIAL_UPLOAD && type !== 'application/offset+octet-stream') metadata.filetype ??= type;
  const filename = dispositionFilename(headers.get('Content-Disposition'));
  if (filename) metadata.filename ??= filename;

  const digest = creationDigest(request, ctx.options.uploadDigest);
  let upload: Upload;
  try {
    upload = await engine.create({ length, metadata, owner: ctx.owner, digest, request: ctx.hook });
  } catch (error) {
    if (error instanceof TusError) return ietfError(error, version, { limits: limits(ctx, version) });
    throw error;
  }
  const location = uploadUrl(ctx, upload.id);
  if (hasBody(request) || (complete && length === undefined)) {
    try {
      upload = await engine.append(upload.id, 0, readBody(request), { completes: complete, request: ctx.hook, owner: ctx.owner });
    } catch (error) {
      if (error instanceof TusError) return withHeaders(ietfError(error, version, { limits: limits(ctx, version) }), { Location: location });
      throw error;
    }
  }
  return new Response(null, { status: 201, headers: { Location: location, ...state(ctx, version, upload, true) } });
};

const head: IetfHandler = async (ctx, version) => {
  refuseUploadHeaders(ctx.request, version);
  const upload = await ctx.engine.get(ctx.id, ctx.loaded);
  return new Response(null, { status: 204, headers: { ...state(ctx, version, upload), 'Cache-Control': 'no-store' } });
};

const append: IetfHandler = async (ctx, version) => {
  const { request, engine, id } = ctx;
  const headers = request.headers;
  if (version >= 6 && headers.get('Content-Type')?.split(';')[0]?.trim() !== PARTIAL_UPLOAD) {
    throw new TusError('INVALID_CONTENT_TYPE', `use ${PARTIAL_UPLOAD}`);
  }
  const offset = h.uploadOffset(headers);
  if (offset === undefined) throw new TusError('INVALID_OFFSET', 'missing');
  const complete = uploadComplete(headers) ?? false;
  const size = h.contentLength(headers);
  // The last append fixes the length: its end, when its size is known.
  const length = h.uploadLength(headers) ?? (complete && size !== undefined ? offset + size : undefined);
  try {
    const digest = h.digestRequest(headers);
    const upload = await engine.append(id, offset, readBody(request), {
      length,
      completes: complete,
      finishedIsError: true,
      digest,
      request: ctx.hook,
      owner: ctx.owner,
    });
    return new Response(null, { status: 204, headers: state(ctx, version, upload, true) });
  } catch (error) {
    if (error instanceof TusError) return ietfError(error, version, { providedOffset: offset, limits: limits(ctx, version) });
    throw error;
  }
};

/**
 * GET on the upload resource, version 8 as the editor's copy now describes it: like HEAD, "MUST
 * include" the offset, completeness, length and limits, and "SHOULD include" Cache-Control:
 * no-store; content for it is "not defined by this protocol", so an upload still in progress
 * answers 204 and a complete one its bytes (this server's download, as for tus).
 */
const fetchUpload =
  (download: Handler): IetfHandler =>
  async (ctx, version) => {
    if (version < 8) return download(ctx);
    const upload = await ctx.engine.get(ctx.id, ctx.loaded);
    const headers = { ...state(ctx, version, upload), 'Cache-Control': 'no-store' };
    if (!isFinished(upload)) return new Response(null, { status: 204, headers });
    return withHeaders(await download(ctx), headers);
  };

const cancel: IetfHandler = async (ctx, version) => {
  refuseUploadHeaders(ctx.request, version);
  await ctx.engine.terminate(ctx.id, { owner: ctx.owner, request: ctx.hook });
  return new Response(null, { status: 204, headers: BASE(version) });
};

function withHeaders(response: Response, extra: Record<string, string>): Response {
  for (const [name, value] of Object.entries(extra)) response.headers.set(name, value);
  return response;
}

const bind =
  (handler: IetfHandler, version: InteropVersion): Handler =>
  (ctx) =>
    handler(ctx, version);

/** The routes of one interop version: the collection's and an upload's. */
export function ietfRoutes(version: InteropVersion, tus: { options: Handler; get: Handler }) {
  return {
    collection: { OPTIONS: tus.options, POST: bind(create, version) },
    upload: {
      OPTIONS: tus.options,
      HEAD: bind(head, version),
      PATCH: bind(append, version),
      DELETE: bind(cancel, version),
      GET: bind(fetchUpload(tus.get), version),
    },
  };
}
