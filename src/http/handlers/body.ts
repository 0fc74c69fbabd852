import type { Body } from '../../engine/engine.ts';
import * as h from '../../protocol/headers.ts';

/** The request's bytes as the engine takes them; headers are checked before anything is read. */
export function readBody(request: Request): Body {
  const checksum = h.uploadChecksum(request.headers);
  const size = h.contentLength(request.headers);
  return { stream: request.body ?? new ReadableStream({ start: (c) => c.close() }), size, checksum, signal: request.signal };
}
