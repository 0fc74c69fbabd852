import { TusError } from '../../model/errors.ts';
import * as h from '../../protocol/headers.ts';
import { errorResponse } from '../../protocol/respond.ts';
import { expiryHeader, idFromUrl, uploadUrl, type Handler } from './context.ts';
import { creationDigest, readBody } from './body.ts';

/** creation, creation-defer-length, creation-with-upload and concatenation. */
export const post: Handler = async (ctx) => {
  const headers = ctx.request.headers;
  const length = h.uploadLength(headers);
  const deferred = h.deferLength(headers);
  const concat = h.uploadConcat(headers);
  const metadata = h.uploadMetadata(headers) ?? {};

  if (concat && 'final' in concat) {
    if (length !== undefined || deferred) throw new TusError('CONCAT_WITH_LENGTH');
    const ids = concat.final.map((reference) => idFromUrl(ctx, reference));
    const final = await ctx.engine.concatenate(ids, metadata, { owner: ctx.owner, request: ctx.hook });
    return new Response(null, { status: 201, headers: { Location: uploadUrl(ctx, final.id), ...expiryHeader(final) } });
  }

  if ((length === undefined) === !deferred) throw new TusError('LENGTH_REQUIRED');
  const body = h.isOffsetStream(headers) ? readBody(ctx.request) : undefined;
  // RFC 9530 at creation: Repr-Digest is checked when the upload completes, Want-Repr-Digest has the
  // digest computed as the bytes arrive (for the post-finish hook).
  const digest = creationDigest(ctx.request, ctx.options.uploadDigest);
  let upload = await ctx.engine.create({ length, metadata, partial: concat !== undefined, owner: ctx.owner, digest, request: ctx.hook });
  const location = uploadUrl(ctx, upload.id);
  if (body) {
    try {
      upload = await ctx.engine.append(upload.id, 0, body, { request: ctx.hook, owner: ctx.owner });
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
