import type { ByteRange, Upload } from '../model/upload.ts';

export interface WriteOptions {
  /**
   * Runs after the body has ended and before the new bytes count. If it throws, everything this
   * write stored is discarded (the offset stays where it was) and the error is rethrown.
   */
  verify(): void | Promise<void>;
  /** How many bytes the body will bring, when the client said (Content-Length). */
  size?: number;
  /** Told how many bytes of this write are stored so far, as the store goes (for progress views). */
  onProgress?(received: number): void;
  /**
   * Told how many bytes of this write, from its start and without a gap, are durable at their final
   * place (whole S3 parts, bytes fsync'd on disk), as the store goes. Given only for a write whose
   * bytes may count before its body ends (no checksum): the engine records them at once, so a crash
   * keeps them. Bytes once reported stay stored even if the write fails later; the rest of a failed
   * write is discarded as usual.
   */
  onDurable?(bytes: number): void;
  /**
   * Aborts when the body is cut (client gone or silent too long, shutdown, lock takeover). The body
   * then ends on its own; a store that waits for something else (memory) stops waiting and ends the
   * write with what it took from the body, as if the body had ended there.
   */
  signal?: AbortSignal;
}

/**
 * How a write ends: the new durable offset, or `completed` when storage shows the upload already
 * complete (an earlier request completed it, and its answer or the record of it was lost), so the
 * engine records it as finished. Only said of an upload whose length is known.
 */
export type WriteResult = { offset: number } | { completed: true };

/**
 * Where an upload's bytes live. The engine serialises calls per upload (one writer at a time), so a
 * store needs no locking of its own. A store never sees HTTP.
 */
export interface DataStore {
  /** Prepares storage for a new upload; the returned fields are kept in `upload.store`. */
  create(upload: Upload): Promise<Record<string, string> | void>;
  /**
   * Appends `body` at `upload.offset` and resolves with the new durable offset. A body that ends
   * normally is committed (after `verify`); a body that errors discards this write, but for the
   * bytes it reported to `onDurable`.
   */
  write(upload: Upload, body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<WriteResult>;
  /** Called once the offset reaches the length: makes the bytes one readable file. */
  finish(upload: Upload): Promise<void>;
  /** The bytes of a finished upload (a Blob lets the server send Content-Length and sendfile). */
  read(upload: Upload, range?: ByteRange): Promise<ReadableStream<Uint8Array> | Blob>;
  /** Removes every byte and object the upload created. Idempotent. */
  remove(upload: Upload): Promise<void>;
  /**
   * Makes `final`'s bytes the concatenation of the finished `partials`, in order: afterwards
   * `final` is finished and readable. The partials stay as they are. Without it, the server offers
   * no concatenation.
   */
  concat?(final: Upload, partials: Upload[]): Promise<Record<string, string> | void>;
  /**
   * Records a length that was deferred at creation and has just been declared. A store with
   * `recover` needs it to offer deferred lengths (a rebuilt record must have the length).
   */
  declareLength?(upload: Upload): Promise<void>;
  /** Unfinished uploads whose storage was started before `before` (for the orphan cleanup). */
  stale?(before: number): AsyncIterable<Pick<Upload, 'id' | 'store'>>;
  /** Throws when the storage cannot be reached (for health checks and start-up). */
  check?(): Promise<void>;
  /** Rebuilds a record the state store lost, from what storage alone can prove. */
  recover?(id: string): Promise<Upload | undefined>;
  /**
   * Whether storage already holds something at an object key a hook chose (an upload's object, or
   * one being written), for stores that name objects by `upload.key`: the state store's reservation
   * of the key may be lost, the object never is.
   */
  keyInUse?(key: string): Promise<boolean>;
  /**
   * A short-lived URL the finished upload's bytes can be fetched from without the server (a
   * presigned S3 URL), served with `headers`; undefined when downloads go through the server.
   */
  downloadUrl?(upload: Upload, headers: { 'Content-Type': string; 'Content-Disposition': string }): Promise<string | undefined>;
}
