import type { S3Client, SentPart } from './client.ts';
import { MIN_PART_SIZE, MiB } from './parts.ts';

/** Bytes [start, end) of source number `source`. */
export interface Piece {
  source: number;
  start: number;
  end: number;
}

/** A part copied inside S3, or read through the server from one or more pieces. */
export type PlannedPart = { copy: Piece } | { read: Piece[] };

/** S3 copies at most 5 GiB per UploadPartCopy; 4 GiB steps leave room to absorb a short remainder. */
const COPY_STEP = 4 * 1024 * MiB;

/**
 * The parts that concatenate objects of the given sizes. A run of at least 5 MiB is copied inside
 * S3 (no bytes through the server); bytes that cannot make such a part alone — sources under 5 MiB,
 * or the front of a source that tops up the bytes before it to 5 MiB — are read and sent as one part.
 */
export function planConcat(sizes: number[]): PlannedPart[] {
  const parts: PlannedPart[] = [];
  let pending: Piece[] = [];
  let pendingSize = 0;
  const add = (piece: Piece) => {
    pending.push(piece);
    pendingSize += piece.end - piece.start;
    if (pendingSize >= MIN_PART_SIZE) {
      parts.push({ read: pending });
      pending = [];
      pendingSize = 0;
    }
  };
  sizes.forEach((size, source) => {
    let start = 0;
    if (pendingSize > 0 && size > 0) {
      start = Math.min(size, MIN_PART_SIZE - pendingSize);
      add({ source, start: 0, end: start });
    }
    if (size - start < MIN_PART_SIZE) {
      if (size > start) add({ source, start, end: size });
      return;
    }
    for (let from = start; from < size; ) {
      const to = size - (from + COPY_STEP) < MIN_PART_SIZE ? size : from + COPY_STEP;
      parts.push({ copy: { source, start: from, end: to } });
      from = to;
    }
  });
  if (pendingSize > 0) parts.push({ read: pending });
  return parts;
}

/**
 * Sends the planned parts into the multipart upload, `parallel` at once (memory: at most that many
 * read parts), and resolves with what CompleteMultipartUpload needs.
 */
export async function sendPlan(s3: S3Client, key: string, uploadId: string, sources: string[], plan: PlannedPart[], parallel: number) {
  const sent = new Array<SentPart>(plan.length);
  const send = async (part: PlannedPart, partNumber: number): Promise<SentPart> => {
    if ('copy' in part) {
      const { source, start, end } = part.copy;
      return s3.uploadPartCopy(key, uploadId, partNumber, sources[source]!, [start, end - 1]);
    }
    const chunks = await Promise.all(
      part.read.map(async ({ source, start, end }) => {
        const res = await s3.getObject(sources[source]!, [start, end - 1]);
        if (!res) throw new Error(`object ${sources[source]} is missing`);
        return new Uint8Array(await res.arrayBuffer());
      }),
    );
    return s3.uploadPart(key, uploadId, partNumber, chunks);
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, plan.length) }, async () => {
      for (let i = next++; i < plan.length; i = next++) sent[i] = await send(plan[i]!, i + 1);
    }),
  );
  return sent.map((part, i) => ({ partNumber: i + 1, ...part }));
}
