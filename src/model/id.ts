/** 128 random bits as lowercase hex: URL-safe, and safe on case-insensitive file systems. */
export function newUploadId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Anything else is refused before it can reach a store (no traversal, no odd keys). */
export const isUploadId = (value: string): boolean => /^[0-9a-f]{32}$/.test(value);

/**
 * Whether an object key falls among the names stores derive from upload ids: an id itself (an
 * upload's default object) or an id followed by `.` or `/` (`<id>.info`, `<id>.part/<offset>`).
 * Letter case is ignored, for storage that ignores it.
 */
export const isUploadName = (key: string): boolean => /^[0-9a-f]{32}(?:[./]|$)/i.test(key);
