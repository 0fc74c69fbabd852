import { TusError } from '../protocol/errors.ts';
import * as h from '../protocol/headers.ts';
import { errorResponse } from '../protocol/respond.ts';
import { expiryHeader, uploadUrl, type Handler } from './context.ts';
import { readBody } from './body.ts';

/** creation, creation-defer-length and creation-with-upload. */
export const post: Handler = async (ctx) => {
  const headers = ctx.request.headers;
  const length = h.uploadLength(headers);
  const deferred = h.deferLength(headers);
  if ((length === undefined) === !deferred) throw new TusError('LENGTH_REQUIRED');
  const metadata = h.uploadMetadata(headers) ?? {};
  const body = h.isOffsetStream(headers) ? readBody(ctx.request) : undefined;

  let upload = await ctx.engine.create({ length, metadata });
  const location = uploadUrl(ctx, upload.id);
  if (body) {
    try {
      upload = await ctx.engine.append(upload.id, 0, body);
    } catch (error) {
      // The upload exists even though its first bytes failed: tell the client where to resume.
      return errorResponse(error, { Location: location });
    }
  }
  return new Response(null, {
    status: 201,
    headers: { Location: location, 'Upload-Offset': String(upload.offset), ...expiryHeader(upload) },
  });
};
