import type { Upload } from '../model/upload.ts';
import type { ByteRange } from '../model/upload.ts';
import type { DataStore, WriteOptions, WriteResult } from './types.ts';

/** Bytes in this process's memory: for tests and embedding, not for large files. */
export class MemoryDataStore implements DataStore {
  readonly #files = new Map<string, Uint8Array[]>();

  async create(upload: Upload): Promise<void> {
    this.#files.set(upload.id, []);
  }

  async write(upload: Upload, body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<WriteResult> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of body) {
      chunks.push(chunk.slice());
      size += chunk.byteLength;
    }
    await options.verify();
    const kept = trim(this.#files.get(upload.id) ?? [], upload.offset);
    this.#files.set(upload.id, [...kept, ...chunks]);
    return { offset: upload.offset + size };
  }

  async finish(): Promise<void> {}

  async concat(final: Upload, partials: Upload[]): Promise<void> {
    this.#files.set(
      final.id,
      partials.map((p) => concat(this.#files.get(p.id) ?? []).subarray(0, p.length)),
    );
  }

  async read(upload: Upload, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const chunks = this.#files.get(upload.id);
    // As the other stores: a removed (or never created) upload has no bytes to give, not empty ones.
    if (!chunks) throw new Error(`upload ${upload.id} has no bytes in this store`);
    const all = concat(chunks);
    const bytes = range ? all.subarray(range.start, range.end + 1) : all;
    return new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
  }

  async remove(upload: Upload): Promise<void> {
    this.#files.delete(upload.id);
  }
}

/** The first `size` bytes of `chunks`. */
function trim(chunks: Uint8Array[], size: number): Uint8Array[] {
  return [concat(chunks).subarray(0, size)];
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
