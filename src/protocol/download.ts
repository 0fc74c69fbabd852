import { TusError } from './errors.ts';
import type { Metadata } from './metadata.ts';
import type { ByteRange } from '../storage/types.ts';

/** One `bytes=` range (RFC 9110). Anything else, several ranges included, means the whole file. */
export function parseRange(header: string | null, size: number): ByteRange | undefined {
  const match = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  let range: ByteRange;
  if (first === '') range = { start: Math.max(0, size - Number(last)), end: size - 1 }; // suffix: last N bytes
  else range = { start: Number(first), end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
  if (range.start > range.end || range.start >= size) throw new TusError('RANGE_NOT_SATISFIABLE');
  return range;
}

const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;
// Types a browser cannot run script from; anything else is sent as an attachment, since the bytes
// are whatever a client uploaded.
const INLINE = /^(image\/(png|jpeg|gif|webp|avif)|video\/[\w.+-]+|audio\/[\w.+-]+|text\/plain|application\/pdf)$/i;

/** Content-Type and Content-Disposition for serving an upload, from its tus metadata. */
export function contentHeaders(metadata: Metadata): Record<string, string> {
  const declared = metadata.filetype ?? metadata.type ?? metadata.contentType ?? '';
  const type = MIME.test(declared) ? declared.toLowerCase() : 'application/octet-stream';
  const name = metadata.filename ?? metadata.name;
  const disposition = INLINE.test(type) ? 'inline' : 'attachment';
  return {
    'Content-Type': type,
    'Content-Disposition': name ? `${disposition}; ${dispositionFilename(name)}` : disposition,
    'X-Content-Type-Options': 'nosniff',
  };
}

function dispositionFilename(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  // A name that was not UTF-8 holds lone surrogates (see metadata.ts), which URI encoding refuses.
  const encoded = encodeURIComponent(name.toWellFormed()).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
