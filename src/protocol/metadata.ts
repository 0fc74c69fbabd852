import { z } from 'zod';

/** Decoded Upload-Metadata: a key with no value maps to null. */
export type Metadata = Record<string, string | null>;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Keys are free text for the spec except for the separators; ASCII control bytes would break headers.
const KEY = /^[^\s,\x00-\x1f\x7f]+$/;
const decoder = new TextDecoder('utf-8', { fatal: true });

function decodeBase64(value: string): string | undefined {
  if (!BASE64.test(value)) return undefined;
  const bytes = Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0));
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined; // binary values cannot be echoed faithfully as strings, so they are refused
  }
}

export function encodeBase64(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export const metadataSchema = z.string().transform((header, ctx): Metadata => {
  const out: Metadata = Object.create(null);
  if (header.trim() === '') return out;
  for (const pair of header.split(',')) {
    const parts = pair.trim().split(' ');
    const [key, value] = parts;
    const decoded = value === undefined ? null : decodeBase64(value);
    if (!key || !KEY.test(key) || parts.length > 2 || decoded === undefined || key in out) {
      ctx.addIssue({ code: 'custom', message: `bad pair "${pair.trim().slice(0, 40)}"` });
      return z.NEVER;
    }
    out[key] = decoded;
  }
  return out;
});

export function serializeMetadata(metadata: Metadata): string {
  return Object.entries(metadata)
    .map(([key, value]) => (value === null ? key : `${key} ${encodeBase64(value)}`))
    .join(',');
}
