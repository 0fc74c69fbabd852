import { TusError } from '../model/errors.ts';
import { statusOf } from './errors.ts';

/**
 * The IETF HTTP working group's "Resumable Uploads for HTTP" draft, by interop version (the
 * `Upload-Draft-Interop-Version` request header): 5 is draft -03 (tus-js-client 'ietf-draft-03'),
 * 6 is drafts -04/-05 ('ietf-draft-05'), 7 is -06 to -08, 8 is -09 to -11 (the newest).
 */
export const INTEROP_VERSIONS = [5, 6, 7, 8] as const;
export type InteropVersion = (typeof INTEROP_VERSIONS)[number];

export const PARTIAL_UPLOAD = 'application/partial-upload';

/** The request's interop version, or undefined for a tus request. */
export function interopVersion(headers: Headers): InteropVersion | undefined {
  const raw = headers.get('Upload-Draft-Interop-Version');
  if (raw === null) return undefined;
  const version = INTEROP_VERSIONS.find((v) => String(v) === raw.trim());
  if (version === undefined) throw new TusError('UNSUPPORTED_INTEROP', `${raw.slice(0, 10)} (served: ${INTEROP_VERSIONS.join(', ')})`);
  return version;
}

/** Upload-Complete as a structured-field boolean; absent → undefined. */
export function uploadComplete(headers: Headers): boolean | undefined {
  const raw = headers.get('Upload-Complete')?.trim();
  if (raw === undefined) return undefined;
  if (raw === '?1') return true;
  if (raw === '?0') return false;
  throw new TusError('INVALID_UPLOAD_COMPLETE');
}

/** Upload-Limit (a structured-field dictionary); version 5 has none. */
export function uploadLimit(version: InteropVersion, maxSize: number | undefined, ttlSeconds: number): Record<string, string> {
  if (version < 6) return {};
  const members = ['min-size=0'];
  if (maxSize !== undefined) members.push(`max-size=${maxSize}`);
  members.push(`${version === 6 ? 'expires' : 'max-age'}=${ttlSeconds}`);
  return { 'Upload-Limit': members.join(', ') };
}

const PROBLEM_TYPES: Partial<Record<string, { type: string; since: InteropVersion }>> = {
  OFFSET_MISMATCH: { type: 'mismatching-upload-offset', since: 6 },
  UPLOAD_FINISHED: { type: 'completed-upload', since: 6 },
  INCONSISTENT_LENGTH: { type: 'inconsistent-upload-length', since: 7 },
  EXCEEDS_LENGTH: { type: 'inconsistent-upload-length', since: 7 },
  LENGTH_ALREADY_SET: { type: 'inconsistent-upload-length', since: 7 },
};

/**
 * The draft's form of an error: the tus status, except that a length conflict is a 400, with an
 * RFC 9457 problem body where the version defines a problem type, and the current offset on a 409.
 */
export function ietfError(error: TusError, version: InteropVersion, providedOffset?: number): Response {
  const headers: Record<string, string> = { 'Upload-Draft-Interop-Version': String(version) };
  if (error.offset !== undefined) headers['Upload-Offset'] = String(error.offset);
  const status = ['EXCEEDS_LENGTH', 'LENGTH_ALREADY_SET'].includes(error.code) ? 400 : statusOf(error);
  const problem = PROBLEM_TYPES[error.code];
  if (!problem || version < problem.since) {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    return new Response(`${error.message}\n`, { status, headers });
  }
  const body: Record<string, unknown> = {
    type: `https://iana.org/assignments/http-problem-types#${problem.type}`,
    title: error.message,
  };
  if (error.code === 'OFFSET_MISMATCH') Object.assign(body, { 'expected-offset': error.offset, 'provided-offset': providedOffset });
  headers['Content-Type'] = 'application/problem+json';
  return new Response(JSON.stringify(body), { status, headers });
}

/** The filename of a Content-Disposition header (filename* preferred), if any. */
export function dispositionFilename(header: string | null): string | undefined {
  if (!header) return undefined;
  const extended = header.match(/filename\*\s*=\s*UTF-8''([^;]+)/i);
  if (extended) {
    try {
      return decodeURIComponent(extended[1]!.trim());
    } catch {
      // fall through to the plain form
    }
  }
  return header
    .match(/filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;\s]+)/i)
    ?.slice(1)
    .find(Boolean);
}
