import { isFinished, type Upload } from './upload.ts';

/** A transfer record older than this belongs to a PATCH that died with its instance. */
const STALE_MS = 10_000;

/** An upload's progress as the progress view shows it (JSON, or events of an event stream). */
export interface Progress {
  id: string;
  /** Bytes acknowledged to the client, or recorded durable during a PATCH. */
  offset: number;
  /** Bytes stored so far, those of a running PATCH included. */
  received: number;
  length: number | null;
  bytesPerSecond: number;
  state: 'uploading' | 'paused' | 'finished';
}

/** Whether a PATCH is writing the upload now: its transfer record is fresh. */
export function isWriting(upload: Upload, now = Date.now()): boolean {
  const t = upload.transfer;
  return t !== undefined && !isFinished(upload) && now - t.updatedAt < STALE_MS;
}

export function progressOf(upload: Upload, now = Date.now()): Progress {
  const t = upload.transfer;
  const live = t !== undefined && isWriting(upload, now);
  const seconds = live ? (t.updatedAt - t.startedAt) / 1000 : 0;
  return {
    id: upload.id,
    offset: upload.offset,
    // The offset moves during a PATCH as its bytes become durable; `received` counts from its start.
    received: live ? Math.max(upload.offset, t.startOffset + t.received) : upload.offset,
    length: upload.length ?? null,
    bytesPerSecond: live && seconds > 0 ? Math.round(t.received / seconds) : 0,
    state: isFinished(upload) ? 'finished' : live ? 'uploading' : 'paused',
  };
}
