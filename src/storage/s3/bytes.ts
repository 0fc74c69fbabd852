/** Bytes held as a list of views (a part made of slabs): their total size, and one copy of them all. */
export const byteLengthOf = (views: readonly Uint8Array[]): number => views.reduce((n, v) => n + v.byteLength, 0);

export function joinBytes(views: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(byteLengthOf(views));
  views.reduce((at, view) => (out.set(view, at), at + view.byteLength), 0);
  return out;
}

/**
 * Frees a chunk's memory now rather than when the garbage collector runs: transferring its buffer
 * detaches it (only a chunk that is its whole buffer, and nobody else's).
 */
export function freeChunk(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength) buffer.transfer(0);
}
