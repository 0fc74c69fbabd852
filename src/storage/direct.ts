import type { Upload } from '../model/upload.ts';
import type { DataStore } from './types.ts';

/** A part a client sent straight to storage, as storage lists it. */
export interface DirectPart {
  partNumber: number;
  etag: string;
  size: number;
}

/**
 * Uploads whose bytes go from the client straight to storage (S3 multipart uploads with presigned
 * part URLs): the server only starts, signs, lists and completes them. A store that can do this has
 * it as its `direct` property; the engine keeps the upload's record as for any other upload.
 */
export interface DirectUploads {
  /** The object key the upload's bytes go to, as the client names it. */
  objectKey(upload: Pick<Upload, 'id' | 'key'>): string;
  /** Starts the upload in storage; the returned fields are kept in `upload.store`. */
  create(upload: Upload): Promise<Record<string, string>>;
  /**
   * Starts an upload the client sends whole in one form POST (small files): nothing in storage yet
   * but what recovers the record; the returned fields are kept in `upload.store`.
   */
  createSingle(upload: Upload): Promise<Record<string, string>>;
  /**
   * The form POST of a single upload: its URL and fields, allowing only its key, its object headers
   * (`type` where it has none) and at most `maxSize` bytes, for `expiresSeconds` from `now`.
   */
  signPost(upload: Upload, o: { type: string; maxSize?: number; expiresSeconds: number; now?: Date }): Promise<{ url: string; fields: Record<string, string> }>;
  /** The size of the upload's object once it is stored whole, else undefined. */
  storedSize(upload: Upload): Promise<number | undefined>;
  /** A URL that lets the client PUT one part's bytes for `expiresSeconds`. */
  signPart(upload: Upload, partNumber: number, expiresSeconds: number): Promise<string>;
  /**
   * Every part storage holds, in part order; undefined when the multipart upload is gone (it was
   * completed, perhaps by a completion whose answer was lost, or aborted).
   */
  listParts(upload: Upload): Promise<DirectPart[] | undefined>;
  /**
   * Joins the parts (as storage lists them), in order, into the finished object of `length` bytes,
   * without overwriting another object at its key. Parts storage refuses to join (too small, not
   * stored, out of order) are the client's fault: a TusError.
   */
  complete(upload: Upload, parts: DirectPart[], length: number): Promise<void>;
}

/** The direct uploads a data store offers, if it offers them. */
export function directUploadsOf(store: DataStore): DirectUploads | undefined {
  const direct = (store as DataStore & { direct?: DirectUploads }).direct;
  return typeof direct?.signPart === 'function' ? direct : undefined;
}
