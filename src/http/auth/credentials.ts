import { toBase64 } from '../../model/encoding.ts';
import { TusError } from '../../model/errors.ts';

/** RFC 7235 token68: what a bearer token may be made of. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
/** `<scheme> <credentials>`: the scheme is a token, then one or more spaces (RFC 7235 §2.1). */
const AUTHORIZATION = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: +(.*))?$/;
/** Longer headers are refused unread: nothing legitimate needs more. */
const MAX_LENGTH = 8192;

/**
 * The bearer token of a request (RFC 6750), or a refusal: none → 401, another scheme → 401, a
 * header that is not `<scheme> <token68>` → 400. The scheme is case-insensitive, so `bearer x`
 * and `Bearer  x` are the same credential as `Bearer x`.
 */
export function bearerToken(header: string | null): string {
  if (header === null || header.trim() === '') throw new TusError('UNAUTHORIZED', 'send "Authorization: Bearer <token>"');
  const match = header.length <= MAX_LENGTH ? AUTHORIZATION.exec(header.trim()) : null;
  if (!match) throw new TusError('MALFORMED_CREDENTIALS');
  if (match[1]!.toLowerCase() !== 'bearer') throw new TusError('UNAUTHORIZED', 'only Bearer tokens are accepted');
  const token = match[2] ?? '';
  if (!TOKEN68.test(token)) throw new TusError('MALFORMED_CREDENTIALS');
  return token;
}

const encoder = new TextEncoder();

/** SHA-256 of a string, as bytes. */
async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(value)));
}

/** Compares two secrets in time that tells nothing of where they differ, nor of their lengths. */
export async function sameSecret(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  let difference = 0;
  for (let i = 0; i < x.length; i++) difference |= x[i]! ^ y[i]!;
  return difference === 0;
}

/** A short, fixed-length stand-in for a value of any length (rate-limit keys). */
export async function shortHash(value: string): Promise<string> {
  const bytes = (await digest(value)).subarray(0, 12);
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_');
}
