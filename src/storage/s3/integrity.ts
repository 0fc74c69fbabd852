import { md5 } from '@noble/hashes/legacy.js';
import { crc32Hasher } from '../../model/checksum.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { toBase64, toHex } from '../../model/encoding.ts';

/**
 * How S3 is told what a body's bytes hash to, so that it refuses a body changed on the way (a
 * corrupting proxy, a bad NIC) instead of storing it:
 * - `sha256`: the signed `x-amz-content-sha256` (SigV4's payload hash). Every SigV4 service checks
 *   it (AWS, radosgw, MinIO, R2, B2); hashed by the runtime's streaming SHA-256 (`Sha256Factory`).
 * - `md5`: `Content-MD5`, checked by AWS, radosgw, MinIO, B2; hashed in JavaScript (slower).
 * - `crc32c`, `crc64nvme`: S3's checksum headers (`x-amz-checksum-*`), for services that check those
 *   (AWS; R2 takes some). radosgw 16 ignores them.
 * - `off`: UNSIGNED-PAYLOAD and nothing else: a changed byte is stored.
 */
export const PAYLOAD_CHECKS = ['sha256', 'md5', 'crc32c', 'crc64nvme', 'off'] as const;
export type PayloadCheck = (typeof PAYLOAD_CHECKS)[number];

/** The S3 error codes of a body whose bytes did not match what was declared for them. */
const DIGEST_CODES = new Set(['BadDigest', 'InvalidDigest', 'XAmzContentSHA256Mismatch', 'InvalidChecksum', 'BadChecksum']);
export const isDigestError = (code: string): boolean => DIGEST_CODES.has(code);

/** The name S3 gives a checksum algorithm (x-amz-checksum-algorithm, ListParts' ChecksumXXX). */
export const S3_ALGORITHM = { crc32c: 'CRC32C', crc64nvme: 'CRC64NVME' } as const;

/** CRC-32C (Castagnoli), reflected, as S3's x-amz-checksum-crc32c. */
const crc32cHasher = crc32Hasher(0x82f63b78);

export function crc32c(views: readonly Uint8Array[]): Uint8Array {
  const hasher = crc32cHasher();
  for (const view of views) hasher.update(view);
  return hasher.digest();
}

/**
 * CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5), as S3's x-amz-checksum-crc64nvme. Kept
 * as two 32-bit halves: BigInt arithmetic per byte would be far slower.
 */
const CRC64_TABLE = (() => {
  const hi = new Uint32Array(256);
  const lo = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let h = 0;
    let l = n;
    for (let k = 0; k < 8; k++) {
      const odd = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h >>>= 1;
      if (odd) {
        h = (h ^ 0x9a6c9329) >>> 0;
        l = (l ^ 0xac4bc9b5) >>> 0;
      }
    }
    hi[n] = h;
    lo[n] = l;
  }
  return { hi, lo };
})();

export function crc64nvme(views: readonly Uint8Array[]): Uint8Array {
  const { hi, lo } = CRC64_TABLE;
  let h = 0xffffffff;
  let l = 0xffffffff;
  for (const view of views) {
    for (let i = 0; i < view.length; i++) {
      const index = (l ^ view[i]!) & 0xff;
      l = (((l >>> 8) | ((h & 0xff) << 24)) ^ lo[index]!) >>> 0;
      h = ((h >>> 8) ^ hi[index]!) >>> 0;
    }
  }
  h = (h ^ 0xffffffff) >>> 0;
  l = (l ^ 0xffffffff) >>> 0;
  return new Uint8Array([h >>> 24, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff, l >>> 24, (l >>> 16) & 0xff, (l >>> 8) & 0xff, l & 0xff]);
}

function md5Of(views: readonly Uint8Array[]): Uint8Array {
  const hasher = md5.create();
  for (const view of views) hasher.update(view);
  return hasher.digest();
}

/**
 * A SHA-256 fed bytes as they come. WebCrypto's digest is one-shot, over one buffer: a part held in
 * slabs would have to be copied into one first, and hashed only once complete. A streaming hash
 * takes each slab's bytes as they are copied in, so a part's digest is ready when it fills.
 */
export interface Sha256 {
  update(bytes: Uint8Array): unknown;
  digest(): Uint8Array;
}

/**
 * Where a streaming SHA-256 comes from: the runtime's native one where it has one (Bun's
 * CryptoHasher, node:crypto's createHash on Node and Deno, handed in by the runtime entries), else
 * `jsSha256`.
 */
export type Sha256Factory = () => Sha256;

/** @noble/hashes' SHA-256 in JavaScript: for runtimes that offer no native streaming one (Workers). */
export const jsSha256: Sha256Factory = () => sha256.create();

function sha256Of(views: readonly Uint8Array[], hash: Sha256Factory): Uint8Array {
  const hasher = hash();
  for (const view of views) hasher.update(view);
  return hasher.digest();
}

/**
 * The headers that declare what the body's bytes hash to (to be signed with the request): sha256
 * with `hash`, or as `sha256` when the caller hashed the bytes already (as they filled a part).
 */
export function payloadHeaders(
  check: PayloadCheck,
  body: readonly Uint8Array[] | string,
  hash: Sha256Factory = jsSha256,
  known?: { sha256?: Uint8Array },
): Record<string, string> {
  if (check === 'off') return {};
  const views = typeof body === 'string' ? [new TextEncoder().encode(body)] : body;
  switch (check) {
    case 'sha256':
      return { 'X-Amz-Content-Sha256': toHex(known?.sha256 ?? sha256Of(views, hash)) };
    case 'md5':
      return { 'Content-MD5': toBase64(md5Of(views)) };
    case 'crc32c':
      return { 'x-amz-checksum-crc32c': toBase64(crc32c(views)) };
    case 'crc64nvme':
      return { 'x-amz-checksum-crc64nvme': toBase64(crc64nvme(views)) };
  }
}

/**
 * What CreateMultipartUpload declares so that S3 takes (and keeps) the parts' S3 checksums: AWS
 * refuses a part checksum of an algorithm the upload did not declare. CRC64NVME exists only as a
 * checksum of the whole object (FULL_OBJECT), CRC32C is composite by default.
 */
export function multipartHeaders(check: PayloadCheck): Record<string, string> {
  if (check === 'crc32c') return { 'x-amz-checksum-algorithm': 'CRC32C' };
  if (check === 'crc64nvme') return { 'x-amz-checksum-algorithm': 'CRC64NVME', 'x-amz-checksum-type': 'FULL_OBJECT' };
  return {};
}

/**
 * The ETag S3 gives an object completed from parts with these ETags: the MD5 of their MD5s, and
 * their count (what shows a completed object is the one these parts made).
 */
export function multipartEtag(etags: readonly string[]): string {
  const digests = etags.map((etag) => Uint8Array.from(etag.replace(/"/g, '').match(/../g) ?? [], (pair) => Number.parseInt(pair, 16)));
  return `"${toHex(md5Of(digests))}-${etags.length}"`;
}
