import { contentHeaders, downloadHeaders, parseRange } from '../../protocol/download.ts';
import { TusError } from '../../model/errors.ts';
import { errorResponse } from '../../protocol/respond.ts';
import { isFinished, type ByteRange } from '../../model/upload.ts';
import type { Handler } from './context.ts';

/**
 * Serves a finished upload's bytes, with single-range support; or, where the store offers it
 * (S3_DOWNLOAD_REDIRECT), redirects to a short-lived URL of them in storage: a Range header goes
 * along with the redirected request. Authentication and the owner check ran before.
 */
export const get: Handler = async ({ request, engine, id, loaded }) => {
  const upload = await engine.get(id, loaded);
  if (!isFinished(upload)) throw new TusError('NOT_FINISHED');
  const location = await engine.downloadUrl(upload, contentHeaders(upload.metadata));
  // The URL is a credential for a while: no cache keeps it.
  if (location) return new Response(null, { status: 307, headers: { Location: location, 'Cache-Control': 'no-store' } });
  const size = upload.length ?? 0;
  let range: ByteRange | undefined;
  try {
    range = parseRange(request.headers.get('Range'), size);
  } catch (error) {
    return errorResponse(error, { 'Content-Range': `bytes */${size}` });
  }
  const { body } = await engine.read(id, range);
  const headers: Record<string, string> = {
    ...downloadHeaders(upload.metadata),
    'Accept-Ranges': 'bytes',
    'Content-Length': String(range ? range.end - range.start + 1 : size),
  };
  if (!range) return new Response(body, { status: 200, headers });
  headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  return new Response(body, { status: 206, headers });
};
