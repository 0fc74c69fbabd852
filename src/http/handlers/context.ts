import type { UploadEngine } from '../../engine/engine.ts';
import type { Upload } from '../../model/upload.ts';
import type { ResolvedOptions } from '../options.ts';
import type { HookRequest } from '../../hooks/types.ts';
import { httpDate } from '../../protocol/headers.ts';
import { TusError } from '../../model/errors.ts';
import { isUploadId } from '../../model/id.ts';
import { publicUrl } from '../forwarded.ts';

/** What every handler gets: the parsed request's parts, the engine and the options. */
export interface HandlerContext {
  request: Request;
  engine: UploadEngine;
  options: ResolvedOptions;
  /** The upload id from the URL, for routes that have one. */
  id: string;
  /** The authenticated user, when authentication names one. */
  owner?: string;
  /** The upload's record, when the owner check has read it already: for `engine.get`, not read again. */
  loaded?: Upload;
  /** The request as hooks see it. */
  hook: HookRequest;
}

export type Handler = (ctx: HandlerContext) => Promise<Response> | Response;

/** Upload-Expires, for uploads that can still expire. */
export function expiryHeader(upload: Upload): Record<string, string> {
  return upload.expiresAt === undefined ? {} : { 'Upload-Expires': httpDate(upload.expiresAt) };
}

/**
 * The upload's absolute URL: the collection URL the client used (behind a trusted proxy, the public
 * one), plus the id. (For requests on an upload's own URL, the collection is its parent.)
 */
function absoluteUploadUrl(ctx: HandlerContext, id: string): URL {
  const url = publicUrl(ctx.request, ctx.options.trustProxy);
  if (ctx.id) url.pathname = url.pathname.replace(/\/[^/]*\/?$/, '');
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${id}`;
  url.search = '';
  return url;
}

/** The upload's URL as the server states it: absolute, or with `relativeLocation` only its path. */
export function uploadUrl(ctx: HandlerContext, id: string): string {
  const url = absoluteUploadUrl(ctx, id);
  return ctx.options.relativeLocation ? url.pathname : url.href;
}

/** The id of an upload URL (relative or absolute) if it names an upload of this server. */
export function idFromUrl(ctx: HandlerContext, reference: string): string {
  const id = reference.replace(/\/+$/, '').split('/').pop() ?? '';
  const own = absoluteUploadUrl(ctx, id).href;
  let resolved: string;
  try {
    resolved = new URL(reference, own).href;
  } catch {
    throw new TusError('FOREIGN_UPLOAD', reference.slice(0, 100));
  }
  // With relative URLs the server may not know the origin clients see (the proxy rewrites Host):
  // then the path alone names the upload.
  const same = ctx.options.relativeLocation ? new URL(resolved).pathname.replace(/\/+$/, '') === new URL(own).pathname : resolved.replace(/\/+$/, '') === own;
  if (!isUploadId(id) || !same) throw new TusError('FOREIGN_UPLOAD', reference.slice(0, 100));
  return id;
}

/** Upload-Concat as HEAD reports it. */
export function concatHeader(ctx: HandlerContext, upload: Upload): Record<string, string> {
  if (upload.concat === undefined) return {};
  if (upload.concat === 'partial') return { 'Upload-Concat': 'partial' };
  return { 'Upload-Concat': `final;${upload.concat.final.map((id) => uploadUrl(ctx, id)).join(' ')}` };
}
