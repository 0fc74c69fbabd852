/**
 * Segment bookkeeping of the S3 store, apart from any request so it can be tested on its own: the
 * bytes of an upload's incomplete part wait in segment objects named by the offset they start at,
 * `<base>.part/<offset>`, and each write decides which segment it stores and which become obsolete.
 * Nothing is deleted by the write that makes it obsolete: only once its offset is saved, since
 * until then a retry of the same write may need the old segments.
 *
 * An upload keeps at most `maxSegments` current segments: the write that would leave more stores
 * the whole incomplete part again as one segment at the part's start, so however many small
 * PATCHes came, reading the part back (after a restart, or on another instance) takes a few GETs.
 */

/** The most segments that hold an upload's incomplete part at once. */
export const maxSegments = 8;

/** Where an upload's segments are listed: every segment key starts with this. */
export const segmentPrefix = (base: string): string => `${base}.part/`;

/** The key of the segment that starts at `start`. */
export const segmentKey = (base: string, start: number): string => `${segmentPrefix(base)}${start}`;

/** The offset a listed key's segment starts at, or undefined when the key is not a segment's. */
export function segmentStart(base: string, key: string): number | undefined {
  const prefix = segmentPrefix(base);
  if (!key.startsWith(prefix)) return undefined;
  const start = Number(key.slice(prefix.length));
  return Number.isSafeInteger(start) ? start : undefined;
}

/** The segments a write starts with: those holding the bytes it carries in front of its body. */
export interface CarriedSegments {
  /** Their keys, in order. */
  segments: readonly string[];
  /**
   * Read back from S3 rather than remembered, so the listing may hold segments a failed request
   * left: the write rewrites the carried bytes as one segment, which retires them.
   */
  consolidate?: boolean;
}

/** How a write ended, in the sizes the bookkeeping needs. */
export interface WriteEnd {
  /** The upload's offset after the write. */
  offset: number;
  /** The upload's length, when known. */
  length?: number;
  /** Bytes of the incomplete part the write started with (carried in front of its body). */
  carried: number;
  /** Bytes taken from the body. */
  received: number;
  /** Bytes after the last full part when the body ended, carried ones included. */
  tail: number;
  /** Whether the write sent at least one full part, which took the carried bytes with it. */
  sentPart: boolean;
}

export interface SegmentPlan {
  /** The write reached the upload's length: the tail, if any, goes as the last part, not a segment. */
  last: boolean;
  /** The segment object to store: the tail's bytes from `from` on, at `key`. */
  segment?: { key: string; from: number };
  /** The segments that hold the incomplete part afterwards, in order. */
  segments: string[];
  /** Segments that hold nothing needed once this write's offset is saved. */
  obsolete: string[];
}

/**
 * What a write does with its tail, given the segments it carried. New bytes become one segment of
 * their own, so no byte is written twice while the carried segments are current (remembered by this
 * instance); carried bytes are written again only when a part took them (then they are in the part,
 * and their segments are obsolete), when they were read back, or when one more segment would make
 * more than `limit` (then all of them go in one segment at the part's start, replacing the others).
 */
export function planSegments(base: string, carry: CarriedSegments | undefined, end: WriteEnd, limit = maxSegments): SegmentPlan {
  const carried = carry?.segments ?? [];
  const last = end.length !== undefined && end.offset === end.length;
  const retired = { last, segments: [], obsolete: [...carried] };
  if (last) return retired;
  if (end.tail === 0 || end.received === 0) {
    // Nothing new waits: the carried bytes went into a part, or stay where they are.
    return end.sentPart ? retired : { last, segments: [...carried], obsolete: [] };
  }

  // The carried segments stay when they still hold the start of the incomplete part, as they were,
  // and leave room for one more.
  const keep = end.sentPart || carry?.consolidate || carried.length >= limit ? [] : carried;
  const from = keep.length > 0 ? end.carried : 0;
  const key = segmentKey(base, end.offset - (end.tail - from));
  return {
    last,
    segment: { key, from },
    segments: [...keep, key],
    // A rewritten segment that starts where a carried one did replaces it under the same key.
    obsolete: keep.length > 0 ? [] : carried.filter((s) => s !== key),
  };
}
