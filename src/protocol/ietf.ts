import { TusError } from '../model/errors.ts';
import { statusOf } from './errors.ts';

/**
 * The IETF HTTP working group's "Resumable Uploads for HTTP" draft, by interop version (the
 * `Upload-Draft-Interop-Version` request header): 5 is draft -03 (tus-js-client 'ietf-draft-03'),
 * 6 is drafts -04/-05 ('ietf-draft-05'), 7 is -06 to -08, 8 is -09 to -11 and the editor's copy
 * after -11, which still says "The current interop version is 8": its changes since -11 (the
 * Upload-Complete of responses, GET on an upload, Upload-Limit on a 413, max-age as the remaining
 * lifetime) are clarifications under version 8, and no text defines a version 9 yet.
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

/**
 * Upload-Limit (a structured-field dictionary); version 5 has none. `lifetimeSeconds` is what is
 * left of the upload resource's life (`max-age` is "the remaining lifetime ... counted from the
 * generation of the response"): the TTL before an upload exists, nothing for one that no longer
 * expires.
 */
export function uploadLimit(version: InteropVersion, maxSize: number | undefined, lifetimeSeconds: number | undefined): Record<string, string> {
  if (version < 6) return {};
  const members = ['min-size=0'];
  if (maxSize !== undefined) members.push(`max-size=${maxSize}`);
  if (lifetimeSeconds !== undefined) members.push(`${version === 6 ? 'expires' : 'max-age'}=${lifetimeSeconds}`);
  return { 'Upload-Limit': members.join(', ') };
}

/** Seconds left before an upload expires (whole seconds, never more than it has), or undefined when it does not. */
export const remainingLifetime = (expiresAt: number | undefined, now: number): number | undefined =>
  expiresAt === undefined ? undefined : Math.max(0, Math.floor((expiresAt - now) / 1000));

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
 * Version 8 as the editor's copy now has it: a 409 says `Upload-Complete: ?0` ("MUST reject the
 * request with a 409 (Conflict) status code and the Upload-Complete header field set to false"),
 * and a 413 from the server's limits carries them ("SHOULD include the Upload-Limit header field").
 */
export function ietfError(error: TusError, version: InteropVersion, context: { providedOffset?: number; limits?: Record<string, string> } = {}): Response {
  const headers: Record<string, string> = { 'Upload-Draft-Interop-Version': String(version) };
  if (error.offset !== undefined) headers['Upload-Offset'] = String(error.offset);
  const status = ['EXCEEDS_LENGTH', 'LENGTH_ALREADY_SET'].includes(error.code) ? 400 : statusOf(error);
  if (version >= 8 && status === 409) headers['Upload-Complete'] = '?0';
  if (version >= 8 && status === 413) Object.assign(headers, context.limits);
  const problem = PROBLEM_TYPES[error.code];
  if (!problem || version < problem.since) {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    return new Response(`${error.message}\n`, { status, headers });
  }
  const body: Record<string, unknown> = {
    type: `https://iana.org/assignments/http-problem-types#${problem.type}`,
    title: error.message,
  };
  if (error.code === 'OFFSET_MISMATCH') Object.assign(body, { 'expected-offset': error.offset, 'provided-offset': context.providedOffset });
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
