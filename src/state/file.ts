import { createHash } from 'node:crypto';
import { link, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Upload } from '../model/upload.ts';
import { isUploadId } from '../model/id.ts';
import { applyFields } from './memory.ts';
import type { StateStore } from './types.ts';

/**
 * The embedded, persistent state store: one JSON file per upload beside its bytes, replaced
 * atomically (write + rename) so a crash leaves the old record or the new one, never half of one.
 * Server-only (uses the file system).
 */
export class FileStateStore implements StateStore {
  readonly #ready: Promise<unknown>;

  constructor(readonly dir: string) {
    this.#ready = mkdir(dir, { recursive: true });
  }

  #path(id: string) {
    return join(this.dir, `${id}.json`);
  }

  /** A key's reservation file, named by its hash: a key may hold any character and be 900 long. */
  #keyPath(key: string) {
    return join(this.dir, 'object-keys', createHash('sha256').update(key).digest('hex'));
  }

  async get(id: string): Promise<Upload | undefined> {
    await this.#ready;
    const text = await readIfExists(this.#path(id));
    return text === undefined ? undefined : (JSON.parse(text) as Upload);
  }

  async put(upload: Upload): Promise<void> {
    await this.#ready;
    const path = this.#path(upload.id);
    const temp = `${path}.${crypto.randomUUID()}.tmp`;
    await writeFile(temp, JSON.stringify(upload), { flush: true });
    await rename(temp, path);
  }

  async update(id: string, fields: Partial<Omit<Upload, 'id'>>): Promise<void> {
    const upload = await this.get(id);
    if (upload) await this.put(applyFields(upload, fields));
  }

  async delete(id: string): Promise<void> {
    await rm(this.#path(id), { force: true });
  }

  async *expired(now: number): AsyncIterable<Upload> {
    await this.#ready;
    for (const name of await readdir(this.dir)) {
      const id = name.slice(0, -'.json'.length);
      if (!name.endsWith('.json') || !isUploadId(id)) continue;
      const upload = await this.get(id);
      if (upload?.expiresAt !== undefined && upload.expiresAt <= now) yield upload;
    }
  }

  /**
   * Claims and releases run one at a time: taking a reservation over (its term passed) and giving
   * one back are each a read, then a write.
   */
  #keys: Promise<unknown> = Promise.resolve();

  #inTurn<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.#keys.then(work);
    this.#keys = turn.catch(() => {});
    return turn;
  }

  claimKey(key: string, id: string, termMs?: number): Promise<boolean> {
    return this.#inTurn(() => this.#claim(key, id, termMs));
  }

  async #claim(key: string, id: string, termMs: number | undefined): Promise<boolean> {
    const path = this.#keyPath(key);
    await mkdir(join(this.dir, 'object-keys'), { recursive: true });
    // Written whole, then linked into place: link fails if the name exists, so of two claims one
    // wins, and a crash never leaves a reservation without its holder. The holder itself, or a
    // claim after the term, replaces it (rename: the old reservation or the new one, never half).
    const temp = `${path}.${crypto.randomUUID()}.tmp`;
    await writeFile(temp, termMs === undefined ? id : `${id}\n${Date.now() + termMs}`, { flush: true });
    try {
      await link(temp, path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = reservation(await readIfExists(path));
      if (holder && holder.id !== id && holder.until > Date.now()) return false;
      await rename(temp, path);
      return true;
    } finally {
      await rm(temp, { force: true });
    }
  }

  releaseKey(key: string, id: string): Promise<void> {
    return this.#inTurn(async () => {
      const path = this.#keyPath(key);
      if (reservation(await readIfExists(path))?.id === id) await rm(path, { force: true });
    });
  }
}

/** A reservation file: the holder's id, then the end of its term (ms) when it has one. */
function reservation(text: string | undefined): { id: string; until: number } | undefined {
  if (text === undefined) return undefined;
  const [id = '', until] = text.split('\n');
  return { id, until: until === undefined ? Number.POSITIVE_INFINITY : Number(until) };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
