import { z } from 'zod';
import { TusError, type ErrorCode } from '../model/errors.ts';
import { metadataSchema, type Metadata } from './metadata.ts';
import { isChecksumAlgorithm, type Checksum } from '../model/checksum.ts';
import { parseReprDigest, preferredDigest, type DigestAlgorithm } from '../model/digest.ts';
import { OFFSET_CONTENT_TYPE, TUS_VERSION } from './constants.ts';

/** Digits only: "+1", "1e3", " 1" and "0x10" are all malformed sizes for tus. */
const size = z
  .string()
  .regex(/^\d{1,16}$/)
  .transform(Number)
  .refine(Number.isSafeInteger);

const checksumSchema = z
  .string()
  .regex(/^\S+ [A-Za-z0-9+/]+={0,2}$/)
  .transform((value, ctx): Checksum => {
    const [algorithm, digest] = value.split(' ') as [string, string];
    if (!isChecksumAlgorithm(algorithm)) {
      ctx.addIssue({ code: 'custom', message: 'unsupported', params: { unsupported: true } });
      return z.NEVER;
    }
    return { algorithm, digest };
  });

function read<T>(schema: z.ZodType<T>, headers: Headers, name: string, code: ErrorCode): T | undefined {
  const raw = headers.get(name);
  if (raw === null) return undefined;
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const unsupported = result.error.issues.some((issue) => issue.code === 'custom' && issue.params?.unsupported);
  throw new TusError(unsupported ? 'UNSUPPORTED_CHECKSUM' : code, `${name}: ${raw.slice(0, 64)}`);
}

/** Repr-Digest (RFC 9530): the digest of the strongest algorithm it names that the server runs, if any. */
const reprDigestSchema = z.string().transform((value, ctx) => {
  const parsed = parseReprDigest(value);
  if (parsed === null) {
    ctx.addIssue({ code: 'custom', message: 'malformed' });
    return z.NEVER;
  }
  return parsed && { algorithm: parsed.algorithm, expected: parsed.digest };
});
export const reprDigest = (h: Headers): { algorithm: DigestAlgorithm; expected: string } | undefined => read(reprDigestSchema, h, 'Repr-Digest', 'INVALID_DIGEST');
/** Want-Repr-Digest (RFC 9530): the preferred algorithm the server runs, if any (weights it cannot read are skipped). */
export const wantReprDigest = (h: Headers): DigestAlgorithm | undefined => {
  const raw = h.get('Want-Repr-Digest');
  return raw === null ? undefined : preferredDigest(raw);
};

/** What a request asks of the whole upload's digest: Repr-Digest, to check at completion, or else Want-Repr-Digest, to compute. */
export function digestRequest(h: Headers): { algorithm: DigestAlgorithm; expected?: string } | undefined {
  const sent = reprDigest(h);
  if (sent) return sent;
  const wanted = wantReprDigest(h);
  return wanted && { algorithm: wanted };
}

export const uploadLength = (h: Headers) => read(size, h, 'Upload-Length', 'INVALID_LENGTH');
export const uploadOffset = (h: Headers) => read(size, h, 'Upload-Offset', 'INVALID_OFFSET');
export const contentLength = (h: Headers) => read(size, h, 'Content-Length', 'INVALID_CONTENT_LENGTH');
export const deferLength = (h: Headers): boolean => read(z.literal('1'), h, 'Upload-Defer-Length', 'INVALID_DEFER_LENGTH') !== undefined;
export const uploadMetadata = (h: Headers): Metadata | undefined => read(metadataSchema, h, 'Upload-Metadata', 'INVALID_METADATA');
export const uploadChecksum = (h: Headers) => read(checksumSchema, h, 'Upload-Checksum', 'INVALID_CHECKSUM');

/** `partial`, or `final;` and the partial uploads' URLs (space-separated; relative or absolute). */
export type Concat = { partial: true } | { final: string[] };

const concatSchema = z.union([
  z.literal('partial').transform((): Concat => ({ partial: true })),
  z
    .string()
    .regex(/^final;\s*\S+(\s+\S+)*\s*$/)
    .transform((v): Concat => ({ final: v.slice('final;'.length).trim().split(/\s+/) })),
]);

export const uploadConcat = (h: Headers): Concat | undefined => read(concatSchema, h, 'Upload-Concat', 'INVALID_CONCAT');

export function requireTusResumable(h: Headers): void {
  if (h.get('Tus-Resumable') !== TUS_VERSION) throw new TusError('UNSUPPORTED_VERSION');
}

/** True when the request carries bytes for the upload; parameters after ";" are tolerated. */
export function isOffsetStream(h: Headers): boolean {
  const type = h.get('Content-Type');
  return type !== null && type.split(';')[0]!.trim().toLowerCase() === OFFSET_CONTENT_TYPE;
}

/** RFC 9110 IMF-fixdate, as Upload-Expires requires. */
export const httpDate = (ms: number): string => new Date(ms).toUTCString();
