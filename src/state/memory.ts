import type { Upload } from '../model/upload.ts';
import type { StateStore } from './types.ts';

/** Records in this process only: for tests, embedding, and single-instance hosts without a disk. */
export class MemoryStateStore implements StateStore {
  readonly #records = new Map<string, Upload>();
  /** Object key → the upload holding it, until when (ms). */
  readonly #keys = new Map<string, { id: string; until: number }>();

  async get(id: string) {
    const upload = this.#records.get(id);
    return upload && structuredClone(upload);
  }

  async put(upload: Upload) {
    this.#records.set(upload.id, structuredClone(upload));
  }

  async update(id: string, fields: Partial<Omit<Upload, 'id'>>) {
    const upload = this.#records.get(id);
    if (upload) this.#records.set(id, applyFields(upload, fields));
  }

  async delete(id: string) {
    this.#records.delete(id);
  }

  async *expired(now: number) {
    for (const upload of [...this.#records.values()]) {
      if (upload.expiresAt !== undefined && upload.expiresAt <= now) yield structuredClone(upload);
    }
  }

  async claimKey(key: string, id: string, termMs?: number) {
    const holder = this.#keys.get(key);
    if (holder && holder.id !== id && holder.until > Date.now()) return false;
    this.#keys.set(key, { id, until: termMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + termMs });
    return true;
  }

  async releaseKey(key: string, id: string) {
    if (this.#keys.get(key)?.id === id) this.#keys.delete(key);
  }
}

/**
 * A copy of `upload` with `fields` applied; a field given as undefined is removed. The offset
 * never moves back, so a writer that lost its lock cannot undo a newer writer's progress; the
 * running digest covers exactly the offset saved with it, so it is refused along with that offset.
 */
export function applyFields(upload: Upload, fields: Partial<Omit<Upload, 'id'>>): Upload {
  const next: Record<string, unknown> = { ...upload };
  const behind = fields.offset !== undefined && fields.offset < upload.offset;
  for (const [key, value] of Object.entries(fields)) {
    if (behind && (key === 'offset' || key === 'digest')) continue;
    if (value === undefined) delete next[key];
    else next[key] = structuredClone(value);
  }
  return next as unknown as Upload;
}
