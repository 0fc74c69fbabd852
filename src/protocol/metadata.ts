import { z } from 'zod';

import { toBase64 } from '../model/encoding.ts';
import type { Metadata } from '../model/upload.ts';

export type { Metadata };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// Keys are free text for the spec except for the separators; ASCII control bytes would break headers.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control bytes is the point (they are refused)
const KEY = /^[^\s,\x00-\x1f\x7f]+$/;

/** Whether `name` may name an Upload-Metadata entry (as a header carries it: Latin-1, no space, comma or control). */
export function isMetadataKey(name: string): boolean {
  return KEY.test(name) && /^[\x21-\xff]+$/.test(name);
}

// ignoreBOM: a leading byte-order mark is part of the value, not a hint to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A value's bytes as a string. Values are bytes (base64 in the header), nearly always UTF-8 text,
 * which becomes its string. Any byte that is not part of valid UTF-8 becomes a lone surrogate
 * U+DC80–U+DCFF (Python's "surrogateescape"), which no text contains: every value is kept and
 * echoed byte for byte, and text stays text for hooks and downloads.
 */
export function bytesToValue(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    let out = '';
    for (let i = 0; i < bytes.length; ) {
      const [codePoint, size] = utf8Sequence(bytes, i);
      out += codePoint === undefined ? String.fromCharCode(0xdc00 + bytes[i]!) : String.fromCodePoint(codePoint);
      i += codePoint === undefined ? 1 : size;
    }
    return out;
  }
}

/** The code point of the well-formed UTF-8 sequence at `i`, and its length; undefined if there is none. */
function utf8Sequence(bytes: Uint8Array, i: number): [number | undefined, number] {
  const lead = bytes[i]!;
  if (lead < 0x80) return [lead, 1];
  const size = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  if (size === 0 || i + size > bytes.length) return [undefined, 1];
  let codePoint = lead & (0xff >> (size + 1));
  for (let k = 1; k < size; k++) {
    const next = bytes[i + k]!;
    if ((next & 0xc0) !== 0x80) return [undefined, 1];
    codePoint = (codePoint << 6) | (next & 0x3f);
  }
  const shortest = size === 2 || (size === 3 ? codePoint >= 0x800 : codePoint >= 0x10000);
  const allowed = codePoint <= 0x10ffff && (codePoint < 0xd800 || codePoint > 0xdfff);
  return shortest && allowed ? [codePoint, size] : [undefined, 1];
}

/** The bytes of a value made by bytesToValue (or any string: other lone surrogates become U+FFFD). */
export function valueToBytes(value: string): Uint8Array {
  const out: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    const next = value.charCodeAt(i + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out.push(...encoder.encode(value.slice(i, i + 2)));
      i++;
    } else if (unit >= 0xdc80 && unit <= 0xdcff) out.push(unit - 0xdc00);
    else out.push(...encoder.encode(value[i]!));
  }
  return Uint8Array.from(out);
}

function decodeBase64(value: string): string | undefined {
  if (!BASE64.test(value)) return undefined;
  return bytesToValue(Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0)));
}

export const encodeBase64 = (text: string): string => toBase64(valueToBytes(text));

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
