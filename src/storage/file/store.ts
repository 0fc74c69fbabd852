import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Upload } from '../../engine/types.ts';
import type { ByteRange, DataStore, WriteOptions } from '../types.ts';

const READ_CHUNK = 256 * 1024;

/**
 * The embedded data store: an upload's bytes in one file under `dir`. Writes are positional at the
 * acknowledged offset, so bytes a crash left past it are simply overwritten by the resumed upload,
 * and each write is fsync'd before its offset is reported. Server-only (uses the file system).
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

  async write(upload: Upload, body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<number> {
    const file = await open(this.#path(upload), 'r+');
    let position = upload.offset;
    try {
      await file.truncate(position);
      for await (const chunk of body) {
        let done = 0;
        while (done < chunk.byteLength) {
          const { bytesWritten } = await file.write(chunk, done, chunk.byteLength - done, position + done);
          done += bytesWritten;
        }
        position += done;
      }
      await options.verify();
      await file.sync();
      return position;
    } catch (error) {
      await file.truncate(upload.offset).catch(() => {});
      throw error;
    } finally {
      await file.close();
    }
  }

  async finish(): Promise<void> {}

  async read(upload: Upload, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const file = await open(this.#path(upload), 'r');
    let position = range?.start ?? 0;
    const end = (range?.end ?? (upload.length ?? 0) - 1) + 1;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const size = Math.min(READ_CHUNK, end - position);
        if (size <= 0) {
          await file.close();
          return controller.close();
        }
        const buffer = new Uint8Array(size);
        const { bytesRead } = await file.read(buffer, 0, size, position);
        if (bytesRead === 0) {
          await file.close();
          return controller.error(new Error('file is shorter than its recorded length'));
        }
        position += bytesRead;
        controller.enqueue(buffer.subarray(0, bytesRead));
      },
      async cancel() {
        await file.close();
      },
    });
  }

  async remove(upload: Upload): Promise<void> {
    await rm(this.#path(upload), { force: true });
  }
}
