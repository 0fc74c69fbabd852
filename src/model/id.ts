import { toHex } from './encoding.ts';

/** 128 random bits as lowercase hex: URL-safe, and safe on case-insensitive file systems. */
export const newUploadId = (): string => toHex(crypto.getRandomValues(new Uint8Array(16)));

/** Anything else is refused before it can reach a store (no traversal, no odd keys). */
export const isUploadId = (value: string): boolean => /^[0-9a-f]{32}$/.test(value);

/**
 * Whether an object key falls among the names stores derive from upload ids: an id itself (an
 * upload's default object) or an id followed by `.` or `/` (`<id>.info`, `<id>.part/<offset>`).
 * Letter case is ignored, for storage that ignores it.
 */
export const isUploadName = (key: string): boolean => /^[0-9a-f]{32}(?:[./]|$)/i.test(key);
