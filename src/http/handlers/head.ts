import { serializeMetadata } from '../../protocol/metadata.ts';
import { isFinal, isFinished } from '../../model/upload.ts';
import { concatHeader, expiryHeader, type Handler } from './context.ts';

export const head: Handler = async (ctx) => {
  const upload = await ctx.engine.get(ctx.id, ctx.loaded);
  const headers: Record<string, string> = {
    'Cache-Control': 'no-store',
    ...expiryHeader(upload),
    ...concatHeader(ctx, upload),
  };
  // An unfinished final upload has no offset of its own to resume from.
  if (!isFinal(upload) || isFinished(upload)) headers['Upload-Offset'] = String(upload.offset);
  if (upload.length === undefined) headers['Upload-Defer-Length'] = '1';
  else headers['Upload-Length'] = String(upload.length);
  const metadata = serializeMetadata(upload.metadata);
  if (metadata) headers['Upload-Metadata'] = metadata;
  return new Response(null, { status: 200, headers });
};
