import type { Upload } from '../../model/upload.ts';
import type { StateStore } from '../types.ts';
import type { ScriptRunner } from './client.ts';
import { CLAIM, DELETE, DUE, GET, INDEX, PUT, RELEASE, UPDATE } from './scripts.ts';

type Fields = Partial<Omit<Upload, 'id'>>;

export interface RedisStateOptions {
  runner: ScriptRunner;
  /** Prepended to every key. */
  prefix: string;
  /** How long a finished upload's record is kept (S3 can rebuild it afterwards). */
  finishedTtlMs: number;
  /** How long an expired upload's record outlives its expiry, so the cleanup still finds it. */
  graceMs: number;
}

/** One-letter hash fields: the record is read and written on every request. */
const FIELDS = {
  offset: 'o',
  length: 'l',
  metadata: 'm',
  createdAt: 'c',
  expiresAt: 'e',
  finishedAt: 'f',
  store: 's',
  transfer: 't',
  concat: 'x',
  owner: 'w',
  key: 'k',
  digest: 'd',
  object: 'b',
} as const satisfies Record<Exclude<keyof Upload, 'id'>, string>;
type Field = keyof typeof FIELDS;
const JSON_FIELDS = new Set<Field>(['metadata', 'store', 'transfer', 'concat', 'digest', 'object']);
const TEXT_FIELDS = new Set<Field>(['owner', 'key']);
const BY_LETTER = Object.fromEntries(Object.entries(FIELDS).map(([k, v]) => [v, k as Field]));

/** Field/value pairs; an undefined value becomes '' (the scripts' "remove"), or is left out. */
function encode(fields: Fields, keepUndefined: boolean): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(fields) as [Field, unknown][]) {
    if (!(name in FIELDS) || (value === undefined && !keepUndefined)) continue;
    out.push(FIELDS[name], value === undefined ? '' : JSON_FIELDS.has(name) ? JSON.stringify(value) : String(value));
  }
  return out;
}

/** A record from its field/value pairs (HGETALL), or undefined when there are none. */
export function decode(id: string, flat: string[]): Upload | undefined {
  if (flat.length === 0) return undefined;
  const upload: Record<string, unknown> = { id };
  for (let i = 0; i < flat.length; i += 2) {
    const name = BY_LETTER[flat[i]!];
    if (name) upload[name] = JSON_FIELDS.has(name) ? JSON.parse(flat[i + 1]!) : TEXT_FIELDS.has(name) ? flat[i + 1] : Number(flat[i + 1]);
  }
  return upload as unknown as Upload;
}

/**
 * Upload records in Redis (over TCP or Upstash's REST API): one hash per upload under
 * `<prefix>{<id>}`, with a TTL tied to the upload's expiry, and a sorted set of expiries for the
 * cleanup (no KEYS, no SCAN over the keyspace).
 */
export class RedisStateStore implements StateStore {
  constructor(readonly options: RedisStateOptions) {}

  key(id: string): string {
    return `${this.options.prefix}{${id}}`;
  }

  /**
   * An object key's reservation: a key of its own (so its own hash slot), without expiry, as the
   * object it guards has none.
   */
  #reservation(key: string): string {
    return `${this.options.prefix}object-key:${key}`;
  }

  /** The sorted set of unfinished uploads by expiry, for the cleanup. */
  get index(): string {
    return `${this.options.prefix}expiries`;
  }

  #expireAt(upload: Pick<Upload, 'expiresAt' | 'finishedAt'>): number {
    if (upload.expiresAt !== undefined) return upload.expiresAt + this.options.graceMs;
    return (upload.finishedAt ?? Date.now()) + this.options.finishedTtlMs;
  }

  async get(id: string): Promise<Upload | undefined> {
    return decode(id, (await this.options.runner.run(GET, [this.key(id)], [])) as string[]);
  }

  async put(upload: Upload): Promise<void> {
    const { id, ...fields } = upload;
    await this.options.runner.run(PUT, [this.key(id), this.index], [this.#expireAt(upload), upload.expiresAt ?? '', id, ...encode(fields, false)]);
  }

  async update(id: string, fields: Fields): Promise<void> {
    await this.options.runner.run(UPDATE, [this.key(id), this.index], this.saveArgs(id, fields));
  }

  /**
   * The arguments of the scripts that save fields of a record (UPDATE, and the locker's renewal and
   * release): the TTL when the lifecycle changes, then whether the upload leaves the expiry index.
   * The index only needs to know the earliest moment an upload could be due: a PATCH moves the
   * expiry later, and the cleanup checks the record itself, so only an upload that stops expiring
   * (it finished) leaves it.
   */
  saveArgs(id: string, fields: Fields): (string | number)[] {
    const lifecycle = 'expiresAt' in fields || 'finishedAt' in fields;
    const unindex = 'expiresAt' in fields && fields.expiresAt === undefined;
    return [lifecycle ? this.#expireAt(fields) : 0, unindex ? '1' : '0', id, ...encode(fields, true)];
  }

  async delete(id: string): Promise<void> {
    const key = this.key(id);
    await this.options.runner.run(DELETE, [key, `${key}:lock`, `${key}:stop`, this.index], [id]);
  }

  async claimKey(key: string, id: string, termMs?: number): Promise<boolean> {
    return (await this.options.runner.run(CLAIM, [this.#reservation(key)], [id, termMs ?? ''])) === 1;
  }

  async releaseKey(key: string, id: string): Promise<void> {
    await this.options.runner.run(RELEASE, [this.#reservation(key)], [id]);
  }

  async #indexExpiry(id: string, expiresAt: number | undefined): Promise<void> {
    await this.options.runner.run(INDEX, [this.index], [expiresAt === undefined ? '' : expiresAt, id]);
  }

  async *expired(now: number): AsyncIterable<Upload> {
    const seen = new Set<string>();
    for (;;) {
      const due = ((await this.options.runner.run(DUE, [this.index], [now, 100])) as string[]).filter((id) => !seen.has(id));
      if (due.length === 0) return;
      for (const id of due) {
        seen.add(id);
        const upload = await this.get(id);
        if (!upload || upload.expiresAt === undefined)
          await this.#indexExpiry(id, undefined); // gone or finished
        else if (upload.expiresAt > now)
          await this.#indexExpiry(id, upload.expiresAt); // written since: not due yet
        else yield upload;
      }
    }
  }
}
