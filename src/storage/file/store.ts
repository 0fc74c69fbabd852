import { openAsBlob } from 'node:fs';
import { access, constants, mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Upload } from '../../model/upload.ts';
import type { ByteRange } from '../../model/upload.ts';
import type { DataStore, WriteOptions, WriteResult } from '../types.ts';

/**
 * How often a write that may count before its body ends (`onDurable`) fsyncs what it has written
 * and reports it: a crash loses at most this long, or this much, of a PATCH.
 */
const SYNC_INTERVAL_MS = 250;
const SYNC_BYTES = 16 * 1024 * 1024;

/**
 * The embedded data store: an upload's bytes in one file under `dir`. Writes are positional at the
 * acknowledged offset, so bytes a crash left past it are simply overwritten by the resumed upload,
 * and each write is fsync'd before its offset is reported (a write without a checksum also every
 * 250 ms or 16 MiB while its body streams, so a crash keeps what was synced). Server-only (uses the file system).
 */
export class FileDataStore implements DataStore {
  readonly #ready: Promise<unknown>;

  constructor(readonly dir: string) {
    this.#ready = mkdir(dir, { recursive: true });
  }

  #path(upload: Upload) {
    return join(this.dir, upload.id);
  }

  async create(upload: Upload): Promise<void> {
    await this.#ready;
    const file = await open(this.#path(upload), 'w');
    await file.sync();
    await file.close();
  }

  async write(upload: Upload, body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<WriteResult> {
    const file = await open(this.#path(upload), 'r+');
    let position = upload.offset;
    // Where the bytes reported durable end (only with `onDurable`), and when they were last synced.
    let durable = upload.offset;
    let synced = performance.now();
    try {
      await file.truncate(position);
      for await (const chunk of body) {
        position = await writeAt(file, chunk, position);
        options.onProgress?.(position - upload.offset);
        if (options.onDurable && (position - durable >= SYNC_BYTES || performance.now() - synced >= SYNC_INTERVAL_MS)) {
          await file.sync();
          synced = performance.now();
          durable = position;
          options.onDurable(durable - upload.offset);
        }
      }
      await options.verify();
      await file.sync();
      return { offset: position };
    } catch (error) {
      await file.truncate(durable).catch(() => {});
      throw error;
    } finally {
      await file.close();
    }
  }

  async finish(): Promise<void> {}

  async check(): Promise<void> {
    await this.#ready;
    await access(this.dir, constants.W_OK);
  }

  async concat(final: Upload, partials: Upload[]): Promise<void> {
    const file = await open(this.#path(final), 'w');
    try {
      let position = 0;
      for (const partial of partials) {
        const blob = (await openAsBlob(this.#path(partial))).slice(0, partial.length);
        for await (const chunk of blob.stream()) position = await writeAt(file, chunk, position);
      }
      await file.sync();
    } finally {
      await file.close();
    }
  }

  async read(upload: Upload, range?: ByteRange): Promise<Blob> {
    const file = await openAsBlob(this.#path(upload));
    return range ? file.slice(range.start, range.end + 1) : file;
  }

  async remove(upload: Upload): Promise<void> {
    await rm(this.#path(upload), { force: true });
  }
}

/** Writes all of `chunk` at `position`; resolves with the position after it. */
async function writeAt(file: FileHandle, chunk: Uint8Array, position: number): Promise<number> {
  for (let done = 0; done < chunk.byteLength; ) {
    done += (await file.write(chunk, done, chunk.byteLength - done, position + done)).bytesWritten;
  }
  return position + chunk.byteLength;
}
