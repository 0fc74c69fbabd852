import { TusError } from '../model/errors.ts';
import type { Metadata } from './metadata.ts';
import type { ByteRange } from '../model/upload.ts';

/** One `bytes=` range (RFC 9110). Anything else, several ranges included, means the whole file. */
export function parseRange(header: string | null, size: number): ByteRange | undefined {
  const match = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  let range: ByteRange;
  if (first === '')
    range = { start: Math.max(0, size - Number(last)), end: size - 1 }; // suffix: last N bytes
  else range = { start: Number(first), end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
  if (range.start > range.end || range.start >= size) throw new TusError('RANGE_NOT_SATISFIABLE');
  return range;
}

const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;
// Passive types a browser only displays. The bytes are whatever a client uploaded, so anything else
// (HTML, PDF with its scripts, ...) is an attachment: opened inline from this origin, it could run
// script there. SVG is an image that can, and any `+xml` type is an XML document to a browser.
const PASSIVE = /^(image|audio|video)\/[\w.+-]+$|^text\/plain$/;
const SCRIPTABLE = /svg|\+xml$/;

/** The headers kept with the bytes (also on the S3 object): type and disposition, from the metadata. */
export function contentHeaders(metadata: Metadata): { 'Content-Type': string; 'Content-Disposition': string } {
  const declared = metadata.filetype ?? metadata.type ?? metadata.contentType ?? '';
  const type = MIME.test(declared) ? declared.toLowerCase() : 'application/octet-stream';
  const name = metadata.filename ?? metadata.name;
  const disposition = PASSIVE.test(type) && !SCRIPTABLE.test(type) ? 'inline' : 'attachment';
  return {
    'Content-Type': type,
    'Content-Disposition': name ? `${disposition}; ${dispositionFilename(name)}` : disposition,
  };
}

/**
 * Every download: no sniffing a type of its own, never framed, and, should a browser render it
 * anyway, a sandbox (no script, no forms, an opaque origin) instead of this server's origin.
 */
const DOWNLOAD_GUARDS = {
  'Content-Security-Policy': 'sandbox',
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
} as const;

/** The headers of a GET of a finished upload, besides its length and range. */
export function downloadHeaders(metadata: Metadata): Record<string, string> {
  return { ...contentHeaders(metadata), ...DOWNLOAD_GUARDS };
}

function dispositionFilename(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  // A name that was not UTF-8 holds lone surrogates (see metadata.ts), which URI encoding refuses.
  const encoded = encodeURIComponent(name.toWellFormed()).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
