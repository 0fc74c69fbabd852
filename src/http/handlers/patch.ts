import { TusError } from '../../model/errors.ts';
import * as h from '../../protocol/headers.ts';
import { readBody } from './body.ts';
import { expiryHeader, type Handler } from './context.ts';

export const patch: Handler = async ({ request, engine, id, hook, owner }) => {
  const headers = request.headers;
  if (!h.isOffsetStream(headers)) throw new TusError('INVALID_CONTENT_TYPE');
  const offset = h.uploadOffset(headers);
  if (offset === undefined) throw new TusError('INVALID_OFFSET', 'missing');
  const length = h.uploadLength(headers);
  const upload = await engine.append(id, offset, readBody(request), { length, request: hook, owner });
  return new Response(null, {
    status: 204,
    headers: { 'Upload-Offset': String(upload.offset), ...expiryHeader(upload) },
  });
};
