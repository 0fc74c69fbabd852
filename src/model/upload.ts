import type { ObjectSettings } from './object-settings.ts';
import type { UploadDigest } from './digest.ts';

/** Decoded Upload-Metadata: a key with no value maps to null. */
export type Metadata = Record<string, string | null>;

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** What the server knows about one upload. Times are epoch milliseconds. */
export interface Upload {
  id: string;
  /** Bytes durably stored and acknowledged to the client. */
  offset: number;
  /** Absent while the length is deferred. */
  length?: number;
  metadata: Metadata;
  createdAt: number;
  /** Absent once the upload is finished: finished uploads do not expire. */
  expiresAt?: number;
  finishedAt?: number;
  /** Who created it, when authentication is on: only they may use it. */
  owner?: string;
  /** The object's name in storage when a hook chose one (default: the id). */
  key?: string;
  /**
   * What the stored object carries besides type and disposition, as a pre-create hook chose it
   * (over the server's own settings).
   */
  object?: ObjectSettings;
  /** Concatenation: a partial upload, or a final one made of these partial uploads (ids, in order). */
  concat?: 'partial' | { final: string[] };
  /** Present while a PATCH streams: what arrived so far, for the progress view. */
  transfer?: Transfer;
  /** The whole-upload digest (RFC 9530 Repr-Digest): asked for, or to check at completion. */
  digest?: UploadDigest;
  /** Fields the data store owns (an S3 UploadId, say); nothing else reads them. */
  store?: Record<string, string>;
}

export const isFinished = (u: Upload): boolean => u.length !== undefined && u.offset === u.length;

export const isFinal = (u: Upload): u is Upload & { concat: { final: string[] } } => typeof u.concat === 'object';

export interface Transfer {
  startedAt: number;
  /** The offset the PATCH started from. */
  startOffset: number;
  /** Bytes of this PATCH durably stored so far (not yet acknowledged). */
  received: number;
  updatedAt: number;
}
