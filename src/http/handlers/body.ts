import type { Body, DigestRequest } from '../../engine/engine.ts';
import * as h from '../../protocol/headers.ts';

/** The request's bytes as the engine takes them; headers are checked before anything is read. */
export function readBody(request: Request): Body {
  const checksum = h.uploadChecksum(request.headers);
  const size = h.contentLength(request.headers);
  return { stream: request.body ?? new ReadableStream({ start: (c) => c.close() }), size, checksum, signal: request.signal };
}

/** The whole-upload digest a creation asks for (Repr-Digest, Want-Repr-Digest), or the server's `uploadDigest`. */
export function creationDigest(request: Request, uploadDigest: DigestRequest['algorithm'] | undefined): DigestRequest | undefined {
  return h.digestRequest(request.headers) ?? (uploadDigest && { algorithm: uploadDigest });
}
