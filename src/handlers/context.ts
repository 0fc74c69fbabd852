import type { UploadEngine } from '../engine/engine.ts';
import type { Upload } from '../engine/types.ts';
import type { ResolvedOptions } from '../config.ts';
import { httpDate } from '../protocol/headers.ts';

/** What every handler gets: the parsed request's parts, the engine and the options. */
export interface HandlerContext {
  request: Request;
  engine: UploadEngine;
  options: ResolvedOptions;
  /** The upload id from the URL, for routes that have one. */
  id: string;
}

export type Handler = (ctx: HandlerContext) => Promise<Response> | Response;

/** Upload-Expires, for uploads that can still expire. */
export function expiryHeader(upload: Upload): Record<string, string> {
  return upload.expiresAt === undefined ? {} : { 'Upload-Expires': httpDate(upload.expiresAt) };
}

/** The upload's absolute URL: the collection URL the client used, plus the id. */
export function uploadUrl(ctx: HandlerContext, id: string): string {
  const url = new URL(ctx.request.url);
  if (ctx.options.trustProxy) {
    const host = ctx.request.headers.get('X-Forwarded-Host')?.split(',')[0]?.trim();
    const proto = ctx.request.headers.get('X-Forwarded-Proto')?.split(',')[0]?.trim();
    if (host) url.host = host;
    if (proto === 'http' || proto === 'https') url.protocol = `${proto}:`;
  }
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${id}`;
  url.search = '';
  return url.href;
}
